import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { expectError } from './support/errors.js';
import {
  bearer,
  claimsOf,
  listEvents,
  login,
  logout,
  PASSWORD,
  refresh,
  register,
  todos,
  type Tokens,
  uniqueUsername,
} from './support/requests.js';
import { startTestApp, type TestApp, useTestApp } from './support/test-app.js';
import { moveClock, restoreClock, waitForWallClock } from './support/time.js';

interface SessionBody {
  id: string;
  created_at: string;
  last_used_at: string;
  expires_at: string;
  user_agent: string | null;
  ip: string | null;
  current: boolean;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

const sid = (tokens: Tokens) => claimsOf(tokens.access_token).sid as string;
const sub = (tokens: Tokens) => claimsOf(tokens.access_token).sub as string;
const refreshExp = (tokens: Tokens) => claimsOf(tokens.refresh_token).exp as number;

/**
 * last_used_at has millisecond precision; a short pause guarantees two steps
 * get different timestamps, so "least recently used" is well defined.
 */
const tick = () => sleep(20);

async function loginAs(app: TestApp, username: string, userAgent: string): Promise<Tokens> {
  const res = await app
    .http()
    .post('/auth/login')
    .set('User-Agent', userAgent)
    .send({ username, password: PASSWORD })
    .expect(200);
  return res.body as Tokens;
}

async function listSessions(app: TestApp, accessToken: string): Promise<SessionBody[]> {
  const res = await app.http().get('/auth/sessions').set(bearer(accessToken)).expect(200);
  return res.body as SessionBody[];
}

/** Both tokens of an ended session are refused with `code`. */
async function expectSessionDead(app: TestApp, tokens: Tokens, code = 'session_revoked') {
  expectError(await todos(app, tokens.access_token), 401, code);
  expectError(await refresh(app, tokens.refresh_token), 401, code);
}

/** The access token works and the refresh token rotates; returns the rotated pair. */
async function expectSessionAlive(app: TestApp, tokens: Tokens): Promise<Tokens> {
  await todos(app, tokens.access_token).expect(200);
  const res = await refresh(app, tokens.refresh_token).expect(200);
  return res.body as Tokens;
}

async function revokedReasons(app: TestApp, userId: string) {
  const rows = await app.db.query<{ id: string; revoked_reason: string | null }[]>(
    'SELECT id, revoked_reason FROM sessions WHERE user_id = $1',
    [userId],
  );
  return Object.fromEntries(rows.map((r) => [r.id, r.revoked_reason]));
}

describe('sessions (e2e)', () => {
  const t = useTestApp();

  describe('GET /auth/sessions', () => {
    it('lists the live sessions with their fields; each token sees its own as current', async () => {
      const username = uniqueUsername('list');
      const phone = (
        await t
          .http()
          .post('/auth/register')
          .set('User-Agent', 'LineageTest/1.0 (phone)')
          .send({ username, password: PASSWORD })
          .expect(201)
      ).body as Tokens;
      await tick();
      const laptop = await loginAs(t, username, 'LineageTest/1.0 (laptop)');

      const fromPhone = await listSessions(t, phone.access_token);
      expect(fromPhone).toHaveLength(2);
      for (const session of fromPhone) {
        expect(Object.keys(session).sort()).toEqual(
          [
            'client_id',
            'dpop_bound',
            'created_at',
            'current',
            'expires_at',
            'id',
            'ip',
            'last_used_at',
            'user_agent',
          ].sort(),
        );
        expect(session.id).toMatch(UUID);
        for (const field of ['created_at', 'last_used_at', 'expires_at'] as const) {
          expect(session[field]).toMatch(ISO_UTC);
        }
        expect(Date.parse(session.last_used_at)).toBeGreaterThanOrEqual(
          Date.parse(session.created_at),
        );
        expect(Date.parse(session.expires_at)).toBeGreaterThan(Date.parse(session.last_used_at));
        expect(typeof session.current).toBe('boolean');
        expect(session.ip).toMatch(/127\.0\.0\.1$/);
      }
      // Most recently used first: the laptop logged in last.
      expect(fromPhone.map((s) => [s.id, s.user_agent, s.current])).toEqual([
        [sid(laptop), 'LineageTest/1.0 (laptop)', false],
        [sid(phone), 'LineageTest/1.0 (phone)', true],
      ]);

      const fromLaptop = await listSessions(t, laptop.access_token);
      expect(fromLaptop.filter((s) => s.current).map((s) => s.id)).toEqual([sid(laptop)]);
      expect(fromLaptop.map((s) => s.id).sort()).toEqual([sid(phone), sid(laptop)].sort());

      // A refresh makes the phone the most recently used session.
      await tick();
      const phone2 = (await refresh(t, phone.refresh_token).expect(200)).body as Tokens;
      const reordered = await listSessions(t, phone2.access_token);
      expect(reordered.map((s) => [s.id, s.current])).toEqual([
        [sid(phone), true],
        [sid(laptop), false],
      ]);
    });

    it("never lists another user's sessions, nor revoked ones", async () => {
      const a = await register(t);
      const a2 = await login(t, a.username);
      const other = await register(t);

      const mine = await listSessions(t, a.access_token);
      expect(mine.map((s) => s.id).sort()).toEqual([sid(a), sid(a2)].sort());
      const theirs = await listSessions(t, other.access_token);
      expect(theirs.map((s) => [s.id, s.current])).toEqual([[sid(other), true]]);

      await logout(t, a2.access_token).expect(200);
      const afterLogout = await listSessions(t, a.access_token);
      expect(afterLogout.map((s) => [s.id, s.current])).toEqual([[sid(a), true]]);
    });

    it('requires an access token', async () => {
      expectError(await t.http().get('/auth/sessions'), 401, 'token_missing');
    });
  });

  describe('DELETE /auth/sessions/:id', () => {
    it('ends another own session at once; the caller goes on', async () => {
      const a = await register(t);
      const b = await login(t, a.username);

      const res = await t
        .http()
        .delete(`/auth/sessions/${sid(b)}`)
        .set(bearer(a.access_token))
        .expect(204);
      expect(res.text).toBe('');

      await expectSessionDead(t, b);
      const a2 = await expectSessionAlive(t, a);
      expect((await listSessions(t, a2.access_token)).map((s) => s.id)).toEqual([sid(a)]);
      expect(await revokedReasons(t, sub(a))).toEqual({ [sid(a)]: null, [sid(b)]: 'user_revoked' });
      const events = await listEvents(t, a2.access_token);
      expect(events).toContainEqual(
        expect.objectContaining({
          type: 'session_revoked',
          session_id: sid(b),
          reason: 'user_revoked',
        }),
      );

      // Already revoked: nothing left to end.
      expectError(
        await t
          .http()
          .delete(`/auth/sessions/${sid(b)}`)
          .set(bearer(a2.access_token)),
        404,
        'not_found',
      );
    });

    it("answers 404 for another user's, an unknown or a malformed id, and changes nothing", async () => {
      const a = await register(t);
      const other = await register(t);

      for (const id of [sid(other), randomUUID(), 'not-a-uuid', '1']) {
        const res = await t.http().delete(`/auth/sessions/${id}`).set(bearer(a.access_token));
        expectError(res, 404, 'not_found');
      }

      expect(await revokedReasons(t, sub(other))).toEqual({ [sid(other)]: null });
      await expectSessionAlive(t, other);
      await expectSessionAlive(t, a);
    });

    it('ending the current session kills its own tokens', async () => {
      const a = await register(t);
      const b = await login(t, a.username);

      await t
        .http()
        .delete(`/auth/sessions/${sid(a)}`)
        .set(bearer(a.access_token))
        .expect(204);

      await expectSessionDead(t, a);
      await expectSessionAlive(t, b);
    });
  });

  describe('POST /auth/logout-all', () => {
    it('`others` keeps exactly the caller’s session', async () => {
      const a = await register(t);
      const b = await login(t, a.username);
      const c = await login(t, a.username);
      const other = await register(t);

      const res = await t
        .http()
        .post('/auth/logout-all')
        .set(bearer(a.access_token))
        .send({ scope: 'others' })
        .expect(200);
      expect(Object.keys(res.body as object).sort()).toEqual(['message', 'revoked_sessions']);
      const body = res.body as { message: unknown; revoked_sessions: unknown };
      expect(typeof body.message).toBe('string');
      expect(body.revoked_sessions).toBe(2);

      await expectSessionDead(t, b);
      await expectSessionDead(t, c);
      const a2 = await expectSessionAlive(t, a);
      expect((await listSessions(t, a2.access_token)).map((s) => s.id)).toEqual([sid(a)]);
      expect(await revokedReasons(t, sub(a))).toEqual({
        [sid(a)]: null,
        [sid(b)]: 'logout_all',
        [sid(c)]: 'logout_all',
      });
      await expectSessionAlive(t, other);

      // Nothing else to end: repeating it revokes nothing.
      const again = await t
        .http()
        .post('/auth/logout-all')
        .set(bearer(a2.access_token))
        .send({ scope: 'others' })
        .expect(200);
      expect((again.body as { revoked_sessions: number }).revoked_sessions).toBe(0);
      await todos(t, a2.access_token).expect(200);
    });

    it('without a body ends every session, the caller’s included', async () => {
      const a = await register(t);
      const b = await login(t, a.username);
      const c = await login(t, a.username);
      const other = await register(t);

      const res = await t.http().post('/auth/logout-all').set(bearer(a.access_token)).expect(200);
      expect((res.body as { revoked_sessions: number }).revoked_sessions).toBe(3);

      for (const tokens of [a, b, c]) await expectSessionDead(t, tokens);
      expect(Object.values(await revokedReasons(t, sub(a)))).toEqual([
        'logout_all',
        'logout_all',
        'logout_all',
      ]);
      await expectSessionAlive(t, other);
    });

    it('refuses an unknown scope and ends nothing', async () => {
      const a = await register(t);
      const b = await login(t, a.username);

      for (const scope of ['everyone', 'ALL', 42]) {
        const res = await t
          .http()
          .post('/auth/logout-all')
          .set(bearer(a.access_token))
          .send({ scope });
        expectError(res, 400, 'validation_failed');
      }

      await expectSessionAlive(t, a);
      await expectSessionAlive(t, b);
    });
  });

  describe('PATCH /users/me/password', () => {
    const NEW_PASSWORD = 'a brand new passphrase';

    const changePassword = (tokens: Tokens, body: object) =>
      t.http().patch('/users/me/password').set(bearer(tokens.access_token)).send(body);

    async function passwordHash(userId: string) {
      const rows = await t.db.query<{ password_hash: string }[]>(
        'SELECT password_hash FROM users WHERE id = $1',
        [userId],
      );
      return rows[0]?.password_hash;
    }

    /** A refused change left the password and every session as they were. */
    async function expectUnchanged(a: Tokens & { username: string }, b: Tokens, hash: unknown) {
      expect(await passwordHash(sub(a))).toBe(hash);
      expect(await revokedReasons(t, sub(a))).toEqual({ [sid(a)]: null, [sid(b)]: null });
      await expectSessionAlive(t, b);
      await expectSessionAlive(t, a);
      expectError(
        await t.http().post('/auth/login').send({ username: a.username, password: NEW_PASSWORD }),
        401,
        'invalid_credentials',
      );
      await login(t, a.username, PASSWORD);
      expect((await listEvents(t, a.access_token)).map((e) => e.type)).not.toContain(
        'password_changed',
      );
    }

    it('ends every other session, keeps the caller’s, and swaps the password', async () => {
      const a = await register(t);
      const b = await login(t, a.username);
      const other = await register(t);

      await changePassword(a, { current_password: PASSWORD, new_password: NEW_PASSWORD }).expect(
        204,
      );

      await expectSessionDead(t, b);
      const a2 = await expectSessionAlive(t, a);
      expect((await listSessions(t, a2.access_token)).map((s) => s.id)).toEqual([sid(a)]);
      expect(await revokedReasons(t, sub(a))).toEqual({
        [sid(a)]: null,
        [sid(b)]: 'password_changed',
      });
      await expectSessionAlive(t, other);

      expectError(
        await t.http().post('/auth/login').send({ username: a.username, password: PASSWORD }),
        401,
        'invalid_credentials',
      );
      await login(t, a.username, NEW_PASSWORD);

      const events = await listEvents(t, a2.access_token);
      expect(events).toContainEqual(
        expect.objectContaining({ type: 'password_changed', session_id: sid(a) }),
      );
      const revocations = events.filter((e) => e.type === 'session_revoked');
      expect(revocations).toEqual([
        expect.objectContaining({ session_id: sid(b), reason: 'password_changed' }),
      ]);
    });

    it('refuses a wrong current password with 403 and changes nothing', async () => {
      const a = await register(t);
      const b = await login(t, a.username);
      const hash = await passwordHash(sub(a));

      const res = await changePassword(a, {
        current_password: 'not the password',
        new_password: NEW_PASSWORD,
      });
      expectError(res, 403, 'invalid_password');

      await expectUnchanged(a, b, hash);
    });

    it.each([
      ['too short', 'short12'],
      ['over 72 bytes', 'é'.repeat(37)],
      ['missing', undefined],
    ])('refuses a new password %s with 400 and changes nothing', async (_case, newPassword) => {
      const a = await register(t);
      const b = await login(t, a.username);
      const hash = await passwordHash(sub(a));

      const res = await changePassword(a, {
        current_password: PASSWORD,
        new_password: newPassword,
      });
      expectError(res, 400, 'validation_failed');

      await expectUnchanged(a, b, hash);
    });
  });

  describe('DELETE /users/me', () => {
    async function rowCounts(userId: string) {
      const [row] = await t.db.query<Record<string, string>[]>(
        `SELECT (SELECT count(*) FROM users WHERE id = $1) AS users,
                (SELECT count(*) FROM sessions WHERE user_id = $1) AS sessions,
                (SELECT count(*) FROM todos WHERE user_id = $1) AS todos,
                (SELECT count(*) FROM auth_events WHERE user_id = $1) AS auth_events`,
        [userId],
      );
      return Object.fromEntries(Object.entries(row).map(([k, v]) => [k, Number(v)]));
    }

    async function addTodo(tokens: Tokens) {
      await t
        .http()
        .post('/todos')
        .set(bearer(tokens.access_token))
        .send({ title: 'keep me' })
        .expect(201);
    }

    it('refuses a wrong or missing password and changes nothing', async () => {
      const a = await register(t);
      const b = await login(t, a.username);
      await addTodo(a);
      const before = await rowCounts(sub(a));
      expect(before).toMatchObject({ users: 1, sessions: 2, todos: 1 });

      expectError(
        await t
          .http()
          .delete('/users/me')
          .set(bearer(a.access_token))
          .send({ password: 'not the password' }),
        403,
        'invalid_password',
      );
      expectError(
        await t.http().delete('/users/me').set(bearer(a.access_token)).send({}),
        400,
        'validation_failed',
      );

      expect(await rowCounts(sub(a))).toEqual(before);
      const list = await todos(t, a.access_token).expect(200);
      expect(list.body).toHaveLength(1);
      await expectSessionAlive(t, b);
      await login(t, a.username);
    });

    it('deletes the account with its sessions, tokens, todos and events', async () => {
      const a = await register(t);
      const b = await login(t, a.username);
      await addTodo(a);
      const other = await register(t);
      await addTodo(other);
      const userId = sub(a);
      expect((await rowCounts(userId)).auth_events).toBeGreaterThan(0);

      const res = await t
        .http()
        .delete('/users/me')
        .set(bearer(a.access_token))
        .send({ password: PASSWORD })
        .expect(204);
      expect(res.text).toBe('');

      expect(await rowCounts(userId)).toEqual({
        users: 0,
        sessions: 0,
        todos: 0,
        auth_events: 0,
      });
      expectError(await todos(t, a.access_token), 401, 'session_revoked');
      expectError(await todos(t, b.access_token), 401, 'session_revoked');
      for (const tokens of [a, b]) {
        // The session rows went with the account: a token we signed whose row is gone is revoked.
        expectError(await refresh(t, tokens.refresh_token), 401, 'session_revoked');
      }
      expectError(
        await t.http().post('/auth/login').send({ username: a.username, password: PASSWORD }),
        401,
        'invalid_credentials',
      );

      // The name is free again, for a new, empty account.
      const again = await register(t, a.username);
      expect(sub(again)).not.toBe(userId);
      expect((await todos(t, again.access_token).expect(200)).body).toEqual([]);
      expect((await listEvents(t, again.access_token)).map((e) => e.type)).toEqual(['registered']);

      // Nobody else was touched.
      const theirs = await todos(t, other.access_token).expect(200);
      expect(theirs.body).toHaveLength(1);
      await expectSessionAlive(t, other);
    });
  });

  describe('configured lifetimes', () => {
    it('refuses a SESSION_MAX_AGE or REFRESH_TOKEN_TTL shorter than ACCESS_TOKEN_TTL', async () => {
      await expect(startTestApp({ ACCESS_TOKEN_TTL: '60', SESSION_MAX_AGE: '59' })).rejects.toThrow(
        /SESSION_MAX_AGE/,
      );
      await expect(
        startTestApp({ ACCESS_TOKEN_TTL: '60', REFRESH_TOKEN_TTL: '59' }),
      ).rejects.toThrow(/REFRESH_TOKEN_TTL/);
    });

    describe('absolute lifetime (SESSION_MAX_AGE=3s, REFRESH_TOKEN_TTL=1h)', () => {
      const short = useTestApp({
        SESSION_MAX_AGE: '3',
        // 2 s: a 1 s token issued late in a second can expire before its next use.
        ACCESS_TOKEN_TTL: '2',
        REFRESH_TOKEN_TTL: '3600',
      });
      afterEach(() => restoreClock(short));

      it('rotation never extends a session past its absolute end', async () => {
        const first = await register(short);
        const loginAt = claimsOf(first.access_token).iat as number;
        const absoluteEnd = refreshExp(first);
        // Capped by the 3 s absolute lifetime, not the hour of inactivity allowance.
        expect(absoluteEnd).toBe(loginAt + 3);
        expect(first.refresh_expires_in).toBe(3);
        const [session] = await short.db.query<{ expires_at: Date; absolute_expires_at: Date }[]>(
          'SELECT expires_at, absolute_expires_at FROM sessions WHERE id = $1',
          [sid(first)],
        );
        expect(session.absolute_expires_at.getTime()).toBe(absoluteEnd * 1000);
        expect(session.expires_at.getTime()).toBe(absoluteEnd * 1000);

        // One second later (by the Clock the rotation judges by), inside the
        // window: the refresh works, but only up to the same end.
        moveClock(short, 1);
        const rotated = (await refresh(short, first.refresh_token).expect(200)).body as Tokens;
        expect(refreshExp(rotated)).toBe(absoluteEnd);
        const rotatedAt = claimsOf(rotated.access_token).iat as number;
        expect(rotatedAt).toBeGreaterThan(loginAt);
        expect(rotated.refresh_expires_in).toBe(absoluteEnd - rotatedAt);
        expect(rotated.refresh_expires_in).toBeLessThan(first.refresh_expires_in);
        expect(rotated.refresh_expires_in).toBeGreaterThan(0);

        // Past the absolute end, the token rotated a moment ago is refused too:
        // by the session's row at the Clock's time...
        moveClock(short, absoluteEnd + 0.1 - Date.now() / 1000);
        expectError(await refresh(short, rotated.refresh_token), 401, 'session_expired');
        restoreClock(short);
        // ...and by its own exp once the real time is there, which is also
        // the time the session list is judged by.
        await waitForWallClock(absoluteEnd);
        expectError(await refresh(short, rotated.refresh_token), 401, 'session_expired');

        // The expired session is no longer listed.
        const fresh = await login(short, first.username);
        expect((await listSessions(short, fresh.access_token)).map((s) => s.id)).toEqual([
          sid(fresh),
        ]);
      });
    });

    describe('inactivity timeout (REFRESH_TOKEN_TTL=2s)', () => {
      const short = useTestApp({ REFRESH_TOKEN_TTL: '2', ACCESS_TOKEN_TTL: '1' });
      afterEach(() => restoreClock(short));

      it('each refresh slides the window; an idle session expires', async () => {
        const first = await register(short);
        expect(first.refresh_expires_in).toBe(2);
        const loginAt = claimsOf(first.access_token).iat as number;

        // A second later by the Clock (the time the rotation judges by).
        moveClock(short, 1);
        const rotated = (await refresh(short, first.refresh_token).expect(200)).body as Tokens;
        expect(rotated.refresh_expires_in).toBe(2);
        expect(refreshExp(rotated)).toBeGreaterThan(refreshExp(first));
        expect(claimsOf(rotated.access_token).iat).toBeGreaterThan(loginAt);

        // Idle past the slid window: the session's row refuses the token.
        moveClock(short, refreshExp(rotated) + 0.1 - Date.now() / 1000);
        expectError(await refresh(short, rotated.refresh_token), 401, 'session_expired');
      });
    });
  });

  describe('session cap (MAX_SESSIONS_PER_USER=3)', () => {
    const capped = useTestApp({ MAX_SESSIONS_PER_USER: '3' });

    it('a fourth login evicts the least recently used session, not the oldest', async () => {
      const a = await register(capped);
      await tick();
      const b = await login(capped, a.username);
      await tick();
      const c = await login(capped, a.username);
      await tick();
      // A is the oldest, but this refresh makes B the least recently used.
      const a2 = (await refresh(capped, a.refresh_token).expect(200)).body as Tokens;
      await tick();
      const d = await login(capped, a.username);

      await expectSessionDead(capped, b);
      expect(await revokedReasons(capped, sub(a))).toEqual({
        [sid(a)]: null,
        [sid(b)]: 'evicted',
        [sid(c)]: null,
        [sid(d)]: null,
      });

      const listed = await listSessions(capped, d.access_token);
      expect(listed.map((s) => s.id)).toEqual([sid(d), sid(a), sid(c)]);
      for (const tokens of [a2, c, d]) await todos(capped, tokens.access_token).expect(200);

      const evictions = (await listEvents(capped, d.access_token)).filter(
        (e) => e.type === 'session_revoked',
      );
      expect(evictions).toEqual([
        expect.objectContaining({ session_id: sid(b), reason: 'evicted' }),
      ]);

      await expectSessionAlive(capped, a2);
      await expectSessionAlive(capped, c);
      await expectSessionAlive(capped, d);
    });
  });
});
