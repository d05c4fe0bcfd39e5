import { randomBytes, randomUUID } from 'node:crypto';
import pg from 'pg';
import { UNBOUND } from '../../src/auth/tokens/token.service.js';
import { SessionRepository } from '../../src/auth/sessions/session.repository.js';
import { SessionRevocations } from '../../src/auth/sessions/session-revocations.js';
import {
  createPrivateDatabase,
  eventually,
  insertUser,
  type Integration,
  type PrivateDatabase,
  startIntegration,
} from '../support/integration.js';

const DAY_MS = 24 * 60 * 60 * 1000;
// Ended sessions are kept this long (plus a few seconds of clock skew), and
// the resync at start reads no further back.
const ACCESS_TOKEN_TTL_S = 60;

/**
 * SessionRevocations against the real PostgreSQL: each instance's view of
 * ended sessions, fed by the triggers' NOTIFY on its own LISTEN connection
 * and resynced from the tables when it (re)starts listening. The revocations
 * are committed on other connections (the repository's pool, or plain SQL),
 * as another instance would. A database of its own, because the outage case
 * takes the database away from new connections.
 *
 * What is not seen is shown with a sentinel: notifications arrive in commit
 * order on one connection, so once a later revocation has arrived, an
 * earlier one that was going to arrive would have.
 */
describe('session revocation feed (integration, PostgreSQL LISTEN/NOTIFY)', () => {
  let database: PrivateDatabase;
  let t: Integration;
  let sessions: SessionRepository;
  /** Started by the module, like the app's. */
  let first: SessionRevocations;
  /** A second instance on the same database, started by hand. */
  let second: SessionRevocations;
  let admin: pg.Client;
  let userId: string;

  beforeAll(async () => {
    database = await createPrivateDatabase('lineage_feed');
    t = await startIntegration({
      providers: [SessionRepository, SessionRevocations],
      databaseUrl: database.url,
      env: { ACCESS_TOKEN_TTL: String(ACCESS_TOKEN_TTL_S) },
    });
    sessions = t.get(SessionRepository);
    first = t.get(SessionRevocations);
    second = new SessionRevocations(t.configService);
    await second.onApplicationBootstrap();
    admin = new pg.Client({ connectionString: database.url });
    await admin.connect();
    userId = await insertUser(t.db);
  });

  afterAll(async () => {
    await admin?.end();
    await second?.onApplicationShutdown();
    await t?.close();
    await database?.drop();
  });

  /** A live session of `owner`, as a login leaves it. */
  async function liveSession(owner = userId, idleMs = DAY_MS): Promise<string> {
    const sessionId = randomUUID();
    const now = new Date();
    await t.db.transaction((manager) =>
      sessions.create(manager, {
        userId: owner,
        sessionId,
        now,
        tokenSalt: randomBytes(32),
        first: { issuedAt: now, expiresAt: new Date(now.getTime() + idleMs) },
        absoluteExpiresAt: new Date(now.getTime() + 30 * DAY_MS),
        userAgent: null,
        ip: null,
        binding: UNBOUND,
      }),
    );
    return sessionId;
  }

  async function logout(sessionId: string, owner = userId): Promise<void> {
    expect(await sessions.revoke(owner, [sessionId], 'logout', new Date())).toEqual([sessionId]);
  }

  /** Commits a revocation and waits until both instances have it: later ones cannot have been missed. */
  async function sentinel(): Promise<void> {
    const id = await liveSession();
    await logout(id);
    await eventually(() => first.hasEnded(id) && second.hasEnded(id), 'the sentinel arrived');
  }

  const feedBackends = async (): Promise<number[]> =>
    (
      await admin.query<{ pid: number }>(
        `SELECT pid FROM pg_stat_activity
          WHERE application_name = 'lineage-session-feed' AND datname = current_database()
          ORDER BY pid`,
      )
    ).rows.map((row) => row.pid);

  it('both instances listen, each on a connection of its own', async () => {
    expect(first.isReady).toBe(true);
    expect(second.isReady).toBe(true);
    expect(await feedBackends()).toHaveLength(2);
  });

  it('a revocation committed on another connection reaches both instances', async () => {
    const id = await liveSession();
    expect(first.hasEnded(id)).toBe(false);
    expect(second.hasEnded(id)).toBe(false);
    await logout(id);
    await eventually(() => first.hasEnded(id) && second.hasEnded(id), 'the revocation arrived');
  });

  it('a revocation made in plain SQL is announced too (the trigger, not the code path)', async () => {
    const id = await liveSession();
    await admin.query(
      `UPDATE sessions SET revoked_at = now(), revoked_reason = 'logout' WHERE id = $1`,
      [id],
    );
    await eventually(() => second.hasEnded(id), 'the revocation arrived');
  });

  it('announced at commit: not while the transaction is open, never when it rolls back', async () => {
    const id = await liveSession();
    const runner = t.db.createQueryRunner();
    await runner.connect();
    try {
      await runner.startTransaction();
      expect(await sessions.revoke(userId, [id], 'logout', new Date(), runner.manager)).toEqual([
        id,
      ]);
      await sentinel();
      expect(first.hasEnded(id)).toBe(false);
      expect(second.hasEnded(id)).toBe(false);
      await runner.rollbackTransaction();
    } finally {
      await runner.release();
    }
    await sentinel();
    expect(second.hasEnded(id)).toBe(false);
  });

  it('a live session deleted with its account is announced; a dead one is not', async () => {
    const doomed = await insertUser(t.db);
    const live = await liveSession(doomed);
    const expired = await liveSession(doomed);
    await admin.query(`UPDATE sessions SET expires_at = now() - interval '1 day' WHERE id = $1`, [
      expired,
    ]);
    await admin.query('DELETE FROM users WHERE id = $1', [doomed]);
    await eventually(() => second.hasEnded(live), 'the deletion arrived');
    await sentinel();
    expect(second.hasEnded(expired)).toBe(false);
    // The live one left a tombstone for later resyncs; the dead one did not.
    const tombstones = await admin.query<{ family_id: string }>(
      'SELECT family_id FROM deleted_sessions WHERE family_id = ANY($1::uuid[])',
      [[live, expired]],
    );
    expect(tombstones.rows.map((row) => row.family_id)).toEqual([live]);
  });

  it('an instance is not ready before it starts; it starts resynced with what ended within its window, and stops', async () => {
    const revoked = await liveSession();
    await logout(revoked);
    const revokedLongAgo = await liveSession();
    await admin.query(
      `UPDATE sessions SET revoked_at = now() - interval '1 hour', revoked_reason = 'logout' WHERE id = $1`,
      [revokedLongAgo],
    );
    const doomed = await insertUser(t.db);
    const deleted = await liveSession(doomed);
    await admin.query('DELETE FROM users WHERE id = $1', [doomed]);
    const live = await liveSession();

    const late = new SessionRevocations(t.configService);
    expect(late.isReady).toBe(false);
    try {
      await late.onApplicationBootstrap();
      // Ready means listening and resynced: no waiting for the feed.
      expect(late.isReady).toBe(true);
      expect(late.hasEnded(revoked)).toBe(true);
      expect(late.hasEnded(deleted)).toBe(true);
      // Longer ago than any access token of it can live: not kept.
      expect(late.hasEnded(revokedLongAgo)).toBe(false);
      expect(late.hasEnded(live)).toBe(false);
      expect(await feedBackends()).toHaveLength(3);
    } finally {
      await late.onApplicationShutdown();
    }
    expect(late.isReady).toBe(false);
    await eventually(async () => (await feedBackends()).length === 2, 'its connection closed');
  });

  it('tells a follower of each end once, as it learns it: announced ones, and its own before their NOTIFY', async () => {
    const told: string[] = [];
    const unfollow = second.follow({
      ended: (id) => told.push(id),
      interrupted: () => told.push('interrupted'),
    });
    try {
      const announced = await liveSession();
      await logout(announced);
      await eventually(() => told.includes(announced), 'the announced end told');

      // As SessionsService does after its commit: told at once, and its
      // NOTIFY, which reaches this instance's own listener too, is not told again.
      const own = await liveSession();
      await logout(own);
      second.recordEnded([own]);
      expect(told.filter((id) => id === own)).toHaveLength(1);
      await sentinel();
      expect(told.filter((id) => id === own)).toHaveLength(1);
      expect(told.filter((id) => id === announced)).toHaveLength(1);
    } finally {
      unfollow();
    }
    const afterwards = await liveSession();
    await logout(afterwards);
    await sentinel();
    expect(told).not.toContain(afterwards);
    expect(told).not.toContain('interrupted');
  });

  it('tells its followers when its view stops being ready', async () => {
    const known = new Set(await feedBackends());
    const late = new SessionRevocations(t.configService);
    try {
      await late.onApplicationBootstrap();
      const mine = (await feedBackends()).filter((pid) => !known.has(pid));
      expect(mine).toHaveLength(1);
      let interrupted = 0;
      late.follow({ ended: () => undefined, interrupted: () => (interrupted += 1) });
      await admin.query('SELECT pg_terminate_backend($1)', [mine[0]]);
      await eventually(() => interrupted === 1, 'the follower told');
      await eventually(() => late.isReady, 'the view back');
      expect(interrupted).toBe(1);
    } finally {
      await late.onApplicationShutdown();
    }
    await eventually(async () => (await feedBackends()).length === 2, 'its connection closed');
  });

  it('after losing its connection it is not ready until it has reconnected and resynced, and learns what ended meanwhile', async () => {
    const before = await feedBackends();
    const endedWhileDown = await liveSession();
    const stillLive = await liveSession();
    // No new connection succeeds until allowed again: the instances cannot
    // reconnect, so what ends now can only reach them through the resync.
    await database.allowConnections(false);
    let resyncHeld = false;
    try {
      await admin.query('SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid', [before]);
      await eventually(() => !first.isReady && !second.isReady, 'both feeds lost');
      await admin.query(
        `UPDATE sessions SET revoked_at = now(), revoked_reason = 'logout' WHERE id = $1`,
        [endedWhileDown],
      );
      expect(first.isReady).toBe(false);
      expect(second.isReady).toBe(false);
      // The resync reads deleted_sessions: holding it makes the moment
      // between listening again and having resynced last until released.
      await admin.query('BEGIN');
      await admin.query('LOCK TABLE deleted_sessions IN ACCESS EXCLUSIVE MODE');
      resyncHeld = true;
      await database.allowConnections(true);
      // Reconnect attempts back off (up to seconds): a longer bound. Watched
      // from the pool: inside its transaction, the admin connection would
      // keep seeing its first snapshot of pg_stat_activity.
      await eventually(
        async () =>
          (
            await t.db.query<unknown[]>(
              `SELECT 1 FROM pg_stat_activity
                WHERE application_name = 'lineage-session-feed' AND datname = current_database()
                  AND wait_event_type = 'Lock'`,
            )
          ).length === 2,
        'both feeds listening again, their resync waiting',
        800,
      );
      expect(first.isReady).toBe(false);
      expect(second.isReady).toBe(false);
    } finally {
      if (resyncHeld) await admin.query('COMMIT');
      await database.allowConnections(true);
    }
    await eventually(() => first.isReady && second.isReady, 'both feeds back');
    // Resynced before ready: no NOTIFY could have carried it (nobody listened).
    expect(first.hasEnded(endedWhileDown)).toBe(true);
    expect(second.hasEnded(endedWhileDown)).toBe(true);
    expect(second.hasEnded(stillLive)).toBe(false);
    const after = await feedBackends();
    expect(after).toHaveLength(2);
    expect(after.filter((pid) => before.includes(pid))).toEqual([]);
    // Listening again: a new revocation arrives through the feed.
    await logout(stillLive);
    await eventually(() => first.hasEnded(stillLive) && second.hasEnded(stillLive), 'the feed');
  });
});
