import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { PASSWORD, uniqueUsername } from '../support/test-app.js';

/**
 * Graceful shutdown of the real process (`npm test` builds it first): on
 * SIGTERM a request already in flight still completes, then the process
 * closes its pool and exits 0.
 */
const ROOT = join(import.meta.dirname, '..', '..');

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

describe('observability: graceful shutdown', () => {
  let child: ChildProcess | undefined;

  afterAll(() => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
  });

  it('finishes an in-flight login after SIGTERM, then exits 0', async () => {
    const databaseUrl = process.env.LINEAGE_TEST_DATABASE_URL;
    if (!databaseUrl) throw new Error('e2e database not prepared (global setup did not run)');
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const proc = spawn(process.execPath, ['dist/src/main.js'], {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH,
        NODE_ENV: 'test',
        DATABASE_URL: databaseUrl,
        PORT: String(port),
        HOST: '127.0.0.1',
        JWT_ACCESS_SECRET: 'shutdown-access-secret-0123456789abcdef0123',
        JWT_REFRESH_SECRET: 'shutdown-refresh-secret-0123456789abcdef012',
        // A real cost, so the login is still hashing (~200 ms) when the signal arrives.
        BCRYPT_COST: '12',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = proc;
    const output: string[] = [];
    proc.stdout?.on('data', (chunk: Buffer) => output.push(chunk.toString()));
    proc.stderr?.on('data', (chunk: Buffer) => output.push(chunk.toString()));
    const exited = new Promise<number | null>((resolve) => proc.once('exit', resolve));

    let up = false;
    for (let i = 0; i < 300 && !up && proc.exitCode === null; i += 1) {
      up = await fetch(`${url}/health`).then(
        (res) => res.ok,
        () => false,
      );
      if (!up) await sleep(100);
    }
    if (!up) throw new Error(`the process did not come up:\n${output.join('')}`);

    const post = (path: string, body: object) =>
      fetch(`${url}${path}`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(body),
      });
    const username = uniqueUsername('shutdown');
    expect((await post('/auth/register', { username, password: PASSWORD })).status).toBe(201);

    const started = Date.now();
    const inFlight = post('/auth/login', { username, password: PASSWORD });
    await sleep(60);
    proc.kill('SIGTERM');
    const login = await inFlight;
    expect(login.status).toBe(200);
    expect(((await login.json()) as { access_token?: unknown }).access_token).toEqual(
      expect.any(String),
    );
    // The response came after the signal: the request really was in flight.
    expect(Date.now() - started).toBeGreaterThan(60);

    expect(await exited).toBe(0);
    const log = output.join('');
    expect(log).toContain('SIGTERM received');
    expect(log).toContain('"msg":"Stopped"');
    // Drained, not cut off at the 10 s bound.
    expect(log).not.toContain('still running');
    // Nothing is listening any more.
    await expect(fetch(`${url}/health`)).rejects.toThrow();
  });
});
