import type { ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { startAppProcess } from '../support/app-process.js';
import { PASSWORD, uniqueUsername } from '../support/requests.js';

/**
 * Graceful shutdown of the real process (`npm test` builds it first): on
 * SIGTERM a request already in flight still completes, then the process
 * closes its pool and exits 0.
 */
describe('observability: graceful shutdown', () => {
  let child: ChildProcess | undefined;

  afterAll(() => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
  });

  it('finishes an in-flight login after SIGTERM, then exits 0', async () => {
    // A real cost, so the login is still hashing (~200 ms) when the signal arrives.
    const app = await startAppProcess({ BCRYPT_COST: '12' });
    child = app.process;
    const { url, output, exited, process: proc } = app;

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
