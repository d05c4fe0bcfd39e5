import type { ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { startAppProcess } from '../support/app-process.js';
import { PASSWORD, uniqueUsername } from '../support/requests.js';

/**
 * Graceful shutdown of the real process (`npm test` builds it first): on
 * SIGTERM readiness turns 503 at once while the instance keeps serving for
 * SHUTDOWN_DELAY, a request already in flight still completes, then the
 * process closes its pool and exits 0.
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

  it('answers /health/ready 503 from the signal while /health/live still answers, then exits 0', async () => {
    // Long enough for the probes below to land inside the delay on a slow machine.
    const app = await startAppProcess({ SHUTDOWN_DELAY: '5' });
    child = app.process;
    const { url, output, exited, process: proc } = app;
    const status = (path: string) => fetch(`${url}${path}`).then((res) => res.status);
    expect(await status('/health/ready')).toBe(200);

    proc.kill('SIGTERM');
    // The first probe may be answered before the signal is handled; none after it is 200.
    let ready = await status('/health/ready');
    while (ready === 200) ready = await status('/health/ready');
    expect(ready).toBe(503);
    const res = await fetch(`${url}/health/ready`);
    expect(res.headers.get('retry-after')).toMatch(/^[1-9]\d*$/);
    expect(((await res.json()) as { code?: string }).code).toBe('service_unavailable');
    // Still serving: liveness and the API answer during the delay.
    expect(await status('/health/live')).toBe(200);
    expect(await status('/.well-known/jwks.json')).toBe(200);
    expect(proc.exitCode).toBeNull();

    expect(await exited).toBe(0);
    const log = output.join('');
    const unready = log.indexOf('unready; serving for 5 s more, then draining');
    const draining = log.indexOf('finishing in-flight requests');
    expect(unready).toBeGreaterThan(-1);
    expect(draining).toBeGreaterThan(unready);
    expect(log.indexOf('"msg":"Stopped"')).toBeGreaterThan(draining);
    await expect(fetch(`${url}/health/live`)).rejects.toThrow();
  });
});
