import { setTimeout as sleep } from 'node:timers/promises';
import { jest } from '@jest/globals';
import { SessionRevocations } from '../src/auth/sessions/session-revocations.js';
import { SessionRepository } from '../src/auth/sessions/session.repository.js';
import { localPortsOf } from './support/pg-backends.js';
import { bearer, claimsOf, login, logout, PASSWORD, register, todos } from './support/requests.js';
import { eventually } from './support/time.js';
import { startTestApp, type TestApp, useTestApp } from './support/test-app.js';

/**
 * Each instance keeps an in-memory view of ended sessions (no database round
 * trip per request), exact on the instance that ends a session and fed by
 * PostgreSQL LISTEN/NOTIFY for the others, resynced at start and on reconnect.
 */
describe('session revocation feed across instances (e2e)', () => {
  const a = useTestApp();
  const b = useTestApp();

  /** Polls until the instance refuses the token: the feed is asynchronous. */
  async function refusedBy(t: TestApp, token: string): Promise<number> {
    return eventually('the token to be refused', async () => {
      const { status } = await todos(t, token);
      return status === 401 ? status : undefined;
    });
  }

  it('answers from memory: the session is read from the database once, not per request', async () => {
    const user = await register(a);
    const findSession = jest.spyOn(a.app.get(SessionRepository), 'findSession');
    try {
      for (let i = 0; i < 10; i += 1) await todos(a, user.access_token).expect(200);
      expect(findSession.mock.calls.length).toBeLessThanOrEqual(1);
    } finally {
      findSession.mockRestore();
    }
  });

  it('logout on one instance: refused there at once, and on the other through the feed', async () => {
    const user = await register(a);
    await todos(a, user.access_token).expect(200);
    await todos(b, user.access_token).expect(200);
    await logout(a, user.access_token).expect(200);
    await todos(a, user.access_token).expect(401);
    expect(await refusedBy(b, user.access_token)).toBe(401);
  });

  it('an instance that starts later learns earlier revocations and deletions (resync at start)', async () => {
    const revokedUser = await register(a);
    await logout(a, revokedUser.access_token).expect(200);
    const deletedUser = await register(a);
    await a
      .http()
      .delete('/users/me')
      .set(bearer(deletedUser.access_token))
      .send({ password: PASSWORD })
      .expect(204);

    const late = await startTestApp();
    try {
      expect(late.app.get(SessionRevocations).isReady).toBe(true);
      await todos(late, revokedUser.access_token).expect(401);
      await todos(late, deletedUser.access_token).expect(401);
    } finally {
      await late.close();
    }
  });

  it('a deleted account is refused on the other instance too', async () => {
    const user = await register(a);
    await todos(b, user.access_token).expect(200);
    await a
      .http()
      .delete('/users/me')
      .set(bearer(user.access_token))
      .send({ password: PASSWORD })
      .expect(204);
    expect(await refusedBy(b, user.access_token)).toBe(401);
  });

  it('a revocation made while the feed is down is caught up on reconnect', async () => {
    const user = await register(a);
    const other = await login(a, user.username);
    await todos(b, user.access_token).expect(200);
    const feed = b.app.get(SessionRevocations);

    // Cut every instance's feed connection (on this database only: other
    // suites' servers may share the PostgreSQL), then end the session behind the feed's back.
    await b.db.query(
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
       WHERE application_name = 'lineage-session-feed' AND datname = current_database()`,
    );
    await b.db.query(
      `UPDATE sessions SET revoked_at = now(), revoked_reason = 'logout' WHERE id = $1`,
      [claimsOf(user.access_token).sid],
    );
    // Whether b is still reconnecting (it asks the database) or has resynced, it refuses.
    await todos(b, user.access_token).expect(401);
    expect(await eventually('the feed to resync', () => feed.isReady)).toBe(true);
    await todos(b, user.access_token).expect(401);
    await todos(b, other.access_token).expect(200);
  });
});

const describeOnLinux = process.platform === 'linux' ? describe : describe.skip;

/**
 * A feed connection can hang without an error or an end: a NAT that dropped
 * the flow, a partition, a frozen server. Here its backend process is stopped
 * with SIGSTOP (the server runs on this machine in the e2e setup): its kernel
 * still holds the connection open and answers TCP keepalives, but nothing
 * arrives on it. The revocations are made in SQL, behind the instance's back,
 * because an instance that ends a session records it itself.
 *
 * One instance at a time (the suite above has closed its two), so the feed
 * backend of this process is the one whose client port is one of its sockets.
 */
describeOnLinux('a hung session feed (its backend frozen)', () => {
  const frozen: number[] = [];

  /** Every stopped backend is continued, whatever the test did: the database is shared. */
  function thaw(): void {
    for (const pid of frozen.splice(0)) {
      try {
        process.kill(pid, 'SIGCONT');
      } catch {
        // Already gone.
      }
    }
  }

  afterEach(thaw);
  afterAll(thaw);

  async function feedBackendOf(t: TestApp): Promise<number> {
    const ports = await localPortsOf(process.pid);
    const rows = await t.db.query<{ pid: number; client_port: number }[]>(
      `SELECT pid, client_port FROM pg_stat_activity
       WHERE application_name = 'lineage-session-feed' AND datname = current_database()`,
    );
    const mine = rows.filter((row) => ports.has(row.client_port));
    expect(mine).toHaveLength(1);
    return mine[0].pid;
  }

  async function freezeFeedOf(t: TestApp): Promise<number> {
    const pid = await feedBackendOf(t);
    process.kill(pid, 'SIGSTOP');
    frozen.push(pid);
    return pid;
  }

  async function revokeInSql(t: TestApp, accessToken: string): Promise<void> {
    await t.db.query(
      `UPDATE sessions SET revoked_at = now(), revoked_reason = 'logout' WHERE id = $1`,
      [claimsOf(accessToken).sid],
    );
  }

  it('with no heartbeat due, the instance keeps accepting a session revoked behind its frozen feed', async () => {
    // The gap the heartbeat closes: nothing else notices (no error, no end,
    // and the kernel answers keepalives), so the view stays "ready".
    const t = await startTestApp({ SESSION_FEED_HEARTBEAT: '1h' });
    try {
      const user = await register(t);
      await todos(t, user.access_token).expect(200);
      await freezeFeedOf(t);
      await revokeInSql(t, user.access_token);

      const statuses: number[] = [];
      for (let i = 0; i < 12; i += 1) {
        statuses.push((await todos(t, user.access_token)).status);
        await sleep(250);
      }
      expect(statuses).toEqual(Array<number>(12).fill(200));
      expect(t.app.get(SessionRevocations).isReady).toBe(true);
    } finally {
      thaw();
      await t.close();
    }
  });

  it('an unanswered heartbeat takes the view out of use: the revoked session is refused, then the feed is back, resynced', async () => {
    const t = await startTestApp({
      SESSION_FEED_HEARTBEAT: '1s',
      SESSION_FEED_TIMEOUT: '2s',
    });
    const feed = t.app.get(SessionRevocations);
    try {
      const user = await register(t);
      const other = await login(t, user.username);
      await todos(t, user.access_token).expect(200);
      await todos(t, other.access_token).expect(200);
      const stopped = await freezeFeedOf(t);
      await revokeInSql(t, user.access_token);

      // Bounded well past SESSION_FEED_TIMEOUT, the time this should take.
      const status = await eventually(
        'the revoked session to be refused',
        async () => {
          const res = await todos(t, user.access_token);
          return res.status === 200 ? undefined : res.status;
        },
        { timeoutMs: 20_000, intervalMs: 100 },
      );
      expect(status).toBe(401);
      // The instance still answers (from the database) and says it is healthy.
      await t.http().get('/health').expect(200, { status: 'ok', database: 'up' });

      // A new connection, to another backend, resynced: the view is back in use.
      expect(
        await eventually('the feed to be back', () => feed.isReady, {
          timeoutMs: 20_000,
          intervalMs: 100,
        }),
      ).toBe(true);
      expect(await feedBackendOf(t)).not.toBe(stopped);
      await todos(t, user.access_token).expect(401);
      await todos(t, other.access_token).expect(200);
    } finally {
      thaw();
      await t.close();
    }
  }, 60_000);

  it('shutting down does not wait for a frozen feed backend to answer', async () => {
    const t = await startTestApp({ SESSION_FEED_HEARTBEAT: '1h' });
    await freezeFeedOf(t);
    // A graceful close needs the server's answer; the test's timeout is the bound.
    await t.close();
    thaw();
  });
});
