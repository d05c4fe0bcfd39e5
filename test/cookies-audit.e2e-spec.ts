import { setTimeout as sleep } from 'node:timers/promises';
import type { Response } from 'supertest';
import { SessionHousekeeping } from '../src/auth/sessions/session-housekeeping.service.js';
import { buildConfig, ConfigError } from '../src/config/configuration.js';
import {
  bearer,
  claimsOf,
  login,
  PASSWORD,
  register,
  startTestApp,
  type TestApp,
  type Tokens,
  uniqueUsername,
  expectError,
} from './support/test-app.js';
import {
  type CookieTokens,
  expectClearedCookie,
  expectCookieKept,
  expectIssuedCookie,
  PLAIN_REFRESH_COOKIE,
  REFRESH_COOKIE,
  refreshCookieOf,
} from './support/cookies.js';

const DAY_MS = 24 * 60 * 60 * 1000;
const daysAgo = (days: number) => new Date(Date.now() - days * DAY_MS);

/** RFC 7009 §2.2: 200 with nothing in the body, whatever the token was. */
function expectEmpty200(res: Response) {
  expect(res.status).toBe(200);
  expect(res.text).toBe('');
}

interface EventBody {
  id: string;
  type: string;
  occurred_at: string;
  session_id: string | null;
  reason: string | null;
  ip: string | null;
  user_agent: string | null;
}

describe('cookie transport, audit trail, RFC 7009 and housekeeping (e2e)', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp();
  });

  afterAll(async () => {
    await t.close();
  });

  const cookieHeader = (value: string) => `${REFRESH_COOKIE}=${value}`;
  const cookieLogin = (username: string) =>
    t
      .http()
      .post('/auth/login')
      .set('X-Token-Transport', 'cookie')
      .send({ username, password: PASSWORD });
  const cookieRefresh = (value: string) =>
    t
      .http()
      .post('/auth/refresh')
      .set('X-Token-Transport', 'cookie')
      .set('Cookie', cookieHeader(value));
  const bodyRefresh = (refreshToken: string) =>
    t.http().post('/auth/refresh').send({ refresh_token: refreshToken });
  const me = (accessToken: string) => t.http().get('/users/me').set(bearer(accessToken));
  const events = (accessToken: string, query = '') =>
    t.http().get(`/users/me/events${query}`).set(bearer(accessToken));
  const revoke = (body: object) => t.http().post('/auth/revoke').send(body);

  async function allEvents(accessToken: string): Promise<EventBody[]> {
    const res = await events(accessToken, '?limit=100').expect(200);
    return res.body as EventBody[];
  }

  describe('refresh token in an HttpOnly cookie', () => {
    it('login with X-Token-Transport: cookie sets the cookie and leaves it out of the body', async () => {
      const { username } = await register(t);
      const res = await cookieLogin(username).expect(200);
      const value = expectIssuedCookie(res);
      const body = res.body as CookieTokens;
      expect(body.refresh_expires_in).toBe(7 * 24 * 60 * 60);
      expect(res.headers['cache-control']).toBe('no-store');
      // The cookie is a working refresh token of the same session as the access token.
      expect(claimsOf(value).sid).toBe(claimsOf(body.access_token).sid);
      await me(body.access_token).expect(200);
    });

    it('register with the header sets the cookie too', async () => {
      const res = await t
        .http()
        .post('/auth/register')
        .set('X-Token-Transport', 'cookie')
        .send({ username: uniqueUsername(), password: PASSWORD })
        .expect(201);
      const value = expectIssuedCookie(res);
      expect(claimsOf(value).sid).toBe(claimsOf((res.body as CookieTokens).access_token).sid);
    });

    it('the cookie is __Host-refresh_token: Secure, Path=/ and no Domain, so no other host of the site can set it (RFC 6265bis §4.1.3.2)', async () => {
      const { username } = await register(t);
      const res = await cookieLogin(username).expect(200);
      expectIssuedCookie(res);
      const cookie = refreshCookieOf(res);
      expect(cookie.name).toBe('__Host-refresh_token');
      expect(cookie.attributes).toMatchObject({ Path: '/', Secure: true });
      expect(Object.keys(cookie.attributes)).not.toContain('Domain');
    });

    describe('cookie tossing: a cookie planted by another host of the site (RFC 6265 §8.6)', () => {
      /** A victim's and an attacker's cookie sessions (the attacker logs in as itself). */
      async function victimAndAttacker() {
        const victim = expectIssuedCookie(await cookieLogin((await register(t)).username));
        const attacker = expectIssuedCookie(await cookieLogin((await register(t)).username));
        return { victim, attacker };
      }
      const refreshWith = (cookie: string) =>
        t.http().post('/auth/refresh').set('X-Token-Transport', 'cookie').set('Cookie', cookie);

      it.each([
        ['first', (v: string, a: string) => `${REFRESH_COOKIE}=${a}; ${REFRESH_COOKIE}=${v}`],
        ['last', (v: string, a: string) => `${REFRESH_COOKIE}=${v}; ${REFRESH_COOKIE}=${a}`],
        [
          'among others, spaced',
          (v: string, a: string) =>
            `theme=dark;${REFRESH_COOKIE}=${v}; x=1 ;  ${REFRESH_COOKIE} =${a}`,
        ],
      ])(
        'refuses the cookie sent twice (planted %s): 400 cookie_duplicated, nothing consumed, neither cleared',
        async (_case, header) => {
          const { victim, attacker } = await victimAndAttacker();
          const res = await refreshWith(header(victim, attacker));
          expectError(res, 400, 'cookie_duplicated');
          expectCookieKept(res);
          // Each alone still refreshes its own session: nothing was rotated.
          const own = expectIssuedCookie(await cookieRefresh(victim).expect(200));
          expect(claimsOf(own).sid).toBe(claimsOf(victim).sid);
          expectIssuedCookie(await cookieRefresh(attacker).expect(200));
        },
      );

      it('ignores a planted cookie without the prefix: alone it is no token, beside ours it is not read', async () => {
        const { victim, attacker } = await victimAndAttacker();
        const alone = await refreshWith(`${PLAIN_REFRESH_COOKIE}=${attacker}`);
        expectError(alone, 400, 'validation_failed');
        expectCookieKept(alone);

        const beside = await refreshWith(
          `${PLAIN_REFRESH_COOKIE}=${attacker}; ${REFRESH_COOKIE}=${victim}`,
        ).expect(200);
        expect(claimsOf(expectIssuedCookie(beside)).sid).toBe(claimsOf(victim).sid);
      });

      it('logout with the cookie twice still ends the bearer session and clears ours, and revokes no session by either cookie', async () => {
        const { username } = await register(t);
        const browser = await cookieLogin(username).expect(200);
        const victim = expectIssuedCookie(browser);
        const { attacker } = await victimAndAttacker();
        // A second session of the victim's, named only by its cookie.
        const other = expectIssuedCookie(await cookieLogin(username).expect(200));

        const res = await t
          .http()
          .post('/auth/logout')
          .set(bearer((browser.body as CookieTokens).access_token))
          // First-wins parsing would take `other` and end that session of the caller's.
          .set('Cookie', `${REFRESH_COOKIE}=${other}; ${REFRESH_COOKIE}=${attacker}`)
          .expect(200);
        expectClearedCookie(res);
        expectError(await cookieRefresh(victim), 401, 'session_revoked');
        // Which of the two was meant cannot be told, so neither session was touched.
        expectIssuedCookie(await cookieRefresh(other).expect(200));
        expectIssuedCookie(await cookieRefresh(attacker).expect(200));
      });
    });

    it('the header value is case-insensitive; any other value keeps the body transport', async () => {
      const { username } = await register(t);
      const upper = await t
        .http()
        .post('/auth/login')
        .set('X-Token-Transport', ' Cookie ')
        .send({ username, password: PASSWORD })
        .expect(200);
      expectIssuedCookie(upper);
      const other = await t
        .http()
        .post('/auth/login')
        .set('X-Token-Transport', 'body')
        .send({ username, password: PASSWORD })
        .expect(200);
      expect(other.headers['set-cookie']).toBeUndefined();
      expect((other.body as Tokens).refresh_token).toEqual(expect.any(String));
    });

    it('refreshes by the cookie alone, rotating it, with no body or an empty one', async () => {
      const { username } = await register(t);
      const first = expectIssuedCookie(await cookieLogin(username).expect(200));

      // No body at all.
      const res1 = await cookieRefresh(first).expect(200);
      const second = expectIssuedCookie(res1);
      expect(second).not.toBe(first);
      expect(claimsOf(second).sid).toBe(claimsOf(first).sid);
      await me((res1.body as CookieTokens).access_token).expect(200);

      // An empty JSON body.
      const res2 = await cookieRefresh(second).send({}).expect(200);
      const third = expectIssuedCookie(res2);
      expect(third).not.toBe(second);
      expect(third).not.toBe(first);
      await me((res2.body as CookieTokens).access_token).expect(200);
    });

    it('the previous cookie, while its child is unused, gets that same child again', async () => {
      const { username } = await register(t);
      const first = expectIssuedCookie(await cookieLogin(username).expect(200));
      const second = expectIssuedCookie(await cookieRefresh(first).expect(200));
      const again = expectIssuedCookie(await cookieRefresh(first).expect(200));
      expect(again).toBe(second);
      // The session goes on from that child.
      expectIssuedCookie(await cookieRefresh(second).expect(200));
    });

    it('a refresh_token in the body wins over the cookie', async () => {
      const tokens = await register(t);
      const res = await t
        .http()
        .post('/auth/refresh')
        .set('X-Token-Transport', 'cookie')
        .set('Cookie', cookieHeader('not-a-token'))
        .send({ refresh_token: tokens.refresh_token })
        .expect(200);
      // Cookie transport asked for: the rotated token comes back as the cookie.
      const value = expectIssuedCookie(res);
      expect(claimsOf(value).sid).toBe(claimsOf(tokens.refresh_token).sid);
    });

    it('ignores the cookie without the X-Token-Transport header (CSRF defence)', async () => {
      const { username } = await register(t);
      const value = expectIssuedCookie(await cookieLogin(username).expect(200));
      const res = await t.http().post('/auth/refresh').set('Cookie', cookieHeader(value));
      expectError(res, 400, 'validation_failed');
      expect(res.headers['set-cookie']).toBeUndefined();
      // Nothing was consumed: with the header the same cookie still rotates.
      expectIssuedCookie(await cookieRefresh(value).expect(200));
    });

    it('the header without any cookie is a 400', async () => {
      const res = await t.http().post('/auth/refresh').set('X-Token-Transport', 'cookie');
      expectError(res, 400, 'validation_failed');
    });

    it('logout reads the cookie, ends its session, and clears the cookie', async () => {
      const { username } = await register(t);
      const cookieSession = await cookieLogin(username).expect(200);
      const value = expectIssuedCookie(cookieSession);
      // The bearer comes from another session, so only the cookie can name the first one.
      const other = await login(t, username);

      const res = await t
        .http()
        .post('/auth/logout')
        .set(bearer(other.access_token))
        .set('Cookie', cookieHeader(value))
        .expect(200);
      expectClearedCookie(res);

      const refreshed = await cookieRefresh(value);
      expectError(refreshed, 401, 'session_revoked');
      expectClearedCookie(refreshed);
      expectError(
        await me((cookieSession.body as CookieTokens).access_token),
        401,
        'session_revoked',
      );
      expectError(await me(other.access_token), 401, 'session_revoked');
    });

    it('logout clears the cookie even when it sends none', async () => {
      const tokens = await register(t);
      const res = await t.http().post('/auth/logout').set(bearer(tokens.access_token)).expect(200);
      expectClearedCookie(res);
    });

    it('a superseded (grandparent) cookie inside the grace is 409 and kept; the session goes on', async () => {
      const { username } = await register(t);
      const first = expectIssuedCookie(await cookieLogin(username).expect(200));
      const second = expectIssuedCookie(await cookieRefresh(first).expect(200));
      const res3 = await cookieRefresh(second).expect(200);
      const third = expectIssuedCookie(res3);

      const superseded = await cookieRefresh(first);
      expectError(superseded, 409, 'refresh_token_superseded');
      expectCookieKept(superseded);

      await me((res3.body as CookieTokens).access_token).expect(200);
      expectIssuedCookie(await cookieRefresh(third).expect(200));
    });

    it('a reused (older) cookie is refresh_token_reused, revokes the session and clears the cookie', async () => {
      const { username } = await register(t);
      const first = expectIssuedCookie(await cookieLogin(username).expect(200));
      const second = expectIssuedCookie(await cookieRefresh(first).expect(200));
      const third = expectIssuedCookie(await cookieRefresh(second).expect(200));
      const res4 = await cookieRefresh(third).expect(200);
      const fourth = expectIssuedCookie(res4);

      // Three generations behind: reuse whenever presented.
      const reused = await cookieRefresh(first);
      expectError(reused, 401, 'refresh_token_reused');
      expectClearedCookie(reused);

      const newest = await cookieRefresh(fourth);
      expectError(newest, 401, 'session_revoked');
      expectClearedCookie(newest);
      expectError(await me((res4.body as CookieTokens).access_token), 401, 'session_revoked');
    });

    it('an invalid cookie is token_invalid and is cleared', async () => {
      const res = await cookieRefresh('garbage.not.jwt');
      expectError(res, 401, 'token_invalid');
      expectClearedCookie(res);
    });

    it('a failed body-mode refresh sets no cookie', async () => {
      const res = await bodyRefresh('garbage.not.jwt');
      expectError(res, 401, 'token_invalid');
      expect(res.headers['set-cookie']).toBeUndefined();
    });

    it('body transport is unchanged: refresh_token in the body, no Set-Cookie', async () => {
      const username = uniqueUsername();
      const registered = await t
        .http()
        .post('/auth/register')
        .send({ username, password: PASSWORD })
        .expect(201);
      expect(registered.headers['set-cookie']).toBeUndefined();
      const tokens = registered.body as Tokens;
      expect(tokens.refresh_token).toEqual(expect.any(String));

      const loggedIn = await t
        .http()
        .post('/auth/login')
        .send({ username, password: PASSWORD })
        .expect(200);
      expect(loggedIn.headers['set-cookie']).toBeUndefined();
      expect((loggedIn.body as Tokens).refresh_token).toEqual(expect.any(String));

      const refreshed = await bodyRefresh(tokens.refresh_token).expect(200);
      expect(refreshed.headers['set-cookie']).toBeUndefined();
      expect(Object.keys(refreshed.body as object).sort()).toEqual(
        ['access_token', 'expires_in', 'refresh_expires_in', 'refresh_token', 'token_type'].sort(),
      );
    });

    describe('buildConfig', () => {
      const production = {
        NODE_ENV: 'production',
        DATABASE_URL: 'postgres://u@localhost:5432/db',
        PUBLIC_URL: 'https://auth.example.com',
        SIGNING_KEYS_SECRET: 'a'.repeat(40),
        JWT_REFRESH_SECRET: 'b'.repeat(40),
        METRICS_TOKEN: 'm'.repeat(32),
      };

      it('refuses COOKIE_SECURE=false in production, naming the variable', () => {
        let thrown: unknown;
        try {
          buildConfig({ ...production, COOKIE_SECURE: 'false' });
        } catch (error) {
          thrown = error;
        }
        expect(thrown).toBeInstanceOf(ConfigError);
        expect((thrown as ConfigError).variable).toBe('COOKIE_SECURE');
      });

      it('defaults to Secure, and allows turning it off outside production', () => {
        expect(buildConfig(production).auth.cookieSecure).toBe(true);
        expect(
          buildConfig({ ...production, NODE_ENV: 'development', COOKIE_SECURE: 'false' }).auth
            .cookieSecure,
        ).toBe(false);
      });
    });
  });

  describe('audit trail (GET /users/me/events)', () => {
    it('shows a reuse-detected revocation to the user, newest first, without secrets', async () => {
      const agent = `cookies-audit/${uniqueUsername('ua')}`;
      const username = uniqueUsername();
      const regRes = await t
        .http()
        .post('/auth/register')
        .set('User-Agent', agent)
        .send({ username, password: PASSWORD })
        .expect(201);
      const first = regRes.body as Tokens;
      const sid = claimsOf(first.access_token).sid as string;
      const userId = claimsOf(first.access_token).sub as string;
      // Rotations write no event: a routine refresh shows only in last_used_at.
      const second = (await bodyRefresh(first.refresh_token).expect(200)).body as Tokens;
      const third = (await bodyRefresh(second.refresh_token).expect(200)).body as Tokens;
      // The parent again, from the client that logged in: a re-issue, recorded.
      const reissued = (
        await bodyRefresh(second.refresh_token).set('User-Agent', agent).expect(200)
      ).body as Tokens;
      expect(reissued.refresh_token).toBe(third.refresh_token);
      // The grandparent inside the grace: refused, recorded, the session kept.
      expectError(await bodyRefresh(first.refresh_token), 409, 'refresh_token_superseded');
      const fourth = (await bodyRefresh(third.refresh_token).expect(200)).body as Tokens;
      // Now three generations behind: reuse.
      expectError(await bodyRefresh(first.refresh_token), 401, 'refresh_token_reused');
      const wrongPassword = 'wrong password, not stored';
      expectError(
        await t.http().post('/auth/login').send({ username, password: wrongPassword }),
        401,
        'invalid_credentials',
      );
      const fresh = await login(t, username);
      const freshSid = claimsOf(fresh.access_token).sid as string;

      const list = await allEvents(fresh.access_token);
      expect(list.map((e) => [e.type, e.session_id, e.reason])).toEqual([
        ['login_succeeded', freshSid, null],
        ['login_failed', null, null],
        ['reuse_detected', sid, 'older_generation'],
        ['session_revoked', sid, 'reuse_detected'],
        ['refresh_superseded', sid, null],
        ['refresh_reissued', sid, 'same_client'],
        ['registered', sid, null],
      ]);
      // Newest first by id and time; ids are decimal strings (bigint).
      const ids = list.map((e) => BigInt(e.id));
      for (let i = 1; i < ids.length; i += 1) expect(ids[i] < ids[i - 1]).toBe(true);
      const times = list.map((e) => Date.parse(e.occurred_at));
      for (let i = 1; i < times.length; i += 1) expect(times[i]).toBeLessThanOrEqual(times[i - 1]);
      for (const event of list) {
        expect(Object.keys(event).sort()).toEqual(
          ['id', 'ip', 'occurred_at', 'reason', 'session_id', 'type', 'user_agent'].sort(),
        );
        expect(event.id).toMatch(/^[1-9]\d*$/);
        expect(event.occurred_at).toBe(new Date(event.occurred_at).toISOString());
        expect(event.ip).toMatch(/127\.0\.0\.1$|^::1$/);
      }
      expect(list[list.length - 1].user_agent).toBe(agent);

      // The database rows hold no token and no password, in any form.
      const rows = JSON.stringify(
        await t.db.query('SELECT * FROM auth_events WHERE user_id = $1', [userId]),
      );
      const secrets = [first, second, third, reissued, fourth, fresh].flatMap((tokens) => [
        tokens.access_token,
        tokens.refresh_token,
        tokens.access_token.split('.')[2],
        tokens.refresh_token.split('.')[2],
      ]);
      for (const secret of [...secrets, PASSWORD, wrongPassword]) {
        expect(rows).not.toContain(secret);
      }
    });

    it('a failed login with an unknown username is recorded without a user', async () => {
      const agent = `cookies-audit/${uniqueUsername('ghost-ua')}`;
      const ghost = uniqueUsername('ghost');
      const attempted = 'ghost password guess';
      expectError(
        await t
          .http()
          .post('/auth/login')
          .set('User-Agent', agent)
          .send({ username: ghost, password: attempted }),
        401,
        'invalid_credentials',
      );
      const rows = await t.db.query<{ type: string; user_id: string | null }[]>(
        'SELECT * FROM auth_events WHERE user_agent = $1',
        [agent],
      );
      expect(rows).toHaveLength(1);
      expect(rows[0]).toMatchObject({ type: 'login_failed', user_id: null, session_id: null });
      const dump = JSON.stringify(rows);
      expect(dump).not.toContain(attempted);
      expect(dump).not.toContain(ghost);
    });

    it('pages with limit and before, without overlap or gaps', async () => {
      let previous: Tokens = await register(t);
      let current = previous;
      for (let i = 0; i < 4; i += 1) {
        previous = current;
        current = (await bodyRefresh(current.refresh_token).expect(200)).body as Tokens;
      }
      // Rotations leave no event.
      expect((await allEvents(current.access_token)).map((e) => e.type)).toEqual(['registered']);
      // Each re-issue of the newest token (its parent presented again) leaves one.
      for (let i = 0; i < 4; i += 1) {
        const again = (await bodyRefresh(previous.refresh_token).expect(200)).body as Tokens;
        expect(again.refresh_token).toBe(current.refresh_token);
      }
      const everything = await allEvents(current.access_token);
      expect(everything.map((e) => e.type)).toEqual([
        'refresh_reissued',
        'refresh_reissued',
        'refresh_reissued',
        'refresh_reissued',
        'registered',
      ]);

      const pages: EventBody[][] = [];
      let query = '?limit=2';
      // Bounded, so a cursor that fails to advance fails the test instead of hanging it.
      for (let guard = 0; guard < 10; guard += 1) {
        const page = (await events(current.access_token, query).expect(200)).body as EventBody[];
        if (page.length === 0) break;
        expect(page.length).toBeLessThanOrEqual(2);
        pages.push(page);
        query = `?limit=2&before=${page[page.length - 1].id}`;
      }
      expect(pages.map((page) => page.length)).toEqual([2, 2, 1]);
      expect(pages.flat()).toEqual(everything);

      // The default page is 20; the user has 5 events.
      const byDefault = (await events(current.access_token).expect(200)).body as EventBody[];
      expect(byDefault).toEqual(everything);
    });

    it("never shows another user's events", async () => {
      const alice = await register(t);
      const bob = await register(t);
      expectError(
        await t
          .http()
          .post('/auth/login')
          .send({ username: alice.username, password: 'nope!nope!' }),
        401,
        'invalid_credentials',
      );
      await bodyRefresh(bob.refresh_token).expect(200);
      // Bob's login token again: its child is re-issued, which is recorded.
      await bodyRefresh(bob.refresh_token).expect(200);

      const aliceEvents = await allEvents(alice.access_token);
      const bobEvents = await allEvents(bob.access_token);
      expect(aliceEvents.map((e) => e.type)).toEqual(['login_failed', 'registered']);
      expect(bobEvents.map((e) => e.type)).toEqual(['refresh_reissued', 'registered']);
      const bobSid = claimsOf(bob.access_token).sid;
      expect(bobEvents.every((e) => e.session_id === bobSid)).toBe(true);
      const aliceIds = new Set(aliceEvents.map((e) => e.id));
      expect(bobEvents.some((e) => aliceIds.has(e.id))).toBe(false);

      // A `before` cursor from someone else's trail still yields only the caller's events.
      const paged = (await events(bob.access_token, `?before=${aliceEvents[0].id}`).expect(200))
        .body as EventBody[];
      expect(paged.every((e) => e.session_id === bobSid)).toBe(true);
    });

    it('requires an access token', async () => {
      expectError(await t.http().get('/users/me/events'), 401, 'token_missing');
    });

    it.each([
      ['limit=0'],
      ['limit=101'],
      ['limit=abc'],
      ['limit=1.5'],
      ['limit=-1'],
      ['before=0'],
      ['before=abc'],
      ['before=-5'],
      ['before=1.5'],
      [`before=${'9'.repeat(19)}`],
    ])('refuses %s with validation_failed', async (query) => {
      const tokens = await register(t);
      expectError(await events(tokens.access_token, `?${query}`), 400, 'validation_failed');
    });

    it('auth_events is append-only: UPDATE is refused by the database', async () => {
      const tokens = await register(t);
      const [row] = await t.db.query<{ id: string }[]>(
        'SELECT id FROM auth_events WHERE user_id = $1',
        [claimsOf(tokens.access_token).sub],
      );
      await expect(
        t.db.query(`UPDATE auth_events SET type = 'x' WHERE id = $1`, [row.id]),
      ).rejects.toThrow(/append-only/);
      const after = await allEvents(tokens.access_token);
      expect(after.map((e) => [e.id, e.type])).toEqual([[row.id, 'registered']]);
    });
  });

  describe('RFC 7009 revocation (POST /auth/revoke)', () => {
    /** A user with two sessions: `a` to revoke and `b` that must survive. */
    async function twoSessions() {
      const a = await register(t);
      const b = await login(t, a.username);
      return { a, b };
    }

    async function expectSessionDead(tokens: Tokens) {
      expectError(await me(tokens.access_token), 401, 'session_revoked');
      expectError(await bodyRefresh(tokens.refresh_token), 401, 'session_revoked');
    }

    async function expectSessionAlive(tokens: Tokens) {
      await me(tokens.access_token).expect(200);
      await bodyRefresh(tokens.refresh_token).expect(200);
    }

    it.each([
      ['a refresh token, no hint', 'refresh_token', undefined],
      ['a refresh token, hint refresh_token', 'refresh_token', 'refresh_token'],
      ['an access token, hint access_token', 'access_token', 'access_token'],
      ['an access token, no hint', 'access_token', undefined],
      ['an access token with the wrong hint', 'access_token', 'refresh_token'],
      ['a refresh token with the wrong hint', 'refresh_token', 'access_token'],
    ] as const)('%s: ends that session only', async (_case, kind, hint) => {
      const { a, b } = await twoSessions();
      const body = hint ? { token: a[kind], token_type_hint: hint } : { token: a[kind] };
      expectEmpty200(await revoke(body));
      await expectSessionDead(a);
      await expectSessionAlive(b);
    });

    it('records session_revoked with reason token_revoked, once, and repeats answer 200', async () => {
      const { a, b } = await twoSessions();
      const sid = claimsOf(a.access_token).sid;
      expectEmpty200(await revoke({ token: a.refresh_token }));
      // Already revoked: same answer, nothing new recorded.
      expectEmpty200(await revoke({ token: a.refresh_token }));
      expectEmpty200(await revoke({ token: a.access_token, token_type_hint: 'access_token' }));

      const list = await allEvents(b.access_token);
      const revoked = list.filter((e) => e.type === 'session_revoked');
      expect(revoked).toHaveLength(1);
      expect(revoked[0]).toMatchObject({ session_id: sid, reason: 'token_revoked' });
      expect(list[0]).toMatchObject({ type: 'session_revoked', session_id: sid });
      await expectSessionAlive(b);
    });

    it('a rotated-out refresh token still revokes its session', async () => {
      const { a, b } = await twoSessions();
      const next = (await bodyRefresh(a.refresh_token).expect(200)).body as Tokens;
      expectEmpty200(await revoke({ token: a.refresh_token }));
      await expectSessionDead(next);
      await expectSessionAlive(b);
    });

    it('garbage, unknown and foreign-key tokens answer 200 and revoke nothing', async () => {
      const { a } = await twoSessions();
      expectEmpty200(await revoke({ token: 'garbage' }));
      expectEmpty200(await revoke({ token: 'a.b.c', token_type_hint: 'access_token' }));
      // A well-formed JWT signed with another key.
      const [header, payload] = a.refresh_token.split('.');
      expectEmpty200(await revoke({ token: `${header}.${payload}.${'A'.repeat(43)}` }));
      await expectSessionAlive(a);
    });

    it("anyone holding a token can revoke it: another user's token ends that user's session", async () => {
      const caller = await register(t);
      const victim = await register(t);
      const res = await revoke({ token: victim.refresh_token }).set(bearer(caller.access_token));
      expectEmpty200(res);
      await expectSessionDead(victim);
      await expectSessionAlive(caller);
    });

    it.each([
      ['a missing token', {}],
      ['an empty token', { token: '' }],
      ['a non-string token', { token: 42 }],
      ['an unknown hint', { token: 'garbage', token_type_hint: 'id_token' }],
    ])('refuses %s with validation_failed', async (_case, body) => {
      expectError(await revoke(body), 400, 'validation_failed');
    });

    it('a bad hint revokes nothing, even with a valid token', async () => {
      const tokens = await register(t);
      expectError(
        await revoke({ token: tokens.refresh_token, token_type_hint: 'id_token' }),
        400,
        'validation_failed',
      );
      await expectSessionAlive(tokens);
    });
  });

  describe('housekeeping (SessionHousekeeping.run)', () => {
    it('removes only sessions and events past retention', async () => {
      const housekeeping = t.app.get(SessionHousekeeping);
      const registered = await register(t);
      const userId = claimsOf(registered.access_token).sub as string;
      const sidOf = (tokens: Tokens) => claimsOf(tokens.access_token).sid as string;
      const { username } = registered;

      const expiredLongAgo = await login(t, username); // X: past both lifetimes
      const idleLongAgo = await login(t, username); // U: idle-expired, absolute end ahead
      const revokedLongAgo = await login(t, username); // Y
      const live = await login(t, username); // Z
      const revokedYesterday = await login(t, username); // W
      const expiredYesterday = await login(t, username); // V
      // Z rotates once: still one row, which carries everything.
      const liveNext = (await bodyRefresh(live.refresh_token).expect(200)).body as Tokens;
      expectEmpty200(await revoke({ token: revokedLongAgo.refresh_token }));
      expectEmpty200(await revoke({ token: revokedYesterday.refresh_token }));

      const [X, U, Y, Z, W, V] = [
        expiredLongAgo,
        idleLongAgo,
        revokedLongAgo,
        live,
        revokedYesterday,
        expiredYesterday,
      ].map(sidOf);
      await t.db.query(
        `UPDATE sessions
            SET created_at = $2, rotated_at = $2, last_used_at = $2, expires_at = $3,
                absolute_expires_at = $3
          WHERE id = $1`,
        [X, daysAgo(40), daysAgo(30)],
      );
      await t.db.query(
        'UPDATE sessions SET rotated_at = $2, last_used_at = $2, expires_at = $3 WHERE id = $1',
        [U, daysAgo(20), daysAgo(10)],
      );
      await t.db.query('UPDATE sessions SET revoked_at = $2 WHERE id = $1', [Y, daysAgo(30)]);
      await t.db.query('UPDATE sessions SET revoked_at = $2 WHERE id = $1', [W, daysAgo(1)]);
      await t.db.query('UPDATE sessions SET expires_at = $2 WHERE id = $1', [V, daysAgo(1)]);

      // The trigger forbids backdating events, so old ones are inserted as such.
      const insertEvent = async (occurredAt: Date) => {
        const [row] = await t.db.query<{ id: string }[]>(
          `INSERT INTO auth_events (occurred_at, type, user_id, session_id)
           VALUES ($1, 'login_succeeded', $2, $3) RETURNING id`,
          [occurredAt, userId, X],
        );
        return row.id;
      };
      const ancientEvent = await insertEvent(daysAgo(91));
      const oldButKeptEvent = await insertEvent(daysAgo(89));
      const recentEvents = await t.db.query<{ id: string }[]>(
        'SELECT id FROM auth_events WHERE user_id = $1 AND occurred_at > $2 ORDER BY id',
        [userId, daysAgo(1)],
      );
      // registered, 6 × login_succeeded, 2 × session_revoked; the rotation wrote none.
      expect(recentEvents).toHaveLength(9);

      const sessionsOfUser = async () =>
        (
          await t.db.query<{ id: string; generation: number }[]>(
            'SELECT id, generation FROM sessions WHERE user_id = $1',
            [userId],
          )
        ).sort((a, b) => a.id.localeCompare(b.id));
      // One row per session, rotated or not.
      expect((await sessionsOfUser()).map((s) => s.id)).toEqual(
        [sidOf(registered), X, U, Y, Z, W, V].sort(),
      );

      const result = await housekeeping.run(new Date());
      expect(result).not.toBeNull();
      // Nothing is stored per refresh token, so there is nothing of the kind to count.
      expect(result).not.toHaveProperty('refreshTokens');
      // Counts cover other test files' rows too; ours are a lower bound.
      expect(result!.sessions).toBeGreaterThanOrEqual(3);
      expect(result!.events).toBeGreaterThanOrEqual(1);

      const remaining = await sessionsOfUser();
      expect(remaining.map((s) => s.id)).toEqual([sidOf(registered), Z, W, V].sort());
      // Z kept its state: the generation its rotation reached.
      expect(remaining.find((s) => s.id === Z)?.generation).toBe(1);

      const eventIds = (
        await t.db.query<{ id: string }[]>(
          'SELECT id FROM auth_events WHERE user_id = $1 ORDER BY id',
          [userId],
        )
      ).map((e) => e.id);
      expect(eventIds).not.toContain(ancientEvent);
      expect(eventIds).toContain(oldButKeptEvent);
      for (const { id } of recentEvents) expect(eventIds).toContain(id);

      // What is left still behaves: Z rotates, W stays revoked, X's and U's sessions are gone.
      await bodyRefresh(liveNext.refresh_token).expect(200);
      expectError(await bodyRefresh(revokedYesterday.refresh_token), 401, 'session_revoked');
      expectError(await bodyRefresh(expiredYesterday.refresh_token), 401, 'session_expired');
      expectError(await bodyRefresh(expiredLongAgo.refresh_token), 401, 'session_revoked');
      expectError(await bodyRefresh(idleLongAgo.refresh_token), 401, 'session_revoked');
      expectError(await me(expiredLongAgo.access_token), 401, 'session_revoked');
      await me(registered.access_token).expect(200);
    });
  });

  describe('with COOKIE_SECURE=false', () => {
    let plain: TestApp;

    beforeAll(async () => {
      plain = await startTestApp({ COOKIE_SECURE: 'false' });
    });

    afterAll(async () => {
      await plain.close();
    });

    it('the cookie has no Secure attribute, issued or cleared', async () => {
      const { username } = await register(plain);
      const res = await plain
        .http()
        .post('/auth/login')
        .set('X-Token-Transport', 'cookie')
        .send({ username, password: PASSWORD })
        .expect(200);
      expectIssuedCookie(res, { name: PLAIN_REFRESH_COOKIE, secure: false });
      const logout = await plain
        .http()
        .post('/auth/logout')
        .set(bearer((res.body as CookieTokens).access_token))
        .expect(200);
      expectClearedCookie(logout, { name: PLAIN_REFRESH_COOKIE, secure: false });
    });

    it('refreshes by the plain refresh_token cookie, and refuses it sent twice', async () => {
      const { username } = await register(plain);
      const login = await plain
        .http()
        .post('/auth/login')
        .set('X-Token-Transport', 'cookie')
        .send({ username, password: PASSWORD })
        .expect(200);
      const value = expectIssuedCookie(login, { name: PLAIN_REFRESH_COOKIE, secure: false });
      const plainRefresh = (cookie: string) =>
        plain.http().post('/auth/refresh').set('X-Token-Transport', 'cookie').set('Cookie', cookie);
      const twice = await plainRefresh(
        `${PLAIN_REFRESH_COOKIE}=${value}; ${PLAIN_REFRESH_COOKIE}=${value}`,
      );
      expectError(twice, 400, 'cookie_duplicated');
      expectIssuedCookie(await plainRefresh(`${PLAIN_REFRESH_COOKIE}=${value}`).expect(200), {
        name: PLAIN_REFRESH_COOKIE,
        secure: false,
      });
    });
  });

  describe('with a refresh budget of one request per window', () => {
    let limited: TestApp;

    beforeAll(async () => {
      limited = await startTestApp({ RATE_LIMIT_REFRESH_PER_IP: '1' });
    });

    afterAll(async () => {
      await limited.close();
    });

    it('a 429 leaves the cookie alone, and the same cookie refreshes afterwards', async () => {
      const { username } = await register(t);
      const value = expectIssuedCookie(await cookieLogin(username).expect(200));
      const limitedRefresh = (cookie: string) =>
        limited
          .http()
          .post('/auth/refresh')
          .set('X-Token-Transport', 'cookie')
          .set('Cookie', cookieHeader(cookie));
      // The budget is spent before any token work, here by a dead cookie (cleared: it is over).
      const dead = await limitedRefresh('garbage.not.jwt');
      expectError(dead, 401, 'token_invalid');
      expectClearedCookie(dead);

      const throttled = await limitedRefresh(value);
      expectError(throttled, 429, 'rate_limited');
      expectCookieKept(throttled);
      // Nothing was consumed: the same cookie still rotates (on an app with budget left).
      expectIssuedCookie(await cookieRefresh(value).expect(200));
    });
  });

  describe('with no reuse grace', () => {
    let strict: TestApp;

    beforeAll(async () => {
      // Default lifetimes: a 1-second one could expire the newest token
      // between the steps and blur "revoked" into "expired".
      strict = await startTestApp({ REFRESH_REUSE_GRACE: '0' });
    });

    afterAll(async () => {
      await strict.close();
    });

    const strictRefresh = (value: string) =>
      strict
        .http()
        .post('/auth/refresh')
        .set('X-Token-Transport', 'cookie')
        .set('Cookie', cookieHeader(value));

    it('the parent still gets its unused child; a cookie whose child was used is reuse at once: refused, session revoked, cleared', async () => {
      const { username } = await register(strict);
      const login = await strict
        .http()
        .post('/auth/login')
        .set('X-Token-Transport', 'cookie')
        .send({ username, password: PASSWORD })
        .expect(200);
      const first = expectIssuedCookie(login);
      const second = expectIssuedCookie(await strictRefresh(first).expect(200));
      // The re-issue of an unused child has no time limit, grace or not.
      expect(expectIssuedCookie(await strictRefresh(first).expect(200))).toBe(second);
      const third = expectIssuedCookie(await strictRefresh(second).expect(200));
      const reused = await strictRefresh(first);
      expectError(reused, 401, 'refresh_token_reused');
      expectClearedCookie(reused);
      const newest = await strictRefresh(third);
      expectError(newest, 401, 'session_revoked');
      expectClearedCookie(newest);
    });
  });

  describe('with a 1-second refresh lifetime', () => {
    let short: TestApp;

    beforeAll(async () => {
      short = await startTestApp({
        ACCESS_TOKEN_TTL: '1',
        REFRESH_TOKEN_TTL: '1',
        REFRESH_REUSE_GRACE: '0',
      });
    });

    const shortCookieLogin = async () => {
      const { username } = await register(short);
      return short
        .http()
        .post('/auth/login')
        .set('X-Token-Transport', 'cookie')
        .send({ username, password: PASSWORD })
        .expect(200);
    };

    const shortCookieRefresh = (value: string) =>
      short
        .http()
        .post('/auth/refresh')
        .set('X-Token-Transport', 'cookie')
        .set('Cookie', cookieHeader(value));

    afterAll(async () => {
      await short.close();
    });

    it('an expired cookie is refused and cleared', async () => {
      const res = await shortCookieLogin();
      const value = expectIssuedCookie(res);
      expect(refreshCookieOf(res).attributes['Max-Age']).toBe('1');
      // exp has one-second resolution: past it for certain after two seconds.
      await sleep(2100);
      const expired = await shortCookieRefresh(value);
      expectError(expired, 401, 'session_expired');
      expectClearedCookie(expired);
    });
  });
});
