import type { Response } from 'supertest';
import { expectError } from '../support/errors.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';
import { startTestApp, type TestApp, useTestApp } from '../support/test-app.js';
import { eventually } from '../support/time.js';

/** 503 service_unavailable in the one error shape, with a Retry-After in seconds. */
function expectUnavailable(res: Response, message: string): void {
  expectError(res, 503, 'service_unavailable');
  expect((res.body as { message: string }).message).toBe(message);
  expect(res.headers['retry-after']).toMatch(/^[1-9]\d*$/);
}

describe('health endpoints', () => {
  const t = useTestApp();

  it('GET /health/live answers 200 with no dependency named', async () => {
    const res = await t.http().get('/health/live').expect(200);
    expect(res.body).toEqual({ status: 'ok' });
  });

  it('GET /health/ready answers 200 and lists the checks that passed', async () => {
    const res = await t.http().get('/health/ready').expect(200);
    expect(res.body).toEqual({
      status: 'ok',
      checks: { database: 'up', signing_keys: 'loaded', session_feed: 'live' },
    });
  });

  it('GET /health keeps its body', async () => {
    await t.http().get('/health').expect(200, { status: 'ok', database: 'up' });
  });

  it('all three are documented and public', async () => {
    const doc = (await t.http().get('/docs-json').expect(200)).body as {
      paths: Record<string, { get?: { security?: unknown[] } }>;
    };
    for (const path of ['/health', '/health/live', '/health/ready']) {
      expect(doc.paths[path]?.get?.security).toEqual([]);
    }
  });
});

/**
 * The database taken away under a running app, through a TCP proxy that
 * refuses and cuts its connections (pool and session feed alike): readiness
 * reports it, liveness does not, and readiness recovers by itself.
 */
describe('health endpoints while the database is unreachable', () => {
  let proxy: TcpProxy | undefined;
  let t: TestApp | undefined;

  beforeAll(async () => {
    const target = new URL(process.env.LINEAGE_TEST_DATABASE_URL!);
    proxy = await startTcpProxy(Number(target.port || 5432));
    target.host = `127.0.0.1:${proxy.port}`;
    t = await startTestApp({ DATABASE_URL: target.toString() });
  });

  afterAll(async () => {
    proxy?.refuse(false);
    await t?.close();
    await proxy?.close();
  });

  it('makes /health/ready 503 while /health/live stays 200, and ready again after', async () => {
    const app = t!;
    await app.http().get('/health/ready').expect(200);

    proxy!.refuse(true);
    proxy!.cut();
    const both = 'Not ready: database unreachable, session feed not live';
    // The feed notices its cut connection on its own; both are reported from then on.
    const unready = await eventually('readiness reports the outage', async () => {
      const res = await app.http().get('/health/ready');
      return (res.body as { message?: string }).message === both ? res : undefined;
    });
    expectUnavailable(unready, both);
    expect(await app.http().get('/health/live')).toMatchObject({
      status: 200,
      body: { status: 'ok' },
    });
    expectUnavailable(await app.http().get('/health'), 'Database is unreachable');

    proxy!.refuse(false);
    // The feed reconnects with a backoff of up to 10 s, then resyncs.
    const ready = await eventually(
      'readiness recovers',
      async () => {
        const res = await app.http().get('/health/ready');
        return res.status === 200 ? res : undefined;
      },
      { timeoutMs: 25_000, intervalMs: 200 },
    );
    expect(ready.body).toMatchObject({ checks: { database: 'up', session_feed: 'live' } });
  }, 60_000);
});
