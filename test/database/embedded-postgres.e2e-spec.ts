import { chmod, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import {
  type EmbeddedDatabase,
  runningEmbeddedUrl,
  startEmbeddedPostgres,
} from '../../src/database/embedded-postgres.js';

/**
 * The embedded development cluster's superuser password: generated per data
 * directory, kept beside it (0600), the same across restarts, and never the
 * constant that older versions initialised every cluster with.
 */
const LEGACY_PASSWORD = 'lineage';

async function canConnect(url: string): Promise<boolean | string> {
  const client = new pg.Client({ connectionString: url });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch (error) {
    return (error as { code?: string }).code ?? String(error);
  } finally {
    await client.end().catch(() => undefined);
  }
}

const withPassword = (url: string, password: string) => {
  const parsed = new URL(url);
  parsed.password = password;
  return parsed.toString();
};

describe('embedded PostgreSQL superuser password (e2e)', () => {
  let dir: string;
  let dataDir: string;
  let database: EmbeddedDatabase | undefined;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lineage-embedded-'));
    // The cluster may run as the `postgres` system user, which must reach it.
    await chmod(dir, 0o755);
    dataDir = join(dir, 'postgres');
  });

  // Beside the data directory: initdb wants that one empty.
  const passwordFile = () => join(dir, 'postgres.password');

  afterAll(async () => {
    await database?.stop();
    await rm(dir, { recursive: true, force: true });
  }, 30_000);

  it('generates one per data directory, keeps it 0600 beside it, and reuses it on restart', async () => {
    database = await startEmbeddedPostgres({ dataDir, database: 'lineage' });
    const file = passwordFile();
    const password = (await readFile(file, 'utf8')).trim();
    expect(password).toMatch(/^[0-9a-f]{48}$/);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(new URL(database.url).password).toBe(password);
    expect(await canConnect(database.url)).toBe(true);
    expect(await canConnect(withPassword(database.url, LEGACY_PASSWORD))).toBe('28P01');
    // What `npm run keys` uses to reach a running server.
    expect(await runningEmbeddedUrl(dataDir, 'lineage')).toBe(database.url);

    await database.stop();
    database = await startEmbeddedPostgres({ dataDir, database: 'lineage' });
    expect((await readFile(file, 'utf8')).trim()).toBe(password);
    expect(new URL(database.url).password).toBe(password);
    expect(await canConnect(database.url)).toBe(true);
  }, 120_000);

  it('moves a cluster created with the old constant to a generated password', async () => {
    // A data directory as older versions left it: the constant, no file.
    const client = new pg.Client({ connectionString: database!.url });
    await client.connect();
    await client.query(`ALTER ROLE postgres PASSWORD '${LEGACY_PASSWORD}'`);
    await client.end();
    await database!.stop();
    await rm(passwordFile());

    database = await startEmbeddedPostgres({ dataDir, database: 'lineage' });
    const password = (await readFile(passwordFile(), 'utf8')).trim();
    expect(password).not.toBe(LEGACY_PASSWORD);
    expect(new URL(database.url).password).toBe(password);
    expect(await canConnect(database.url)).toBe(true);
    expect(await canConnect(withPassword(database.url, LEGACY_PASSWORD))).toBe('28P01');
  }, 120_000);
});
