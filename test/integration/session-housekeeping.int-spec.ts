import { jest } from '@jest/globals';
import { ScheduleModule } from '@nestjs/schedule';
import pg from 'pg';
import type { QueryRunner } from 'typeorm';
import {
  HOUSEKEEPING_BATCH,
  HOUSEKEEPING_LOCK_KEY,
  SessionHousekeeping,
} from '../../src/auth/sessions/session-housekeeping.service.js';
import { SessionRevocations } from '../../src/auth/sessions/session-revocations.js';
import {
  createPrivateDatabase,
  insertUser,
  type Integration,
  type PrivateDatabase,
  startIntegration,
} from '../support/integration.js';

const DAY_MS = 24 * 60 * 60 * 1000;
const SESSION_RETENTION_DAYS = 7;
const EVENT_RETENTION_DAYS = 90;

/**
 * SessionHousekeeping.run(now) against the real PostgreSQL. A database of its
 * own: the counts it returns are of whole tables, which other suites write
 * to at the same time on the shared database, and a run there would delete
 * their rows.
 */
describe('session housekeeping (integration, PostgreSQL)', () => {
  let database: PrivateDatabase;
  let t: Integration;
  let housekeeping: SessionHousekeeping;
  let userId: string;

  beforeAll(async () => {
    database = await createPrivateDatabase('lineage_housekeeping');
    t = await startIntegration({
      imports: [ScheduleModule.forRoot()],
      providers: [SessionHousekeeping, SessionRevocations],
      databaseUrl: database.url,
      env: {
        SESSION_RETENTION: `${SESSION_RETENTION_DAYS}d`,
        EVENT_RETENTION: `${EVENT_RETENTION_DAYS}d`,
      },
    });
    housekeeping = t.get(SessionHousekeeping);
    userId = await insertUser(t.db);
  });

  afterAll(async () => {
    await t?.close();
    await database?.drop();
  });

  // Each case counts from empty tables (TRUNCATE fires no row trigger, so it leaves no tombstones).
  beforeEach(async () => {
    await t.db.query('TRUNCATE sessions, deleted_sessions, auth_events');
  });

  /** `n` sessions of the user, ending at `expiresAt` and revoked at `revokedAt` (or live). */
  async function insertSessions(
    n: number,
    ends: { expiresAt: Date; revokedAt?: Date },
  ): Promise<string[]> {
    const rows = await t.db.query<{ id: string }[]>(
      `INSERT INTO sessions (id, user_id, created_at, absolute_expires_at, token_salt, rotated_at,
                             last_used_at, expires_at, generation, revoked_at, revoked_reason)
       SELECT gen_random_uuid(), $1, $2::timestamptz - interval '1 day', $2, sha256(i::text::bytea),
              $2::timestamptz - interval '1 day', $2::timestamptz - interval '1 day', $2, 0,
              $3::timestamptz, CASE WHEN $3::timestamptz IS NULL THEN NULL ELSE 'logout' END
         FROM generate_series(1, $4::int) AS i
       RETURNING id`,
      [userId, ends.expiresAt, ends.revokedAt ?? null, n],
    );
    return rows.map((row) => row.id);
  }

  async function insertTombstone(deletedAt: Date): Promise<string> {
    const [row] = await t.db.query<{ id: string }[]>(
      `INSERT INTO deleted_sessions (family_id, deleted_at) VALUES (gen_random_uuid(), $1)
       RETURNING family_id AS id`,
      [deletedAt],
    );
    return row.id;
  }

  async function insertEvent(occurredAt: Date): Promise<string> {
    const [row] = await t.db.query<{ id: string }[]>(
      `INSERT INTO auth_events (occurred_at, type, user_id) VALUES ($1, 'login_succeeded', $2)
       RETURNING id::text AS id`,
      [occurredAt, userId],
    );
    return row.id;
  }

  const ids = async (sql: string) =>
    (await t.db.query<{ id: string }[]>(sql)).map((row) => row.id).sort();

  it('deletes only what is past retention (the cutoff itself is kept) and counts it', async () => {
    const now = new Date();
    const sessionCutoff = new Date(now.getTime() - SESSION_RETENTION_DAYS * DAY_MS);
    const eventCutoff = new Date(now.getTime() - EVENT_RETENTION_DAYS * DAY_MS);
    const justBefore = (cutoff: Date) => new Date(cutoff.getTime() - 1);
    const future = new Date(now.getTime() + DAY_MS);

    const [expiredLongAgo] = await insertSessions(1, { expiresAt: justBefore(sessionCutoff) });
    const [expiredAtCutoff] = await insertSessions(1, { expiresAt: sessionCutoff });
    const [revokedLongAgo] = await insertSessions(1, {
      expiresAt: future,
      revokedAt: justBefore(sessionCutoff),
    });
    const [revokedAtCutoff] = await insertSessions(1, {
      expiresAt: future,
      revokedAt: sessionCutoff,
    });
    const [live] = await insertSessions(1, { expiresAt: future });
    await insertTombstone(justBefore(sessionCutoff));
    const keptTombstone = await insertTombstone(sessionCutoff);
    await insertEvent(justBefore(eventCutoff));
    const keptEvent = await insertEvent(eventCutoff);
    // Past the sessions' retention but within the events': kept.
    const recentEvent = await insertEvent(justBefore(sessionCutoff));

    expect(await housekeeping.run(now)).toEqual({
      sessions: 2,
      tombstones: 1,
      events: 1,
    });
    expect(await ids('SELECT id FROM sessions')).toEqual(
      [expiredAtCutoff, revokedAtCutoff, live].sort(),
    );
    expect(await ids('SELECT family_id AS id FROM deleted_sessions')).toEqual([keptTombstone]);
    expect(await ids('SELECT id::text AS id FROM auth_events')).toEqual(
      [keptEvent, recentEvent].sort(),
    );
    // Deleting dead sessions leaves no tombstone (the trigger is for live ones).
    expect(
      await t.db.query('SELECT 1 FROM deleted_sessions WHERE family_id = ANY($1::uuid[])', [
        [expiredLongAgo, revokedLongAgo],
      ]),
    ).toEqual([]);

    // Nothing is left to do.
    expect(await housekeeping.run(now)).toEqual({
      sessions: 0,
      tombstones: 0,
      events: 0,
    });
  });

  it('deletes in statements of at most HOUSEKEEPING_BATCH rows until one comes back short', async () => {
    const now = new Date();
    const past = new Date(now.getTime() - (SESSION_RETENTION_DAYS + 1) * DAY_MS);
    await insertSessions(2 * HOUSEKEEPING_BATCH + 1, { expiresAt: past });
    const [live] = await insertSessions(1, { expiresAt: new Date(now.getTime() + DAY_MS) });

    // Observes the statements run's own connection sends, and what each returned.
    const deletes: number[] = [];
    const createQueryRunner = t.db.createQueryRunner.bind(t.db);
    const spy = jest.spyOn(t.db, 'createQueryRunner').mockImplementation((mode) => {
      const runner = createQueryRunner(mode);
      const query = runner.query.bind(runner) as (...args: unknown[]) => Promise<unknown>;
      runner.query = (async (sql: string, ...rest: unknown[]) => {
        const result = await query(sql, ...rest);
        if (sql.startsWith('DELETE FROM sessions')) {
          deletes.push((result as { records: unknown[] }).records.length);
        }
        return result;
      }) as QueryRunner['query'];
      return runner;
    });
    try {
      expect((await housekeeping.run(now))?.sessions).toBe(2 * HOUSEKEEPING_BATCH + 1);
    } finally {
      spy.mockRestore();
    }
    expect(deletes).toEqual([HOUSEKEEPING_BATCH, HOUSEKEEPING_BATCH, 1]);
    expect(await ids('SELECT id FROM sessions')).toEqual([live]);
  });

  it('drops what the revocation view knows of the sessions it deletes, and only of those', async () => {
    const now = new Date();
    const [gone] = await insertSessions(1, {
      expiresAt: new Date(now.getTime() - (SESSION_RETENTION_DAYS + 1) * DAY_MS),
    });
    const [kept] = await insertSessions(1, { expiresAt: new Date(now.getTime() + DAY_MS) });
    const revocations = t.get(SessionRevocations);
    revocations.rememberOwner(gone, userId);
    revocations.rememberOwner(kept, userId);
    expect((await housekeeping.run(now))?.sessions).toBe(1);
    expect(revocations.knownOwner(gone)).toBeUndefined();
    expect(revocations.knownOwner(kept)).toBe(userId);
  });

  it('returns null and deletes nothing while another instance holds the lock, and runs once it is free', async () => {
    const now = new Date();
    const [expired] = await insertSessions(1, {
      expiresAt: new Date(now.getTime() - (SESSION_RETENTION_DAYS + 1) * DAY_MS),
    });
    const other = new pg.Client({ connectionString: database.url });
    await other.connect();
    try {
      await other.query('SELECT pg_advisory_lock($1)', [HOUSEKEEPING_LOCK_KEY]);
      expect(await housekeeping.run(now)).toBeNull();
      expect(await ids('SELECT id FROM sessions')).toEqual([expired]);

      await other.query('SELECT pg_advisory_unlock($1)', [HOUSEKEEPING_LOCK_KEY]);
      expect((await housekeeping.run(now))?.sessions).toBe(1);
      // The run gave the lock back: the other instance can take it.
      const { rows } = await other.query<{ locked: boolean }>(
        'SELECT pg_try_advisory_lock($1) AS locked',
        [HOUSEKEEPING_LOCK_KEY],
      );
      expect(rows[0].locked).toBe(true);
    } finally {
      await other.end();
    }
  });
});
