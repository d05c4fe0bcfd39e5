import { randomBytes, randomUUID } from 'node:crypto';
import type { DataSource } from 'typeorm';
import {
  type Rotated,
  type Rotation,
  SessionRepository,
} from '../../src/auth/sessions/session.repository.js';
import { generationJti, UNBOUND } from '../../src/auth/tokens/token.service.js';
import { insertUser, type Integration, startIntegration } from '../support/integration.js';
import { holdRowLock } from '../support/row-lock.js';

const DAY_MS = 24 * 60 * 60 * 1000;

/** The row as stored, with its version (xmin) and place (ctid): an UPDATE that wrote nothing leaves both. */
interface RawRow {
  xmin: string;
  ctid: string;
  user_id: string;
  generation: number;
  rotated_at: Date;
  last_used_at: Date;
  expires_at: Date;
  absolute_expires_at: Date;
  revoked_at: Date | null;
  revoked_reason: string | null;
  token_salt: Buffer;
}

interface Made {
  sessionId: string;
  userId: string;
  salt: Buffer;
  /** Whole seconds, like every time a rotation writes. */
  now: Date;
  absoluteExpiresAt: Date;
}

const jtiOf = (salt: Buffer, generation: number) =>
  Buffer.from(generationJti(salt, generation), 'base64url');
const wholeSeconds = (ms: number) => new Date(Math.floor(ms / 1000) * 1000);

/**
 * SessionRepository against the real PostgreSQL, without HTTP: each condition
 * of the rotation's one UPDATE (SessionRepository.rotate) is shown by a case
 * that would pass the UPDATE without it, and the digest the database computes
 * is shown to be the one the server signs.
 */
describe('session store (integration, PostgreSQL)', () => {
  let t: Integration;
  let sessions: SessionRepository;
  let userId: string;
  let otherUserId: string;

  beforeAll(async () => {
    t = await startIntegration({ providers: [SessionRepository] });
    sessions = t.get(SessionRepository);
    userId = await insertUser(t.db);
    otherUserId = await insertUser(t.db);
  });

  afterAll(async () => {
    await t?.close();
  });

  let held: { release(): Promise<void> } | undefined;
  afterEach(async () => {
    await held?.release();
    held = undefined;
  });

  /** A session at generation 0, as a login starts it (by default `userId`'s, now). */
  async function makeSession(
    options: { lifetimeMs?: number; idleMs?: number; owner?: string; at?: Date } = {},
  ): Promise<Made> {
    const now = wholeSeconds((options.at ?? new Date()).getTime());
    const owner = options.owner ?? userId;
    const absoluteExpiresAt = new Date(now.getTime() + (options.lifetimeMs ?? 30 * DAY_MS));
    const idle = new Date(
      Math.min(now.getTime() + (options.idleMs ?? 7 * DAY_MS), absoluteExpiresAt.getTime()),
    );
    const made = {
      sessionId: randomUUID(),
      userId: owner,
      salt: randomBytes(32),
      now,
      absoluteExpiresAt,
    };
    await t.db.transaction((manager) =>
      sessions.create(manager, {
        userId: owner,
        sessionId: made.sessionId,
        now,
        tokenSalt: made.salt,
        first: { issuedAt: now, expiresAt: idle },
        absoluteExpiresAt,
        userAgent: 'session-store-spec',
        ip: '127.0.0.1',
        binding: UNBOUND,
      }),
    );
    return made;
  }

  /** A rotation of `generation` a second after `made.now`, sliding 7 days. */
  function rotation(made: Made, generation: number, changes: Partial<Rotation> = {}): Rotation {
    const at = new Date(made.now.getTime() + 1000);
    return {
      sessionId: made.sessionId,
      userId: made.userId,
      generation,
      issuedAt: at,
      slidingExpiresAt: new Date(at.getTime() + 7 * DAY_MS),
      now: at,
      ...changes,
    };
  }

  async function rawRow(sessionId: string): Promise<RawRow> {
    const rows = await t.db.query<RawRow[]>(
      `SELECT xmin::text AS xmin, ctid::text AS ctid, user_id, generation, rotated_at,
              last_used_at, expires_at, absolute_expires_at, revoked_at, revoked_reason, token_salt
         FROM sessions WHERE id = $1`,
      [sessionId],
    );
    expect(rows).toHaveLength(1);
    return rows[0];
  }

  /** Rotates generation 0 to 1, as the newest token's presentation does. */
  async function rotateOnce(made: Made): Promise<Rotated> {
    const rotated = await sessions.rotate(rotation(made, 0), jtiOf(made.salt, 0));
    expect(rotated).not.toBeNull();
    return rotated!;
  }

  describe('rotate()', () => {
    it('advances the newest generation of a live session by one, and returns the next jti as JS computes it', async () => {
      const made = await makeSession();
      const r = rotation(made, 0);
      const rotated = await sessions.rotate(r, jtiOf(made.salt, 0));
      expect(rotated).toEqual({
        generation: 1,
        jti: jtiOf(made.salt, 1),
        expiresAt: r.slidingExpiresAt,
      });
      const row = await rawRow(made.sessionId);
      expect(row).toMatchObject({
        generation: 1,
        rotated_at: r.issuedAt,
        last_used_at: r.issuedAt,
        expires_at: r.slidingExpiresAt,
        revoked_at: null,
      });
    });

    it.each([
      // Byte order matters from 256 on, the sign bit at 2^31 - 1.
      [1],
      [255],
      [256],
      [65_535],
      [16_777_216],
      [2_147_483_646],
    ])(
      "from generation %i: the database's digest (int4send) is the JS digest, both ways",
      async (generation) => {
        const made = await makeSession();
        await t.db.query('UPDATE sessions SET generation = $2 WHERE id = $1', [
          made.sessionId,
          generation,
        ]);
        // The WHERE accepts the JS digest of this generation ...
        const rotated = await sessions.rotate(
          rotation(made, generation),
          jtiOf(made.salt, generation),
        );
        // ... and RETURNING computes the JS digest of the next one.
        expect(rotated?.generation).toBe(generation + 1);
        expect(rotated?.jti.toString('base64url')).toBe(generationJti(made.salt, generation + 1));
      },
    );

    it('a stale generation (with its own, once valid, jti) matches nothing and writes nothing', async () => {
      const made = await makeSession();
      await rotateOnce(made);
      const before = await rawRow(made.sessionId);
      expect(await sessions.rotate(rotation(made, 0), jtiOf(made.salt, 0))).toBeNull();
      expect(await rawRow(made.sessionId)).toEqual(before);
    });

    it.each([
      ['the digest of another generation', (made: Made) => jtiOf(made.salt, 1)],
      ['the digest under another salt', () => jtiOf(randomBytes(32), 0)],
      ['random bytes', () => randomBytes(32)],
    ])('a wrong jti (%s) matches nothing and writes nothing', async (_case, jti) => {
      const made = await makeSession();
      const before = await rawRow(made.sessionId);
      expect(await sessions.rotate(rotation(made, 0), jti(made))).toBeNull();
      expect(await rawRow(made.sessionId)).toEqual(before);
      // The same rotation with the right jti goes through: only the jti was wrong.
      await rotateOnce(made);
    });

    it('another user matches nothing and writes nothing', async () => {
      const made = await makeSession();
      const before = await rawRow(made.sessionId);
      const r = rotation(made, 0, { userId: otherUserId });
      expect(await sessions.rotate(r, jtiOf(made.salt, 0))).toBeNull();
      expect(await rawRow(made.sessionId)).toEqual(before);
      await rotateOnce(made);
    });

    it('a revoked session matches nothing and writes nothing', async () => {
      const made = await makeSession();
      expect(await sessions.revoke(userId, [made.sessionId], 'logout', made.now)).toEqual([
        made.sessionId,
      ]);
      const before = await rawRow(made.sessionId);
      expect(await sessions.rotate(rotation(made, 0), jtiOf(made.salt, 0))).toBeNull();
      expect(await rawRow(made.sessionId)).toEqual(before);
    });

    it('an expired session matches nothing from the instant of expires_at, and writes nothing', async () => {
      const made = await makeSession({ idleMs: 60_000 });
      const before = await rawRow(made.sessionId);
      const expiry = before.expires_at;
      const atExpiry = rotation(made, 0, { issuedAt: expiry, now: expiry });
      expect(await sessions.rotate(atExpiry, jtiOf(made.salt, 0))).toBeNull();
      expect(await rawRow(made.sessionId)).toEqual(before);
      // A millisecond earlier it is still live.
      const justBefore = new Date(expiry.getTime() - 1);
      const live = rotation(made, 0, {
        issuedAt: wholeSeconds(justBefore.getTime()),
        now: justBefore,
      });
      expect(await sessions.rotate(live, jtiOf(made.salt, 0))).not.toBeNull();
    });

    it('caps the new expires_at at absolute_expires_at', async () => {
      const made = await makeSession({ lifetimeMs: 60 * 60 * 1000 });
      const r = rotation(made, 0);
      expect(r.slidingExpiresAt.getTime()).toBeGreaterThan(made.absoluteExpiresAt.getTime());
      const rotated = await sessions.rotate(r, jtiOf(made.salt, 0));
      expect(rotated?.expiresAt).toEqual(made.absoluteExpiresAt);
      const row = await rawRow(made.sessionId);
      expect(row.expires_at).toEqual(made.absoluteExpiresAt);
      expect(row.absolute_expires_at).toEqual(made.absoluteExpiresAt);
    });

    it('two rotations of one generation on two connections, queued on the row lock: exactly one wins', async () => {
      const made = await makeSession();
      const lock = await holdRowLock('SELECT 1 FROM sessions WHERE id = $1 FOR UPDATE', [
        made.sessionId,
      ]);
      held = lock;
      const both = [0, 1].map(() => sessions.rotate(rotation(made, 0), jtiOf(made.salt, 0)));
      // Both statements wait behind the holder, one directly, the other behind it.
      await lock.waitForWaiters(2);
      await lock.release();
      const results = await Promise.all(both);
      expect(results.filter((result) => result !== null)).toEqual([
        { generation: 1, jti: jtiOf(made.salt, 1), expiresAt: expect.any(Date) as unknown },
      ]);
      expect((await rawRow(made.sessionId)).generation).toBe(1);
    });

    it('ten concurrent rotations of one generation: exactly one wins', async () => {
      const made = await makeSession();
      const results = await Promise.all(
        Array.from({ length: 10 }, () => sessions.rotate(rotation(made, 0), jtiOf(made.salt, 0))),
      );
      expect(results.filter((result) => result !== null)).toHaveLength(1);
      expect((await rawRow(made.sessionId)).generation).toBe(1);
    });

    it('is a HOT update: no index entry is written (pg_stat_xact_user_tables)', async () => {
      const made = await makeSession();
      // This transaction's own counters: other suites updating sessions at the same time do not count.
      const runner = t.db.createQueryRunner();
      await runner.connect();
      await runner.startTransaction();
      try {
        const inTransaction = new SessionRepository({
          manager: runner.manager,
        } as unknown as DataSource);
        const counters = async () => {
          const rows = (await runner.query(
            `SELECT n_tup_upd::int AS upd, n_tup_hot_upd::int AS hot
               FROM pg_stat_xact_user_tables WHERE relid = 'sessions'::regclass`,
          )) as { upd: number; hot: number }[];
          return rows[0] ?? { upd: 0, hot: 0 };
        };
        const before = await counters();
        for (let g = 0; g < 3; g += 1) {
          const r = rotation(made, g, {
            issuedAt: new Date(made.now.getTime() + (g + 1) * 1000),
          });
          expect(await inTransaction.rotate(r, jtiOf(made.salt, g))).not.toBeNull();
        }
        const rotated = await counters();
        expect(rotated.upd - before.upd).toBe(3);
        expect(rotated.hot - before.hot).toBe(3);

        // Control: a revocation writes the indexed revoked_at, so it is not HOT.
        await inTransaction.revoke(userId, [made.sessionId], 'logout', made.now, runner.manager);
        const revoked = await counters();
        expect(revoked.upd - rotated.upd).toBe(1);
        expect(revoked.hot - rotated.hot).toBe(0);
      } finally {
        await runner.rollbackTransaction();
        await runner.release();
      }
    });
  });

  describe('touchGeneration()', () => {
    async function touch(made: Made, generation: number, now: Date): Promise<boolean> {
      return sessions.touchGeneration(t.db.manager, made.sessionId, generation, now);
    }

    it('matches the newest generation of a live session, and marks the use', async () => {
      const made = await makeSession();
      await rotateOnce(made);
      const later = new Date(made.now.getTime() + 5000);
      expect(await touch(made, 1, later)).toBe(true);
      const row = await rawRow(made.sessionId);
      expect(row.last_used_at).toEqual(later);
      expect(row.generation).toBe(1);
    });

    it.each([
      ['an older generation', 0],
      ['a future generation', 2],
    ])('does not match %s, and writes nothing', async (_case, generation) => {
      const made = await makeSession();
      await rotateOnce(made);
      const before = await rawRow(made.sessionId);
      expect(await touch(made, generation, new Date(made.now.getTime() + 5000))).toBe(false);
      expect(await rawRow(made.sessionId)).toEqual(before);
    });

    it('does not match a revoked session', async () => {
      const made = await makeSession();
      await sessions.revoke(userId, [made.sessionId], 'logout', made.now);
      const before = await rawRow(made.sessionId);
      expect(await touch(made, 0, new Date(made.now.getTime() + 5000))).toBe(false);
      expect(await rawRow(made.sessionId)).toEqual(before);
    });

    it('does not match an expired session, from the instant of expires_at', async () => {
      const made = await makeSession({ idleMs: 60_000 });
      const before = await rawRow(made.sessionId);
      expect(await touch(made, 0, before.expires_at)).toBe(false);
      expect(await rawRow(made.sessionId)).toEqual(before);
      expect(await touch(made, 0, new Date(before.expires_at.getTime() - 1))).toBe(true);
    });
  });

  /** The sessions as stored, by id (revocation columns and the row version). */
  async function states(ids: string[]) {
    const rows = await t.db.query<
      { id: string; xmin: string; revoked_at: Date | null; revoked_reason: string | null }[]
    >(
      `SELECT id, xmin::text AS xmin, revoked_at, revoked_reason
         FROM sessions WHERE id = ANY($1::uuid[])`,
      [ids],
    );
    return Object.fromEntries(rows.map((row) => [row.id, row]));
  }

  const later = (made: Made, ms = 5000) => new Date(made.now.getTime() + ms);
  const sorted = (ids: string[]) => [...ids].sort();

  describe('create()', () => {
    it('starts a session at generation 0 with what the login gave it', async () => {
      const made = await makeSession({ idleMs: DAY_MS });
      const row = await rawRow(made.sessionId);
      expect(row).toMatchObject({
        user_id: userId,
        generation: 0,
        rotated_at: made.now,
        last_used_at: made.now,
        expires_at: new Date(made.now.getTime() + DAY_MS),
        absolute_expires_at: made.absoluteExpiresAt,
        revoked_at: null,
        revoked_reason: null,
      });
      expect(row.token_salt.equals(made.salt)).toBe(true);
      expect(await sessions.findForRotation(made.sessionId)).toMatchObject({
        userId,
        generation: 0,
        userAgent: 'session-store-spec',
        ip: '127.0.0.1',
        legacyTokenId: null,
      });
    });

    it("writes in the caller's transaction: rolled back with it", async () => {
      const sessionId = randomUUID();
      const now = wholeSeconds(Date.now());
      await expect(
        t.db.transaction(async (manager) => {
          await sessions.create(manager, {
            userId,
            sessionId,
            now,
            tokenSalt: randomBytes(32),
            first: { issuedAt: now, expiresAt: new Date(now.getTime() + DAY_MS) },
            absoluteExpiresAt: new Date(now.getTime() + DAY_MS),
            userAgent: null,
            ip: null,
            binding: UNBOUND,
          });
          // Inside the transaction the row exists ...
          const inside = await manager.query<unknown[]>('SELECT 1 FROM sessions WHERE id = $1', [
            sessionId,
          ]);
          expect(inside).toHaveLength(1);
          throw new Error('roll back');
        }),
      ).rejects.toThrow('roll back');
      // ... and the rollback took it away.
      expect(await sessions.findSession(sessionId)).toBeNull();
    });
  });

  describe('findSession()', () => {
    it('reads the owner, revocation and expiry of one session, whoever owns it', async () => {
      const mine = await makeSession();
      const theirs = await makeSession({ owner: otherUserId, idleMs: DAY_MS });
      expect(await sessions.findSession(mine.sessionId)).toEqual({
        userId,
        revokedAt: null,
        expiresAt: new Date(mine.now.getTime() + 7 * DAY_MS),
      });
      // The caller compares the owner with the token's subject, so it must be the row's.
      expect(await sessions.findSession(theirs.sessionId)).toEqual({
        userId: otherUserId,
        revokedAt: null,
        expiresAt: new Date(theirs.now.getTime() + DAY_MS),
      });
      await sessions.revoke(userId, [mine.sessionId], 'logout', later(mine));
      expect((await sessions.findSession(mine.sessionId))?.revokedAt).toEqual(later(mine));
    });

    it('is null for an unknown session', async () => {
      expect(await sessions.findSession(randomUUID())).toBeNull();
    });
  });

  describe('revoke()', () => {
    it('revokes exactly the given live sessions of the user, with the time and reason, and returns their ids', async () => {
      const [a, b, c] = [await makeSession(), await makeSession(), await makeSession()];
      const at = later(a);
      expect(
        sorted(await sessions.revoke(userId, [a.sessionId, b.sessionId], 'logout', at)),
      ).toEqual(sorted([a.sessionId, b.sessionId]));
      const after = await states([a.sessionId, b.sessionId, c.sessionId]);
      expect(after[a.sessionId]).toMatchObject({ revoked_at: at, revoked_reason: 'logout' });
      expect(after[b.sessionId]).toMatchObject({ revoked_at: at, revoked_reason: 'logout' });
      expect(after[c.sessionId]).toMatchObject({ revoked_at: null, revoked_reason: null });
    });

    it("never touches another user's session, even when its id is given", async () => {
      const mine = await makeSession();
      const theirs = await makeSession({ owner: otherUserId });
      const before = await rawRow(theirs.sessionId);
      expect(
        await sessions.revoke(userId, [mine.sessionId, theirs.sessionId], 'logout', later(mine)),
      ).toEqual([mine.sessionId]);
      expect(await rawRow(theirs.sessionId)).toEqual(before);
    });

    it('a revoked session keeps its first time and reason: repeating matches nothing and writes nothing', async () => {
      const made = await makeSession();
      expect(await sessions.revoke(userId, [made.sessionId], 'logout', later(made))).toEqual([
        made.sessionId,
      ]);
      const before = await rawRow(made.sessionId);
      expect(
        await sessions.revoke(userId, [made.sessionId], 'user_revoked', later(made, 9000)),
      ).toEqual([]);
      expect(await rawRow(made.sessionId)).toEqual(before);
      expect(before).toMatchObject({ revoked_at: later(made), revoked_reason: 'logout' });
    });

    it('an expired session matches nothing and writes nothing', async () => {
      const made = await makeSession({ idleMs: 60_000 });
      const before = await rawRow(made.sessionId);
      expect(await sessions.revoke(userId, [made.sessionId], 'logout', before.expires_at)).toEqual(
        [],
      );
      expect(await rawRow(made.sessionId)).toEqual(before);
    });

    it('no ids: nothing to revoke', async () => {
      expect(await sessions.revoke(userId, [], 'logout', new Date())).toEqual([]);
    });

    it("writes in the caller's transaction when given one", async () => {
      const made = await makeSession();
      await expect(
        t.db.transaction(async (manager) => {
          expect(
            await sessions.revoke(userId, [made.sessionId], 'logout', later(made), manager),
          ).toEqual([made.sessionId]);
          throw new Error('roll back');
        }),
      ).rejects.toThrow('roll back');
      expect((await rawRow(made.sessionId)).revoked_at).toBeNull();
    });
  });

  describe('revokeAllForUser()', () => {
    /** A user of its own with: two live sessions, a revoked one, an expired one. */
    async function account() {
      const owner = await insertUser(t.db);
      const liveA = await makeSession({ owner });
      const liveB = await makeSession({ owner });
      const revoked = await makeSession({ owner });
      await sessions.revoke(owner, [revoked.sessionId], 'logout', later(revoked, 1000));
      const expired = await makeSession({
        owner,
        at: new Date(Date.now() - 2 * DAY_MS),
        idleMs: DAY_MS,
      });
      return { owner, liveA, liveB, revoked, expired };
    }

    it("revokes every live session of the user and returns their ids; leaves ended ones and other users' alone", async () => {
      const { owner, liveA, liveB, revoked, expired } = await account();
      const theirs = await makeSession({ owner: otherUserId });
      const untouched = [revoked, expired, theirs].map((m) => m.sessionId);
      const before = await states(untouched);
      const at = later(liveA);
      const ids = await t.db.transaction((manager) =>
        sessions.revokeAllForUser(manager, owner, 'logout_all', at, null),
      );
      expect(sorted(ids)).toEqual(sorted([liveA.sessionId, liveB.sessionId]));
      const after = await states([liveA.sessionId, liveB.sessionId]);
      for (const id of ids) {
        expect(after[id]).toMatchObject({ revoked_at: at, revoked_reason: 'logout_all' });
      }
      expect(await states(untouched)).toEqual(before);
    });

    it('keeps the session it is told to keep', async () => {
      const { owner, liveA, liveB } = await account();
      const before = await rawRow(liveB.sessionId);
      const ids = await t.db.transaction((manager) =>
        sessions.revokeAllForUser(
          manager,
          owner,
          'password_changed',
          later(liveA),
          liveB.sessionId,
        ),
      );
      expect(ids).toEqual([liveA.sessionId]);
      expect(await rawRow(liveB.sessionId)).toEqual(before);
    });

    it('a user with no live session: matches nothing', async () => {
      const owner = await insertUser(t.db);
      const ids = await t.db.transaction((manager) =>
        sessions.revokeAllForUser(manager, owner, 'logout_all', new Date(), null),
      );
      expect(ids).toEqual([]);
    });
  });

  describe('evictLeastRecentlyUsed()', () => {
    /** Live sessions of a user of its own, used one minute apart: [0] least recently. */
    async function usedInTurn(n: number) {
      const owner = await insertUser(t.db);
      const start = Date.now() - n * 60_000;
      const made: Made[] = [];
      for (let i = 0; i < n; i += 1) {
        made.push(await makeSession({ owner, at: new Date(start + i * 60_000) }));
      }
      return { owner, made };
    }

    const evict = (owner: string, keep: number) =>
      t.db.transaction((manager) =>
        sessions.evictLeastRecentlyUsed(manager, owner, keep, new Date()),
      );

    it("keeps the `keep` most recently used live sessions and evicts the rest, as 'evicted'", async () => {
      const { owner, made } = await usedInTurn(4);
      const [oldest, older, newer, newest] = made.map((m) => m.sessionId);
      expect(sorted(await evict(owner, 2))).toEqual(sorted([oldest, older]));
      const after = await states([oldest, older, newer, newest]);
      expect(after[oldest].revoked_reason).toBe('evicted');
      expect(after[older].revoked_reason).toBe('evicted');
      expect(after[newer].revoked_at).toBeNull();
      expect(after[newest].revoked_at).toBeNull();
    });

    it('counts recent use, not creation: a rotation moves a session to the front', async () => {
      const { owner, made } = await usedInTurn(3);
      const [oldest, middle, newest] = made;
      // The oldest session is refreshed now, after the others' last use.
      expect(
        await sessions.rotate(
          rotation(oldest, 0, { issuedAt: wholeSeconds(Date.now()), now: new Date() }),
          jtiOf(oldest.salt, 0),
        ),
      ).not.toBeNull();
      expect(await evict(owner, 2)).toEqual([middle.sessionId]);
      expect((await states([newest.sessionId]))[newest.sessionId].revoked_at).toBeNull();
    });

    it('ended sessions take no place and are not written', async () => {
      const { owner, made } = await usedInTurn(2);
      // Used most recently, but revoked: it does not count among the kept.
      const revoked = await makeSession({ owner });
      await sessions.revoke(owner, [revoked.sessionId], 'logout', later(revoked, 1000));
      const before = await rawRow(revoked.sessionId);
      expect(await evict(owner, 2)).toEqual([]);
      expect(await rawRow(revoked.sessionId)).toEqual(before);
      expect(await evict(owner, 1)).toEqual([made[0].sessionId]);
    });

    it("never touches another user's sessions", async () => {
      const { owner, made } = await usedInTurn(2);
      const other = await usedInTurn(3);
      const before = await states(other.made.map((m) => m.sessionId));
      expect(await evict(owner, 0)).toEqual(expect.arrayContaining(made.map((m) => m.sessionId)));
      expect(await states(other.made.map((m) => m.sessionId))).toEqual(before);
    });

    it('room for all: matches nothing', async () => {
      const { owner, made } = await usedInTurn(2);
      const before = await states(made.map((m) => m.sessionId));
      expect(await evict(owner, 2)).toEqual([]);
      expect(await states(made.map((m) => m.sessionId))).toEqual(before);
    });
  });

  describe('listLive()', () => {
    it("lists the user's live sessions, most recently used first; not ended ones, not another user's", async () => {
      const owner = await insertUser(t.db);
      const start = Date.now() - 10 * 60_000;
      const first = await makeSession({ owner, at: new Date(start) });
      const second = await makeSession({ owner, at: new Date(start + 60_000) });
      const revoked = await makeSession({ owner });
      await sessions.revoke(owner, [revoked.sessionId], 'logout', later(revoked, 1000));
      const shortLived = await makeSession({ owner, idleMs: 60 * 60_000 });
      await makeSession({ owner: otherUserId });

      const now = new Date();
      const listed = await sessions.listLive(owner, now);
      expect(listed.map((s) => s.id)).toEqual([
        shortLived.sessionId,
        second.sessionId,
        first.sessionId,
      ]);
      expect(listed[2]).toEqual({
        id: first.sessionId,
        createdAt: first.now,
        lastUsedAt: first.now,
        expiresAt: new Date(first.now.getTime() + 7 * DAY_MS),
        userAgent: 'session-store-spec',
        ip: '127.0.0.1',
        clientId: null,
      });
      // From the instant of its expiry a session is no longer live.
      const expiry = new Date(shortLived.now.getTime() + 60 * 60_000);
      expect((await sessions.listLive(owner, expiry)).map((s) => s.id)).toEqual([
        second.sessionId,
        first.sessionId,
      ]);
    });

    it('a user with no session: an empty list', async () => {
      expect(await sessions.listLive(await insertUser(t.db), new Date())).toEqual([]);
    });
  });

  describe('listEndedAfter()', () => {
    // Far ahead of every other row in the shared database, so only this test's are read.
    const base = new Date(Date.UTC(2091, 0, 1) + Math.floor(Math.random() * 1e9));
    const tombstones: string[] = [];
    const revoked: string[] = [];

    afterAll(async () => {
      await t.db.query('DELETE FROM deleted_sessions WHERE family_id = ANY($1::uuid[])', [
        tombstones,
      ]);
      await t.db.query('DELETE FROM sessions WHERE id = ANY($1::uuid[])', [revoked]);
    });

    /** A session revoked `ms` after `base` (fractions of a millisecond, as now() has them). */
    async function revokedAt(ms: number): Promise<string> {
      const { sessionId } = await makeSession();
      revoked.push(sessionId);
      await t.db.query(
        `UPDATE sessions SET revoked_at = $2::timestamptz + make_interval(secs => $3 / 1000.0),
                revoked_reason = 'logout' WHERE id = $1`,
        [sessionId, base, ms],
      );
      return sessionId;
    }

    /** A tombstone of a live session deleted `ms` after `base`. */
    async function deletedAt(ms: number): Promise<string> {
      const id = randomUUID();
      tombstones.push(id);
      await t.db.query(
        `INSERT INTO deleted_sessions (family_id, deleted_at)
         VALUES ($1, $2::timestamptz + make_interval(secs => $3 / 1000.0))`,
        [id, base, ms],
      );
      return id;
    }

    it('pages through revoked and deleted sessions in (time, id) order, each once, cut to the millisecond', async () => {
      const sameMs = [await revokedAt(5.25), await deletedAt(5.75), await revokedAt(5.5)].sort();
      const first = await deletedAt(1.999);
      const last = await revokedAt(9);
      await revokedAt(-1);

      const seen: { sessionId: string; endedAt: Date }[] = [];
      let after = { sessionId: '00000000-0000-0000-0000-000000000000', endedAt: base };
      for (let page = 0; page < 10; page += 1) {
        const rows = await sessions.listEndedAfter(after, 2);
        seen.push(...rows);
        if (rows.length < 2) break;
        after = rows[rows.length - 1];
      }
      expect(seen.map((row) => row.sessionId)).toEqual([first, ...sameMs, last]);
      expect(seen.map((row) => row.endedAt.getTime() - base.getTime())).toEqual([1, 5, 5, 5, 9]);
    });
  });
});
