import { chmod, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EmbeddedDatabase } from '../../src/database/embedded-postgres.js';

// Jest loads global setup outside its module system (no moduleNameMapper, so the
// source's `.js` imports would not resolve); the code therefore comes from the
// compiled build, which `npm test` produces first, and the types from the source.
// The specifier is a variable so TypeScript checks against src/, not dist/.
const COMPILED_EMBEDDED_POSTGRES = '../../dist/src/database/embedded-postgres.js';
type EmbeddedPostgresModule = typeof import('../../src/database/embedded-postgres.js');

declare global {
  var __LINEAGE_TEST_DB__: { db?: EmbeddedDatabase; dir?: string } | undefined;
}

/**
 * One real PostgreSQL for the whole e2e run: the server named by
 * TEST_DATABASE_URL, or a fresh embedded cluster in a temporary directory.
 * Workers read the URL from LINEAGE_TEST_DATABASE_URL.
 */
export default async function globalSetup(): Promise<void> {
  if (process.env.TEST_DATABASE_URL) {
    process.env.LINEAGE_TEST_DATABASE_URL = process.env.TEST_DATABASE_URL;
    return;
  }
  const dir = await mkdtemp(join(tmpdir(), 'lineage-test-'));
  // The cluster may run as the `postgres` system user, which must reach it.
  await chmod(dir, 0o755);
  const compiled = (await import(COMPILED_EMBEDDED_POSTGRES)) as EmbeddedPostgresModule;
  const db = await compiled.startEmbeddedPostgres({
    dataDir: join(dir, 'postgres'),
    database: 'lineage_test',
  });
  process.env.LINEAGE_TEST_DATABASE_URL = db.url;
  globalThis.__LINEAGE_TEST_DB__ = { db, dir };
}
