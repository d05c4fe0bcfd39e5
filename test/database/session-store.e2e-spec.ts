import { randomBytes, randomUUID } from 'node:crypto';
import type { DataSource } from 'typeorm';
import {
  type Rotated,
  type Rotation,
  SessionRepository,
} from '../../src/auth/session.repository.js';
import { generationJti } from '../../src/auth/token.service.js';
import { claimsOf, register } from '../support/requests.js';
import { useTestApp } from '../support/test-app.js';
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
describe('session store (e2e, PostgreSQL)', () => {
  const t = useTestApp();
  let sessions: SessionRepository;
  let userId: string;
  let otherUserId: string;

  beforeAll(async () => {
    sessions = t.app.get(SessionRepository);
    userId = claimsOf((await register(t)).access_token).sub as string;
    otherUserId = claimsOf((await register(t)).access_token).sub as string;
  });

  let held: { release(): Promise<void> } | undefined;
  afterEach(async () => {
    await held?.release();
    held = undefined;
  });

  /** A session at generation 0, as a login starts it. */
  async function makeSession(
    options: { lifetimeMs?: number; idleMs?: number } = {},
  ): Promise<Made> {
    const now = wholeSeconds(Date.now());
    const absoluteExpiresAt = new Date(now.getTime() + (options.lifetimeMs ?? 30 * DAY_MS));
    const idle = new Date(
      Math.min(now.getTime() + (options.idleMs ?? 7 * DAY_MS), absoluteExpiresAt.getTime()),
    );
    const made = {
      sessionId: randomUUID(),
      userId,
      salt: randomBytes(32),
      now,
      absoluteExpiresAt,
    };
    await sessions.transaction((manager) =>
      sessions.create(manager, {
        userId,
        sessionId: made.sessionId,
        now,
        tokenSalt: made.salt,
        first: { issuedAt: now, expiresAt: idle },
        absoluteExpiresAt,
        userAgent: 'session-store-spec',
        ip: '127.0.0.1',
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
});
