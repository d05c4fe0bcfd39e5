import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { TEST_SECRETS } from './secrets.js';

/**
 * Lineage as a real process (`node dist/src/main.js`, the compiled build that
 * `npm test` produces first), for what one process cannot show: several
 * instances on one database, signals and shutdown.
 */
export interface AppProcess {
  url: string;
  process: ChildProcess;
  /** Everything the process wrote to stdout and stderr so far. */
  output: string[];
  /** The exit code, once the process has exited. */
  exited: Promise<number | null>;
}

const ROOT = join(import.meta.dirname, '..', '..');

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/**
 * Starts the built server on a free loopback port against the e2e database
 * and waits until /health/ready answers 200 (database, signing key and
 * session feed all there). `env` adds to or overrides the defaults
 * (NODE_ENV=test, the e2e DATABASE_URL, secrets, cost-4 bcrypt, no rate limits;
 * a free port unless PORT is given).
 */
export async function startAppProcess(env: Record<string, string> = {}): Promise<AppProcess> {
  const databaseUrl = process.env.LINEAGE_TEST_DATABASE_URL;
  if (!databaseUrl) throw new Error('e2e database not prepared (global setup did not run)');
  const port = env.PORT ? Number(env.PORT) : await freePort();
  const child = spawn(process.execPath, ['dist/src/main.js'], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH,
      NODE_ENV: 'test',
      DATABASE_URL: databaseUrl,
      PORT: String(port),
      HOST: '127.0.0.1',
      ...TEST_SECRETS,
      BCRYPT_COST: '4',
      RATE_LIMIT_PER_IP: '1000000',
      RATE_LIMIT_REFRESH_PER_IP: '1000000',
      RATE_LIMIT_FREE_FAILURES: '99',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  child.stdout?.on('data', (chunk: Buffer) => output.push(chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => output.push(chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 300 && child.exitCode === null; i += 1) {
    const up = await fetch(`${url}/health/ready`).then(
      (res) => res.ok,
      () => false,
    );
    if (up) return { url, process: child, output, exited };
    await sleep(100);
  }
  child.kill('SIGKILL');
  throw new Error(`the process did not come up:\n${output.join('')}`);
}

/** SIGTERM, then SIGKILL if it has not exited within 15 s. */
export async function stopAppProcess(app: AppProcess | undefined): Promise<void> {
  if (!app || app.process.exitCode !== null) return;
  app.process.kill('SIGTERM');
  await Promise.race([app.exited, sleep(15_000)]);
  if (app.process.exitCode === null) app.process.kill('SIGKILL');
}

/**
 * One JSON request to a process: the bearer token and body when given. The
 * body of the answer is parsed JSON, or null when it is not JSON.
 */
export async function callProcess(
  app: AppProcess,
  method: string,
  path: string,
  token?: string,
  body?: object,
): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`${app.url}${path}`, {
    method,
    headers: {
      ...(token ? { Authorization: `Bearer ${token}` } : {}),
      ...(body ? { 'Content-Type': 'application/json' } : {}),
    },
    body: body ? JSON.stringify(body) : undefined,
  });
  const payload: unknown = await res.json().catch(() => null);
  return { status: res.status, body: payload };
}
