import { ConfigError } from '../src/config/configuration.js';
import { buildConfig } from '../src/config/environment.js';
import {
  type CookieTokens,
  expectClearedCookie,
  expectCookieKept,
  expectIssuedCookie,
  PLAIN_REFRESH_COOKIE,
  REFRESH_COOKIE,
  refreshCookieOf,
} from './support/cookies.js';
import { expectError } from './support/errors.js';
import {
  claimsOf,
  login,
  logout,
  me,
  PASSWORD,
  refresh,
  register,
  type Tokens,
  uniqueUsername,
} from './support/requests.js';
import { useTestApp } from './support/test-app.js';
import { expiredRefreshToken } from './support/tokens.js';

/**
 * The cookie transport of the refresh token (X-Token-Transport: cookie): an
 * HttpOnly, Secure, SameSite=Strict `__Host-` cookie set, rotated and cleared
 * by the server, and the configurations that change it.
 */
describe('refresh token cookie transport (e2e)', () => {
  const t = useTestApp();

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
      await me(t, body.access_token).expect(200);
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

        const res = await logout(t, (browser.body as CookieTokens).access_token)
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
      await me(t, (res1.body as CookieTokens).access_token).expect(200);

      // An empty JSON body.
      const res2 = await cookieRefresh(second).send({}).expect(200);
      const third = expectIssuedCookie(res2);
      expect(third).not.toBe(second);
      expect(third).not.toBe(first);
      await me(t, (res2.body as CookieTokens).access_token).expect(200);
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

      const res = await logout(t, other.access_token)
        .set('Cookie', cookieHeader(value))
        .expect(200);
      expectClearedCookie(res);

      const refreshed = await cookieRefresh(value);
      expectError(refreshed, 401, 'session_revoked');
      expectClearedCookie(refreshed);
      expectError(
        await me(t, (cookieSession.body as CookieTokens).access_token),
        401,
        'session_revoked',
      );
      expectError(await me(t, other.access_token), 401, 'session_revoked');
    });

    it('logout clears the cookie even when it sends none', async () => {
      const tokens = await register(t);
      const res = await logout(t, tokens.access_token).expect(200);
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

      await me(t, (res3.body as CookieTokens).access_token).expect(200);
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
      expectError(await me(t, (res4.body as CookieTokens).access_token), 401, 'session_revoked');
    });

    it('an invalid cookie is token_invalid and is cleared', async () => {
      const res = await cookieRefresh('garbage.not.jwt');
      expectError(res, 401, 'token_invalid');
      expectClearedCookie(res);
    });

    it('a failed body-mode refresh sets no cookie', async () => {
      const res = await refresh(t, 'garbage.not.jwt');
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

      const refreshed = await refresh(t, tokens.refresh_token).expect(200);
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

  describe('with COOKIE_SECURE=false', () => {
    const plain = useTestApp({ COOKIE_SECURE: 'false' });

    it('the cookie has no Secure attribute, issued or cleared', async () => {
      const { username } = await register(plain);
      const res = await plain
        .http()
        .post('/auth/login')
        .set('X-Token-Transport', 'cookie')
        .send({ username, password: PASSWORD })
        .expect(200);
      expectIssuedCookie(res, { name: PLAIN_REFRESH_COOKIE, secure: false });
      const loggedOut = await logout(plain, (res.body as CookieTokens).access_token).expect(200);
      expectClearedCookie(loggedOut, { name: PLAIN_REFRESH_COOKIE, secure: false });
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
    const limited = useTestApp({ RATE_LIMIT_REFRESH_PER_IP: '1' });

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
    // Default lifetimes: a 1-second one could expire the newest token
    // between the steps and blur "revoked" into "expired".
    const strict = useTestApp({ REFRESH_REUSE_GRACE: '0' });

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
    const short = useTestApp({
      ACCESS_TOKEN_TTL: '1',
      REFRESH_TOKEN_TTL: '1',
      REFRESH_REUSE_GRACE: '0',
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

    it('an expired cookie is refused and cleared', async () => {
      const res = await shortCookieLogin();
      const value = expectIssuedCookie(res);
      expect(refreshCookieOf(res).attributes['Max-Age']).toBe('1');
      // The same cookie as it is once its second has passed (the real clock
      // judges a JWT's exp, see expiredRefreshToken), instead of waiting.
      const expired = await shortCookieRefresh(expiredRefreshToken(value));
      expectError(expired, 401, 'session_expired');
      expectClearedCookie(expired);
    });
  });
});
