import { createHash, randomBytes } from 'node:crypto';
import { jest } from '@jest/globals';
import jwt from 'jsonwebtoken';
import type { Response } from 'supertest';
import { Clock } from '../src/common/clock.js';
import {
  type CookieTokens,
  expectClearedCookie,
  expectCookieKept,
  expectIssuedCookie,
  REFRESH_COOKIE,
} from './support/cookies.js';
import { TEST_SECRETS } from './support/secrets.js';
import { expectError } from './support/errors.js';
import { bearer, claimsOf, me, PASSWORD, type Tokens, uniqueUsername } from './support/requests.js';
import { useTestApp } from './support/test-app.js';
import { type HeldRowLock, holdRowLock } from './support/row-lock.js';

/**
 * The rotation rule of rotation.rules.ts (RFC 9700 §4.14.2) end to end: over
 * HTTP, into the real `sessions` row. Time moves through the injected Clock
 * (the time the session rules judge by), never by sleeping; JWT signatures and
 * `exp` are still checked with the real clock, so no token here is ever past
 * its `exp` in real time.
 *
 * Interleavings that must be certain, not likely, are forced the way
 * credential-races.e2e-spec.ts does it: a separate connection holds the
 * session's row lock, the racing requests are sent, the test waits until
 * PostgreSQL reports them queued behind it, then lets go.
 */

// The default REFRESH_REUSE_GRACE; this app runs with the defaults.
const GRACE_SECONDS = 10;
// Well past the grace: the "lost response, retried later" and "replayed later" cases.
const LATER_SECONDS = 30;
const UA = 'rotation-spec/1.0 (the client that logged in)';
const OTHER_UA = 'rotation-spec/1.0 (another client)';
const NEW_PASSWORD = 'a brand new passphrase';

interface Session extends Tokens {
  username: string;
  userId: string;
  sid: string;
}

interface SessionRow {
  user_id: string;
  generation: number;
  rotated_at: Date;
  last_used_at: Date;
  expires_at: Date;
  absolute_expires_at: Date;
  revoked_at: Date | null;
  revoked_reason: string | null;
  token_salt: Buffer;
  ip: string | null;
  user_agent: string | null;
}

interface EventRow {
  type: string;
  reason: string | null;
  ip: string | null;
  user_agent: string | null;
}

interface RefreshClaims {
  sub: string;
  sid: string;
  gen: number;
  jti: string;
  iat: number;
  exp: number;
  iss: string;
  aud: string;
}

const epochSeconds = (date: Date) => Math.floor(date.getTime() / 1000);

/** SHA-256(salt ‖ int32be(generation)), base64url: computed here, independently of src/. */
function jtiOf(salt: Buffer, generation: number): string {
  const g = Buffer.alloc(4);
  g.writeInt32BE(generation);
  return createHash('sha256').update(salt).update(g).digest('base64url');
}

/**
 * A refresh token validly signed with the server's refresh key, as the server
 * builds them: header {alg, typ}, claims in the server's order.
 */
function signRefresh(claims: RefreshClaims): string {
  const { sub, sid, gen, jti, iat, exp, iss, aud } = claims;
  return jwt.sign({ sub, sid, gen, jti, iat, exp, iss, aud }, TEST_SECRETS.JWT_REFRESH_SECRET, {
    algorithm: 'HS256',
    header: { alg: 'HS256', typ: 'rt+jwt' },
  });
}

const refreshClaimsOf = (token: string) => claimsOf(token) as unknown as RefreshClaims;

/** One sample's value from the exposition text; 0 when the series is absent. */
function sample(text: string, series: string): number {
  const line = text.split('\n').find((entry) => entry.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}

/** Sends a supertest request now (supertest sends only once awaited). */
const send = (test: PromiseLike<Response>): Promise<Response> => Promise.resolve(test);

describe('refresh rotation rule (e2e)', () => {
  const t = useTestApp();
  let clock: Clock;

  beforeAll(() => {
    clock = t.app.get(Clock);
  });

  // The Clock moves forward from the real time, by `offsetMs`.
  let offsetMs = 0;
  function advanceClock(seconds: number): void {
    if (offsetMs === 0) {
      jest.spyOn(clock, 'now').mockImplementation(() => new Date(Date.now() + offsetMs));
    }
    offsetMs += seconds * 1000;
  }

  // Released even when a test fails half-way.
  let held: { release(): Promise<void> } | undefined;
  afterEach(async () => {
    jest.restoreAllMocks();
    offsetMs = 0;
    await held?.release();
    held = undefined;
  });

  const refresh = (token: string, ua = UA) =>
    t.http().post('/auth/refresh').set('User-Agent', ua).send({ refresh_token: token });

  async function startSession(ua = UA): Promise<Session> {
    const username = uniqueUsername('rot');
    const res = await t
      .http()
      .post('/auth/register')
      .set('User-Agent', ua)
      .send({ username, password: PASSWORD })
      .expect(201);
    return withIds(res.body as Tokens, username);
  }

  async function loginAgain(username: string): Promise<Session> {
    const res = await t
      .http()
      .post('/auth/login')
      .set('User-Agent', UA)
      .send({ username, password: PASSWORD })
      .expect(200);
    return withIds(res.body as Tokens, username);
  }

  function withIds(tokens: Tokens, username: string): Session {
    const claims = claimsOf(tokens.access_token);
    return { ...tokens, username, userId: claims.sub as string, sid: claims.sid as string };
  }

  /** Refreshes `count` times from `start`: [start, child, grandchild, ...]. */
  async function chain(start: Tokens, count: number): Promise<Tokens[]> {
    const tokens = [start];
    for (let i = 0; i < count; i += 1) {
      const res = await refresh(tokens[tokens.length - 1].refresh_token).expect(200);
      tokens.push(res.body as Tokens);
    }
    return tokens;
  }

  async function sessionRow(sid: string): Promise<SessionRow> {
    const rows = await t.db.query<SessionRow[]>(
      `SELECT user_id, generation, rotated_at, last_used_at, expires_at, absolute_expires_at,
              revoked_at, revoked_reason, token_salt, host(ip) AS ip, user_agent
         FROM sessions WHERE id = $1`,
      [sid],
    );
    expect(rows).toHaveLength(1);
    return rows[0];
  }

  async function eventsOf(sid: string, type: string): Promise<EventRow[]> {
    return t.db.query<EventRow[]>(
      `SELECT type, reason, host(ip) AS ip, user_agent FROM auth_events
        WHERE session_id = $1 AND type = $2 ORDER BY id`,
      [sid, type],
    );
  }

  async function expectLive(sid: string, generation: number): Promise<void> {
    const row = await sessionRow(sid);
    expect(row.revoked_at).toBeNull();
    expect(row.generation).toBe(generation);
  }

  async function expectRevoked(sid: string, reason: string): Promise<void> {
    const row = await sessionRow(sid);
    expect(row.revoked_at).not.toBeNull();
    expect(row.revoked_reason).toBe(reason);
  }

  /** Every token of an ended session is refused at once, refresh and access alike. */
  async function expectAllRefused(tokens: Tokens[]): Promise<void> {
    for (const token of tokens) {
      expectError(await refresh(token.refresh_token), 401, 'session_revoked');
      expectError(await me(t, token.access_token), 401, 'session_revoked');
    }
  }

  /** A connection holding the session's row lock in an open transaction. */
  async function holdSessionRow(sid: string): Promise<HeldRowLock> {
    const lock = await holdRowLock('SELECT 1 FROM sessions WHERE id = $1 FOR UPDATE', [sid]);
    held = lock;
    return lock;
  }

  describe('a parent presented again', () => {
    it('30 s after a lost response, gets the byte-identical child, a working access token, the session goes on and the re-issue is recorded; the child then rotates normally', async () => {
      const login = await startSession();
      const [, lost] = await chain(login, 1);
      advanceClock(LATER_SECONDS);

      const res = await refresh(login.refresh_token).expect(200);
      const again = res.body as Tokens;
      expect(again.refresh_token).toBe(lost.refresh_token);
      expect(refreshClaimsOf(again.refresh_token).gen).toBe(1);
      // A fresh access token, issued by the Clock's time.
      expect(again.access_token).not.toBe(lost.access_token);
      expect(claimsOf(again.access_token).iat).toBeGreaterThanOrEqual(
        (claimsOf(lost.access_token).iat as number) + LATER_SECONDS,
      );
      await me(t, again.access_token).expect(200);

      const row = await sessionRow(login.sid);
      expect(row.revoked_at).toBeNull();
      expect(row.generation).toBe(1);
      // The re-issue is a use of the session.
      expect(row.last_used_at.getTime()).toBeGreaterThanOrEqual(
        row.rotated_at.getTime() + LATER_SECONDS * 1000,
      );
      const events = await eventsOf(login.sid, 'refresh_reissued');
      expect(events).toEqual([
        { type: 'refresh_reissued', reason: 'same_client', ip: row.ip, user_agent: UA },
      ]);
      expect(row.ip).toEqual(expect.any(String));

      const next = (await refresh(lost.refresh_token).expect(200)).body as Tokens;
      expect(next.refresh_token).not.toBe(lost.refresh_token);
      expect(refreshClaimsOf(next.refresh_token).gen).toBe(2);
      await expectLive(login.sid, 2);
      await me(t, next.access_token).expect(200);
    });

    it('a re-issue to another client than the one that logged in is recorded as other_client', async () => {
      const login = await startSession();
      const [, child] = await chain(login, 1);
      const res = await refresh(login.refresh_token, OTHER_UA).expect(200);
      expect((res.body as Tokens).refresh_token).toBe(child.refresh_token);
      const events = await eventsOf(login.sid, 'refresh_reissued');
      expect(events).toEqual([
        expect.objectContaining({ reason: 'other_client', user_agent: OTHER_UA }),
      ]);
    });

    it('after its child was used, within the grace: 409 refresh_token_superseded, the session goes on, the newest token stays the newest', async () => {
      const login = await startSession();
      const [a, b, c] = await chain(login, 2);

      const res = await refresh(a.refresh_token);
      expectError(res, 409, 'refresh_token_superseded');
      expect(res.body).not.toHaveProperty('refresh_token');
      expect(res.body).not.toHaveProperty('access_token');
      await expectLive(login.sid, 2);
      expect(await eventsOf(login.sid, 'refresh_superseded')).toHaveLength(1);
      expect(await eventsOf(login.sid, 'reuse_detected')).toEqual([]);

      await me(t, c.access_token).expect(200);
      // C is still the newest: its parent gets it back, and it rotates.
      const reissued = (await refresh(b.refresh_token).expect(200)).body as Tokens;
      expect(reissued.refresh_token).toBe(c.refresh_token);
      const d = (await refresh(c.refresh_token).expect(200)).body as Tokens;
      expect(refreshClaimsOf(d.refresh_token).gen).toBe(3);
      await expectLive(login.sid, 3);
    });

    it('after its child was used, past the grace: 401 refresh_token_reused, the session revoked, its newest refresh and access tokens refused at once', async () => {
      const login = await startSession();
      const [a, b, c] = await chain(login, 2);
      // Inside the grace first: refused, nothing ended.
      expectError(await refresh(a.refresh_token), 409, 'refresh_token_superseded');
      await me(t, c.access_token).expect(200);

      advanceClock(GRACE_SECONDS + 1);
      expectError(await refresh(a.refresh_token), 401, 'refresh_token_reused');
      await expectRevoked(login.sid, 'reuse_detected');
      const reuse = await eventsOf(login.sid, 'reuse_detected');
      expect(reuse).toEqual([expect.objectContaining({ reason: 'child_used', user_agent: UA })]);
      expect(await eventsOf(login.sid, 'session_revoked')).toEqual([
        expect.objectContaining({ reason: 'reuse_detected' }),
      ]);
      await expectAllRefused([c, b, a]);
    });

    it('the grandparent of the newest token (A→B→C→D, A presented at once) revokes the session: older_generation', async () => {
      const login = await startSession();
      const [a, , , d] = await chain(login, 3);
      expectError(await refresh(a.refresh_token), 401, 'refresh_token_reused');
      await expectRevoked(login.sid, 'reuse_detected');
      expect(await eventsOf(login.sid, 'reuse_detected')).toEqual([
        expect.objectContaining({ reason: 'older_generation' }),
      ]);
      expect(await eventsOf(login.sid, 'refresh_superseded')).toEqual([]);
      await expectAllRefused([d]);
    });
  });

  describe('concurrency', () => {
    it('50 parallel refreshes of one token: all 200 with the identical refresh token, one new generation, 49 re-issues, every access token valid', async () => {
      const login = await startSession();
      const pool = (t.db.options as { extra?: { max?: number } }).extra?.max ?? 10;
      const lock = await holdSessionRow(login.sid);
      const requests = Array.from({ length: 50 }, () => send(refresh(login.refresh_token)));
      // As many as the pool lets in queue on the row; the rest wait for a connection.
      await lock.waitForWaiters(Math.min(50, pool));
      await lock.release();
      const responses = await Promise.all(requests);

      for (const res of responses) expect(res.status).toBe(200);
      const bodies = responses.map((res) => res.body as Tokens);
      const refreshTokens = new Set(bodies.map((body) => body.refresh_token));
      expect(refreshTokens.size).toBe(1);
      const [child] = refreshTokens;
      expect(refreshClaimsOf(child).gen).toBe(1);
      await expectLive(login.sid, 1);
      expect(await eventsOf(login.sid, 'refresh_reissued')).toHaveLength(49);

      const accessTokens = new Set(bodies.map((body) => body.access_token));
      expect(accessTokens.size).toBe(50);
      const calls = await Promise.all([...accessTokens].map((token) => send(me(t, token))));
      for (const res of calls) expect(res.status).toBe(200);

      const next = (await refresh(child).expect(200)).body as Tokens;
      expect(refreshClaimsOf(next.refresh_token).gen).toBe(2);
      await expectLive(login.sid, 2);
    });

    type Racer = (session: Session, other: Session) => PromiseLike<Response>;
    const logoutAll: Racer = (session) =>
      t.http().post('/auth/logout-all').set(bearer(session.access_token)).send({ scope: 'all' });
    const changePassword: Racer = (_session, other) =>
      t
        .http()
        .patch('/users/me/password')
        .set(bearer(other.access_token))
        .send({ current_password: PASSWORD, new_password: NEW_PASSWORD });

    type Order = 'refresh first' | 'racer first' | 'in parallel';
    const ORDERS: [Order][] = [['refresh first'], ['racer first'], ['in parallel']];
    // Unforced rounds: whichever order the scheduler and the database pick.
    const PARALLEL_ROUNDS = 10;

    /**
     * One round: `session`'s refresh races `racer`. In a forced order the
     * first named request is queued on the session row before the second, so
     * it goes first once the row is let go; `in parallel` forces nothing.
     */

    async function race(racer: Racer, order: Order) {
      const session = await startSession();
      const other = await loginAgain(session.username);
      let refreshing: Promise<Response>;
      let racing: Promise<Response>;
      if (order !== 'in parallel') {
        const lock = await holdSessionRow(session.sid);
        if (order === 'refresh first') {
          refreshing = send(refresh(session.refresh_token));
          await lock.waitForWaiters(1);
          racing = send(racer(session, other));
        } else {
          racing = send(racer(session, other));
          await lock.waitForWaiters(1);
          refreshing = send(refresh(session.refresh_token));
        }
        await lock.waitForWaiters(2);
        await lock.release();
      } else {
        [refreshing, racing] = [send(refresh(session.refresh_token)), send(racer(session, other))];
      }
      const [refreshed, raced] = await Promise.all([refreshing, racing]);
      // Either side may win; both answer, and nothing of the session survives.
      if (refreshed.status !== 200) expectError(refreshed, 401, 'session_revoked');
      const obtained = [session as Tokens];
      if (refreshed.status === 200) obtained.push(refreshed.body as Tokens);
      return { session, other, refreshed, raced, obtained };
    }

    it.each(ORDERS)(
      'a refresh racing logout-all (%s): every token of the session, old or just issued, gets 401',
      async (order) => {
        const rounds = order === 'in parallel' ? PARALLEL_ROUNDS : 1;
        for (let round = 0; round < rounds; round += 1) {
          const { session, refreshed, raced, obtained } = await race(logoutAll, order);
          expect(raced.status).toBe(200);
          // Both sessions of the user: the raced one and the second login.
          expect(raced.body).toMatchObject({ revoked_sessions: 2 });
          if (order === 'refresh first') expect(refreshed.status).toBe(200);
          if (order === 'racer first') expect(refreshed.status).toBe(401);
          await expectRevoked(session.sid, 'logout_all');
          await expectAllRefused(obtained);
        }
      },
    );

    it.each(ORDERS)(
      "a refresh of another session racing a password change (%s): every token of that session gets 401, the changer's session goes on",
      async (order) => {
        const rounds = order === 'in parallel' ? PARALLEL_ROUNDS : 1;
        for (let round = 0; round < rounds; round += 1) {
          const { session, other, refreshed, raced, obtained } = await race(changePassword, order);
          expect(raced.status).toBe(204);
          if (order === 'refresh first') expect(refreshed.status).toBe(200);
          if (order === 'racer first') expect(refreshed.status).toBe(401);
          await expectRevoked(session.sid, 'password_changed');
          await expectAllRefused(obtained);
          // Kept by design (OWASP ASVS 3.3.3): the session that changed the password.
          await me(t, other.access_token).expect(200);
          await refresh(other.refresh_token).expect(200);
        }
      },
    );
  });

  it('10,000 refreshes of one session leave one session row and no other new row', async () => {
    const login = await startSession();
    const counts = async () => {
      const rows = await t.db.query<{ sessions: number; events: number; todos: number }[]>(
        `SELECT (SELECT count(*)::int FROM sessions WHERE user_id = $1) AS sessions,
                (SELECT count(*)::int FROM auth_events WHERE user_id = $1) AS events,
                (SELECT count(*)::int FROM todos WHERE user_id = $1) AS todos`,
        [login.userId],
      );
      return rows[0];
    };
    const before = await counts();
    expect(before.sessions).toBe(1);

    // Over kept-alive connections to the listening app (fetch), rather than a
    // new supertest server and connection per request. This file starts one
    // app only, so the process-wide passport strategies are its own.
    await t.app.listen(0, '127.0.0.1');
    const url = `${await t.app.getUrl()}/auth/refresh`;
    let current = login.refresh_token;
    for (let i = 1; i <= 10_000; i += 1) {
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'user-agent': UA },
        body: JSON.stringify({ refresh_token: current }),
      });
      if (res.status !== 200)
        throw new Error(`refresh ${i} answered ${res.status}: ${await res.text()}`);
      current = ((await res.json()) as Tokens).refresh_token;
    }

    expect(await counts()).toEqual(before);
    expect(refreshClaimsOf(current).gen).toBe(10_000);
    await expectLive(login.sid, 10_000);
  }, 120_000);

  describe('tokens validly signed with the refresh key but never issued', () => {
    /** The claims of an issued refresh token, to forge variants of. */
    const claimsOfNewest = (tokens: Tokens) => refreshClaimsOf(tokens.refresh_token);

    async function expectUntouched(sid: string, before: SessionRow): Promise<void> {
      expect(await sessionRow(sid)).toEqual(before);
      expect(await eventsOf(sid, 'reuse_detected')).toEqual([]);
      expect(await eventsOf(sid, 'refresh_reissued')).toEqual([]);
    }

    it('control: signing the issued claims here reproduces the issued token byte for byte', async () => {
      const login = await startSession();
      const [, b] = await chain(login, 1);
      const salt = (await sessionRow(login.sid)).token_salt;
      const claims = claimsOfNewest(b);
      expect(claims.jti).toBe(jtiOf(salt, 1));
      expect(signRefresh(claims)).toBe(b.refresh_token);
    });

    it('the newest generation with a wrong jti: 401 token_invalid, the session neither revoked nor rotated', async () => {
      const login = await startSession();
      const [, , c] = await chain(login, 2);
      const before = await sessionRow(login.sid);
      const forged = signRefresh({
        ...claimsOfNewest(c),
        jti: randomBytes(32).toString('base64url'),
      });
      expectError(await refresh(forged), 401, 'token_invalid');
      await expectUntouched(login.sid, before);
      const next = (await refresh(c.refresh_token).expect(200)).body as Tokens;
      expect(refreshClaimsOf(next.refresh_token).gen).toBe(3);
    });

    it('an old generation with a wrong jti: 401 token_invalid, not reuse (the jti is checked on the slow path too)', async () => {
      const login = await startSession();
      const [a, , , d] = await chain(login, 3);
      const before = await sessionRow(login.sid);
      const forged = signRefresh({
        ...claimsOfNewest(a),
        jti: randomBytes(32).toString('base64url'),
      });
      expectError(await refresh(forged), 401, 'token_invalid');
      await expectUntouched(login.sid, before);
      await me(t, d.access_token).expect(200);
      await refresh(d.refresh_token).expect(200);
      // The same generation with its issued jti is the grandparent itself: reuse.
      expectError(await refresh(a.refresh_token), 401, 'refresh_token_reused');
    });

    it("the right session, generation and jti with another user's sub: 401 token_invalid, no rotation", async () => {
      const login = await startSession();
      const stranger = await startSession();
      const [, b] = await chain(login, 1);
      const before = await sessionRow(login.sid);
      const forged = signRefresh({ ...claimsOfNewest(b), sub: stranger.userId });
      expectError(await refresh(forged), 401, 'token_invalid');
      await expectUntouched(login.sid, before);
      await refresh(b.refresh_token).expect(200);
      // The stranger's own session is not touched either.
      await refresh(stranger.refresh_token).expect(200);
    });

    it('a future generation with its right jti: 401 token_invalid, the session intact', async () => {
      const login = await startSession();
      const [, b] = await chain(login, 1);
      const before = await sessionRow(login.sid);
      const claims = claimsOfNewest(b);
      const forged = signRefresh({ ...claims, gen: 2, jti: jtiOf(before.token_salt, 2) });
      expectError(await refresh(forged), 401, 'token_invalid');
      await expectUntouched(login.sid, before);
      const next = (await refresh(b.refresh_token).expect(200)).body as Tokens;
      expect(refreshClaimsOf(next.refresh_token).gen).toBe(2);
    });

    it('the newest token with an altered signature: 401 token_invalid, nothing changed', async () => {
      const login = await startSession();
      const [, b] = await chain(login, 1);
      const before = await sessionRow(login.sid);
      const [header, payload, signature] = b.refresh_token.split('.');
      const at = 10;
      const flipped = signature[at] === 'A' ? 'B' : 'A';
      const altered = `${header}.${payload}.${signature.slice(0, at)}${flipped}${signature.slice(at + 1)}`;
      expectError(await refresh(altered), 401, 'token_invalid');
      await expectUntouched(login.sid, before);
      await refresh(b.refresh_token).expect(200);
    });
  });

  describe('session lifetimes', () => {
    it('past its idle expiry, a session refuses its newest token: 401 session_expired, not rotated', async () => {
      const login = await startSession();
      // Earlier than before, so still within the absolute lifetime (the CHECK).
      await t.db.query(
        `UPDATE sessions SET expires_at = now() - interval '1 second' WHERE id = $1`,
        [login.sid],
      );
      const before = await sessionRow(login.sid);
      expectError(await refresh(login.refresh_token), 401, 'session_expired');
      expect(await sessionRow(login.sid)).toEqual(before);
    });

    it('idle expiry by the Clock: at the instant of expires_at the token is refused', async () => {
      const login = await startSession();
      const row = await sessionRow(login.sid);
      // The JWT's exp is the same instant, but the library checks it against the real clock.
      jest.spyOn(clock, 'now').mockReturnValue(row.expires_at);
      expectError(await refresh(login.refresh_token), 401, 'session_expired');
      await expectLive(login.sid, 0);
    });

    it('a rotation near the absolute end yields a token whose exp is absolute_expires_at; past it the session is over', async () => {
      const login = await startSession();
      await t.db.query(
        `UPDATE sessions
            SET absolute_expires_at = date_trunc('second', now()) + interval '120 seconds',
                expires_at = date_trunc('second', now()) + interval '120 seconds'
          WHERE id = $1`,
        [login.sid],
      );
      const absolute = (await sessionRow(login.sid)).absolute_expires_at;
      const res = await refresh(login.refresh_token).expect(200);
      const b = res.body as Tokens;
      const claims = refreshClaimsOf(b.refresh_token);
      expect(claims.exp).toBe(epochSeconds(absolute));
      expect(b.refresh_expires_in).toBe(claims.exp - claims.iat);
      // The access token does not outlive its session either.
      expect(claimsOf(b.access_token).exp).toBe(epochSeconds(absolute));
      const row = await sessionRow(login.sid);
      expect(row.expires_at).toEqual(absolute);
      expect(row.absolute_expires_at).toEqual(absolute);

      jest.spyOn(clock, 'now').mockReturnValue(new Date(absolute.getTime() + 1000));
      expectError(await refresh(b.refresh_token), 401, 'session_expired');
      await expectLive(login.sid, 1);
    });
  });

  describe('the cookie transport', () => {
    const cookieRegister = () =>
      t
        .http()
        .post('/auth/register')
        .set('User-Agent', UA)
        .set('X-Token-Transport', 'cookie')
        .send({ username: uniqueUsername('rotc'), password: PASSWORD })
        .expect(201);
    const cookieRefresh = (value: string) =>
      t
        .http()
        .post('/auth/refresh')
        .set('User-Agent', UA)
        .set('X-Token-Transport', 'cookie')
        .set('Cookie', `${REFRESH_COOKIE}=${value}`);

    it('a re-issue through the cookie sets the same token again', async () => {
      const a = expectIssuedCookie(await cookieRegister());
      const b = expectIssuedCookie(await cookieRefresh(a).expect(200));
      const again = await cookieRefresh(a).expect(200);
      expect(expectIssuedCookie(again)).toBe(b);
    });

    it('a superseded refresh (409) keeps the cookie; a reuse (401) clears it', async () => {
      const registered = await cookieRegister();
      const a = expectIssuedCookie(registered);
      const sid = claimsOf((registered.body as CookieTokens).access_token).sid as string;
      const b = expectIssuedCookie(await cookieRefresh(a).expect(200));
      expectIssuedCookie(await cookieRefresh(b).expect(200));

      const superseded = await cookieRefresh(a);
      expectError(superseded, 409, 'refresh_token_superseded');
      expectCookieKept(superseded);
      await expectLive(sid, 2);

      advanceClock(LATER_SECONDS);
      const reused = await cookieRefresh(a);
      expectError(reused, 401, 'refresh_token_reused');
      expectClearedCookie(reused);
      await expectRevoked(sid, 'reuse_detected');
    });
  });

  it('metrics: lineage_refresh_total counts each outcome of the rule', async () => {
    const scrape = async () => (await t.http().get('/metrics').expect(200)).text;
    const before = await scrape();
    const login = await startSession();
    const [a, b] = await chain(login, 1); // rotated
    await refresh(a.refresh_token).expect(200); // reissued
    await refresh(b.refresh_token).expect(200); // rotated
    expectError(await refresh(a.refresh_token), 409, 'refresh_token_superseded');
    advanceClock(LATER_SECONDS);
    expectError(await refresh(a.refresh_token), 401, 'refresh_token_reused');
    const after = await scrape();

    const delta = (outcome: string) => {
      const series = `lineage_refresh_total{outcome="${outcome}"}`;
      return sample(after, series) - sample(before, series);
    };
    expect({
      rotated: delta('rotated'),
      reissued: delta('reissued'),
      superseded: delta('superseded'),
      reuse_detected: delta('reuse_detected'),
      revoked: delta('revoked'),
      expired: delta('expired'),
      invalid: delta('invalid'),
    }).toEqual({
      rotated: 2,
      reissued: 1,
      superseded: 1,
      reuse_detected: 1,
      revoked: 0,
      expired: 0,
      invalid: 0,
    });
    // The series exist by name (a rename would read as 0 above).
    expect(after).toContain('lineage_refresh_total{outcome="reissued"}');
    expect(after).toContain('lineage_refresh_total{outcome="superseded"}');
  });
});
