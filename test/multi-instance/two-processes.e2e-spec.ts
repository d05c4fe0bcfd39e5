import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import {
  type AppProcess,
  callProcess,
  startAppProcess,
  stopAppProcess,
} from '../support/app-process.js';
import { localPortsOf } from '../support/pg-backends.js';
import { PASSWORD, uniqueUsername } from '../support/requests.js';
import { eventually } from '../support/time.js';

/**
 * Two real Lineage processes on one PostgreSQL, as behind a load balancer:
 * a session ended through one must stop working on the other without waiting
 * for its access token to expire (OWASP ASVS 3.3.1), through PostgreSQL
 * LISTEN/NOTIFY, and again after the other's feed connection was cut and
 * restored (resync on reconnect).
 *
 * The processes run the compiled build (`npm test` builds first).
 */

/** The bound on how long another instance may keep accepting a logged-out token. */
const PROPAGATION_BOUND_MS = 1000;

type Instance = AppProcess;

interface Tokens {
  access_token: string;
  refresh_token: string;
}

const call = callProcess;

/**
 * Milliseconds until the instance refuses the token with 401, polling every
 * 20 ms; Infinity if it still accepts it after `giveUpMs`.
 */
async function msUntilRefused(instance: Instance, token: string, giveUpMs = 5000): Promise<number> {
  const start = Date.now();
  while (Date.now() - start < giveUpMs) {
    const { status } = await call(instance, 'GET', '/todos', token);
    if (status === 401) return Date.now() - start;
    expect(status).toBe(200);
    await sleep(20);
  }
  return Number.POSITIVE_INFINITY;
}

const describeOnLinux = process.platform === 'linux' ? describe : describe.skip;

describeOnLinux('two Lineage processes on one PostgreSQL (e2e)', () => {
  let a: Instance | undefined;
  let b: Instance | undefined;
  let db: pg.Client;

  const instanceA = () => a!;
  const instanceB = () => b!;

  beforeAll(async () => {
    const url = process.env.LINEAGE_TEST_DATABASE_URL;
    if (!url) throw new Error('e2e database not prepared (global setup did not run)');
    db = new pg.Client({ connectionString: url });
    await db.connect();
    // One after the other: both would otherwise race to run the migrations
    // (they take an advisory lock, but the first start is the slow one).
    // Replicas behind one load balancer name one issuer (the tokens' `iss`).
    const env = { PUBLIC_URL: 'http://lineage.test' };
    a = await startAppProcess(env);
    b = await startAppProcess(env);
  }, 90_000);

  afterAll(async () => {
    await Promise.all([stopAppProcess(a), stopAppProcess(b)]);
    await db?.end();
  }, 30_000);

  async function registerOn(instance: Instance): Promise<Tokens> {
    const res = await call(instance, 'POST', '/auth/register', undefined, {
      username: uniqueUsername('mi'),
      password: PASSWORD,
    });
    expect(res.status).toBe(201);
    return res.body as Tokens;
  }

  async function logoutOn(instance: Instance, tokens: Tokens): Promise<void> {
    const res = await call(instance, 'POST', '/auth/logout', tokens.access_token, {
      refresh_token: tokens.refresh_token,
    });
    expect(res.status).toBe(200);
  }

  it('a session logged out through A is refused by B within 1 s, and by A at once', async () => {
    const tokens = await registerOn(instanceA());
    // B has seen (and verified) the token before: nothing may keep it alive there.
    expect((await call(instanceB(), 'GET', '/todos', tokens.access_token)).status).toBe(200);
    expect((await call(instanceA(), 'GET', '/todos', tokens.access_token)).status).toBe(200);

    await logoutOn(instanceA(), tokens);
    expect((await call(instanceA(), 'GET', '/todos', tokens.access_token)).status).toBe(401);
    expect(await msUntilRefused(instanceB(), tokens.access_token)).toBeLessThan(
      PROPAGATION_BOUND_MS,
    );
    // The refresh token is dead on B too (it is checked in the database).
    const refreshed = await call(instanceB(), 'POST', '/auth/refresh', undefined, {
      refresh_token: tokens.refresh_token,
    });
    expect(refreshed.status).toBe(401);
  });

  it("after B's feed connection is cut and restored, B catches up on what it missed and keeps following A", async () => {
    const missed = await registerOn(instanceA());
    const later = await registerOn(instanceA());
    for (const tokens of [missed, later]) {
      expect((await call(instanceB(), 'GET', '/todos', tokens.access_token)).status).toBe(200);
    }

    // Cut B's LISTEN connection only: its backend is the session-feed backend
    // whose client port is one of B's sockets.
    const ports = await localPortsOf(instanceB().process.pid!);
    const feeds = await db.query<{ pid: number; client_port: number }>(
      `SELECT pid, client_port FROM pg_stat_activity WHERE application_name = 'lineage-session-feed'`,
    );
    const bFeed = feeds.rows.filter((row) => ports.has(row.client_port));
    expect(bFeed).toHaveLength(1);
    await db.query('SELECT pg_terminate_backend($1)', [bFeed[0].pid]);

    // While B's feed is down, A ends a session: B must not keep accepting it.
    await logoutOn(instanceA(), missed);
    expect(await msUntilRefused(instanceB(), missed.access_token, 15_000)).toBeLessThan(
      Number.POSITIVE_INFINITY,
    );

    // Restored: B listens again on a new connection...
    await eventually(
      "B's feed connection",
      async () => {
        const now = await db.query<{ client_port: number }>(
          `SELECT client_port FROM pg_stat_activity WHERE application_name = 'lineage-session-feed'`,
        );
        const bPorts = await localPortsOf(instanceB().process.pid!);
        return now.rows.some((row) => bPorts.has(row.client_port));
      },
      { timeoutMs: 15_000, intervalMs: 100 },
    );
    // ...still refuses what it missed, and follows A's next logout within the bound.
    expect((await call(instanceB(), 'GET', '/todos', missed.access_token)).status).toBe(401);
    expect((await call(instanceB(), 'GET', '/todos', later.access_token)).status).toBe(200);
    await logoutOn(instanceA(), later);
    expect(await msUntilRefused(instanceB(), later.access_token)).toBeLessThan(
      PROPAGATION_BOUND_MS,
    );
  });
});
