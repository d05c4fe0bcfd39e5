import { createHash } from 'node:crypto';
import { expectError } from './support/errors.js';
import {
  claimsOf,
  login,
  logout,
  me,
  PASSWORD,
  refresh,
  register,
  todos,
  type Tokens,
  uniqueUsername,
} from './support/requests.js';
import { useTestApp } from './support/test-app.js';
import { restoreClock, setClock, waitForWallClock } from './support/time.js';

describe('auth (e2e)', () => {
  // SEED_DEMO_USER: the demo account, as on the embedded default.
  const t = useTestApp({ SEED_DEMO_USER: 'true' });

  /** `first` followed by `rotations` rotations, each presenting the newest token. */
  async function chain(first: Tokens, rotations: number): Promise<Tokens[]> {
    const tokens = [first];
    for (let i = 0; i < rotations; i += 1) {
      const res = await refresh(t, tokens[tokens.length - 1].refresh_token).expect(200);
      tokens.push(res.body as Tokens);
    }
    return tokens;
  }
  const generationOf = async (sessionId: unknown) => {
    const [row] = await t.db.query<{ generation: number }[]>(
      'SELECT generation FROM sessions WHERE id = $1',
      [sessionId],
    );
    return row.generation;
  };

  describe('a session with the demo account, start to end', () => {
    it('login, refresh, todos, logout with the login-time refresh token, then both 401', async () => {
      const loginRes = await t
        .http()
        .post('/auth/login')
        .send({ username: 'testuser', password: 'testpass123' })
        .expect(200);
      const { access_token: accessToken, refresh_token: refreshToken } = loginRes.body as Tokens;
      expect(accessToken).toEqual(expect.any(String));
      expect(refreshToken).toEqual(expect.any(String));

      const refreshRes = await refresh(t, refreshToken).expect(200);
      const refreshed = refreshRes.body as Tokens;
      expect(refreshed.access_token).not.toBe(accessToken);
      expect(refreshed.refresh_token).not.toBe(refreshToken);

      const todosRes = await todos(t, refreshed.access_token).expect(200);
      expect(Array.isArray(todosRes.body)).toBe(true);

      // The script logs out with the new access token and the *login-time* refresh token.
      const logoutRes = await logout(t, refreshed.access_token, {
        refresh_token: refreshToken,
      }).expect(200);
      expect(Object.keys(logoutRes.body as object)).toEqual(['message']);
      expect(typeof (logoutRes.body as { message: unknown }).message).toBe('string');

      expectError(await todos(t, refreshed.access_token), 401, 'session_revoked');
      expectError(await refresh(t, refreshToken), 401, 'session_revoked');
      // The newest refresh token of that session is dead too.
      expectError(await refresh(t, refreshed.refresh_token), 401, 'session_revoked');
    });
  });

  describe('token responses (RFC 6749 §5.1)', () => {
    it('register returns the full token response, uncacheable', async () => {
      const username = uniqueUsername();
      const res = await t
        .http()
        .post('/auth/register')
        .send({ username, password: PASSWORD })
        .expect(201);
      expect(Object.keys(res.body as object).sort()).toEqual(
        ['access_token', 'expires_in', 'refresh_expires_in', 'refresh_token', 'token_type'].sort(),
      );
      const body = res.body as Tokens;
      expect(body.token_type).toBe('Bearer');
      expect(body.expires_in).toBe(15 * 60);
      expect(body.refresh_expires_in).toBe(7 * 24 * 60 * 60);
      expect(res.headers['cache-control']).toBe('no-store');
      expect(res.headers['pragma']).toBe('no-cache');
    });

    it('access token carries sub, sid, jti, iat, exp, iss, aud and typ at+jwt (RFC 9068)', async () => {
      const tokens = await register(t);
      const header = JSON.parse(
        Buffer.from(tokens.access_token.split('.')[0], 'base64url').toString(),
      ) as Record<string, unknown>;
      expect(header).toMatchObject({ alg: 'ES256', typ: 'at+jwt' });
      expect(typeof header.kid).toBe('string');
      const claims = claimsOf(tokens.access_token);
      // The issuer is the service's URL (PUBLIC_URL, by default http://localhost:PORT).
      expect(claims).toMatchObject({ iss: 'http://localhost:8000', aud: 'lineage-api' });
      for (const claim of ['sub', 'sid', 'jti', 'iat', 'exp']) expect(claims).toHaveProperty(claim);
      expect((claims.exp as number) - (claims.iat as number)).toBe(tokens.expires_in);
      const profile = await me(t, tokens.access_token).expect(200);
      expect((profile.body as { id: string }).id).toBe(claims.sub);
    });

    it('login and refresh responses are uncacheable too', async () => {
      const { username } = await register(t);
      const res = await t
        .http()
        .post('/auth/login')
        .send({ username, password: PASSWORD })
        .expect(200);
      expect(res.headers['cache-control']).toBe('no-store');
      const refreshed = await refresh(t, (res.body as Tokens).refresh_token).expect(200);
      expect(refreshed.headers['cache-control']).toBe('no-store');
      expect((refreshed.body as Tokens).token_type).toBe('Bearer');
    });
  });

  describe('register', () => {
    it('refuses a taken username, case-insensitively, and keeps the original account', async () => {
      const username = uniqueUsername('Case');
      await register(t, username);
      const same = await t
        .http()
        .post('/auth/register')
        .send({ username, password: 'another password' });
      expectError(same, 409, 'username_taken');
      const upper = await t
        .http()
        .post('/auth/register')
        .send({ username: username.toUpperCase(), password: 'another password' });
      expectError(upper, 409, 'username_taken');
      // The original password still works; the rejected one does not.
      await login(t, username);
      expectError(
        await t.http().post('/auth/login').send({ username, password: 'another password' }),
        401,
        'invalid_credentials',
      );
    });

    it.each([
      ['missing password', { username: 'someone_ok' }],
      ['short password', { username: 'someone_ok', password: 'short' }],
      [
        'password over 72 bytes (bcrypt would truncate it)',
        { username: 'someone_ok', password: 'é'.repeat(40) },
      ],
      ['bad username characters', { username: 'no spaces allowed', password: PASSWORD }],
      ['non-string username', { username: 42, password: PASSWORD }],
      ['unknown field', { username: 'someone_ok', password: PASSWORD, admin: true }],
    ])('refuses %s with validation_failed', async (_case, body) => {
      const res = await t.http().post('/auth/register').send(body);
      expectError(res, 400, 'validation_failed');
      expect((res.body as { details: unknown[] }).details.length).toBeGreaterThan(0);
    });
  });

  describe('login', () => {
    it('answers unknown user and wrong password identically', async () => {
      const { username } = await register(t);
      const wrongPassword = await t
        .http()
        .post('/auth/login')
        .send({ username, password: 'wrong password!' });
      const unknownUser = await t
        .http()
        .post('/auth/login')
        .send({ username: uniqueUsername('ghost'), password: PASSWORD });
      expectError(wrongPassword, 401, 'invalid_credentials');
      expectError(unknownUser, 401, 'invalid_credentials');
      expect(unknownUser.body).toEqual(wrongPassword.body);
      expect(unknownUser.headers['www-authenticate']).toBe(
        wrongPassword.headers['www-authenticate'],
      );
    });

    it('matches the username case-insensitively', async () => {
      const { username } = await register(t, uniqueUsername('Mixed'));
      await login(t, username.toLowerCase());
    });

    it('starts a new, independent family each time', async () => {
      const { username } = await register(t);
      const a = await login(t, username);
      const b = await login(t, username);
      expect(claimsOf(a.access_token).sid).not.toBe(claimsOf(b.access_token).sid);
    });
  });

  describe('refresh rotation (RFC 9700 §4.14.2)', () => {
    it('rotates along a chain, each token single-use, the family kept', async () => {
      const first = await register(t);
      const sid = claimsOf(first.access_token).sid;
      let current: Tokens = first;
      const seen = new Set<string>([first.refresh_token]);
      for (let i = 0; i < 5; i += 1) {
        const res = await refresh(t, current.refresh_token).expect(200);
        current = res.body as Tokens;
        expect(seen.has(current.refresh_token)).toBe(false);
        seen.add(current.refresh_token);
        expect(claimsOf(current.access_token).sid).toBe(sid);
        expect(claimsOf(current.refresh_token).sid).toBe(sid);
        await todos(t, current.access_token).expect(200);
      }
    });

    it('re-presenting the immediate predecessor returns the same child, byte for byte, and issues nothing new', async () => {
      const first = await register(t);
      const sid = claimsOf(first.access_token).sid;
      const child = (await refresh(t, first.refresh_token).expect(200)).body as Tokens;
      const again = (await refresh(t, first.refresh_token).expect(200)).body as Tokens;
      expect(again.refresh_token).toBe(child.refresh_token);
      // A re-issue is not a rotation: the session is still at the child's generation.
      expect(await generationOf(sid)).toBe(1);
      // The session goes on: the child still rotates normally.
      await refresh(t, child.refresh_token).expect(200);
      expect(await generationOf(sid)).toBe(2);
    });

    it('reuse of an older token revokes the whole session, newest tokens included', async () => {
      const [first, , , fourth] = await chain(await register(t), 3);
      await todos(t, fourth.access_token).expect(200);

      // `first` is three generations behind: no grace reaches back that far, this is theft.
      expectError(await refresh(t, first.refresh_token), 401, 'refresh_token_reused');
      expectError(await refresh(t, fourth.refresh_token), 401, 'session_revoked');
      expectError(await todos(t, fourth.access_token), 401, 'session_revoked');
      expectError(await todos(t, first.access_token), 401, 'session_revoked');

      const session = await t.db.query<{ revoked_reason: string }[]>(
        'SELECT revoked_reason FROM sessions WHERE id = $1',
        [claimsOf(first.access_token).sid],
      );
      expect(session).toEqual([{ revoked_reason: 'reuse_detected' }]);
    });

    it("reuse does not touch the same user's other sessions", async () => {
      const registered = await register(t);
      const b = await login(t, registered.username);
      const [a] = await chain(registered, 3);
      expectError(await refresh(t, a.refresh_token), 401, 'refresh_token_reused');
      await todos(t, b.access_token).expect(200);
      await refresh(t, b.refresh_token).expect(200);
    });

    it('stores no refresh token, nor anything from which one could be presented', async () => {
      const [first, second] = await chain(await register(t), 1);
      const sid = claimsOf(first.access_token).sid as string;
      const rows = await t.db.query<{ row: string }[]>(
        'SELECT row_to_json(s)::text AS row FROM sessions s WHERE id = $1',
        [sid],
      );
      // The session is one row, whatever its rotations.
      expect(rows).toHaveLength(1);
      const dump = rows[0].row;
      // The dump is the session's row (bytea renders as \x-prefixed lowercase hex).
      expect(dump).toContain(sid);
      expect(dump).toMatch(/"token_salt":"\\\\x[0-9a-f]{64}"/);
      for (const token of [first.refresh_token, second.refresh_token]) {
        const digest = createHash('sha256').update(token).digest();
        // The jti is SHA-256(salt || generation): derivable from the row only with the salt.
        const jti = claimsOf(token).jti as string;
        for (const trace of [
          token,
          token.split('.')[1],
          token.split('.')[2],
          digest.toString('hex'),
          digest.toString('base64'),
          digest.toString('base64url'),
          jti,
          Buffer.from(jti, 'base64url').toString('hex'),
        ]) {
          expect(dump).not.toContain(trace);
        }
      }
    });

    it.each([
      ['missing', {}],
      ['not a string', { refresh_token: 123 }],
      ['empty', { refresh_token: '' }],
    ])('a %s refresh_token is a 400', async (_case, body) => {
      expectError(await t.http().post('/auth/refresh').send(body), 400, 'validation_failed');
    });

    it('refuses garbage and tampered refresh tokens', async () => {
      const tokens = await register(t);
      expectError(await refresh(t, 'not.a.jwt'), 401, 'token_invalid');
      const [h, p, s] = tokens.refresh_token.split('.');
      const flipped = `${h}.${p}.${s.slice(0, -2)}${s.endsWith('AA') ? 'BB' : 'AA'}`;
      expectError(await refresh(t, flipped), 401, 'token_invalid');
      // The untouched token still works: a forged one must not have harmed the family.
      await refresh(t, tokens.refresh_token).expect(200);
    });
  });

  describe('token kinds are not interchangeable (RFC 8725 §3.11)', () => {
    it('an access token is not a refresh token', async () => {
      const tokens = await register(t);
      expectError(await refresh(t, tokens.access_token), 401, 'token_invalid');
    });

    it('a refresh token is not an access token', async () => {
      const tokens = await register(t);
      expectError(await todos(t, tokens.refresh_token), 401, 'token_invalid');
    });

    it('refuses alg none and a missing bearer token', async () => {
      const tokens = await register(t);
      const [, payload] = tokens.access_token.split('.');
      const none = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'at+jwt' })).toString('base64url')}.${payload}.`;
      expectError(await todos(t, none), 401, 'token_invalid');
      expectError(await t.http().get('/todos'), 401, 'token_missing');
    });
  });

  describe('logout', () => {
    it('kills both tokens of the session at once; another session of the user survives', async () => {
      const a = await register(t);
      const b = await login(t, a.username);
      await logout(t, a.access_token, {}).expect(200);

      expectError(await todos(t, a.access_token), 401, 'session_revoked');
      expectError(await refresh(t, a.refresh_token), 401, 'session_revoked');
      await todos(t, b.access_token).expect(200);
      await refresh(t, b.refresh_token).expect(200);
    });

    it('is harmless to repeat, and works without a body', async () => {
      const a = await register(t);
      const b = await login(t, a.username);
      await logout(t, a.access_token).expect(200);
      // The revoked access token cannot log out again: its session is gone.
      expectError(await logout(t, a.access_token), 401, 'session_revoked');
      // Logging out the other session with the first one's refresh token changes nothing for it.
      await logout(t, b.access_token, { refresh_token: a.refresh_token }).expect(200);
      const reasons = await t.db.query<{ revoked_reason: string }[]>(
        'SELECT revoked_reason FROM sessions WHERE user_id = $1 ORDER BY created_at',
        [claimsOf(a.access_token).sub],
      );
      expect(reasons).toEqual([{ revoked_reason: 'logout' }, { revoked_reason: 'logout' }]);
    });

    it('also ends the session of a given refresh token of the same user', async () => {
      const a = await register(t);
      const b = await login(t, a.username);
      await logout(t, a.access_token, { refresh_token: b.refresh_token }).expect(200);
      expectError(await todos(t, b.access_token), 401, 'session_revoked');
      expectError(await refresh(t, b.refresh_token), 401, 'session_revoked');
    });

    it("ignores another user's refresh token", async () => {
      const a = await register(t);
      const other = await register(t);
      await logout(t, a.access_token, { refresh_token: other.refresh_token }).expect(200);
      await todos(t, other.access_token).expect(200);
      await refresh(t, other.refresh_token).expect(200);
    });

    it('requires an access token', async () => {
      expectError(await t.http().post('/auth/logout').send({}), 401, 'token_missing');
    });
  });

  describe('with short lifetimes', () => {
    // Two seconds, not one: exp has one-second resolution, so a one-second
    // token issued late in a second can expire a few milliseconds later.
    const short = useTestApp({ ACCESS_TOKEN_TTL: '2', REFRESH_REUSE_GRACE: '1' });

    it('an expired access token gets token_expired with its own message; refresh recovers', async () => {
      const tokens = await register(short);
      expect(tokens.expires_in).toBe(2);
      // Used once while valid, so the guard has remembered it as verified:
      // expiry must still be enforced on the remembered token.
      await todos(short, tokens.access_token).expect(200);
      // Access-token expiry is judged by the real clock (see waitForWallClock).
      await waitForWallClock(claimsOf(tokens.access_token).exp as number);
      const res = await todos(short, tokens.access_token);
      expectError(res, 401, 'token_expired');
      expect((res.body as { message: string }).message).toBe('Access token has expired');
      expect(res.headers['www-authenticate']).toContain('error="invalid_token"');

      const refreshed = (await refresh(short, tokens.refresh_token).expect(200)).body as Tokens;
      await todos(short, refreshed.access_token).expect(200);
    });

    it('after the grace window the predecessor still gets its unused child; once that child was used, the predecessor revokes the session', async () => {
      const first = await register(short);
      const child = (await refresh(short, first.refresh_token).expect(200)).body as Tokens;
      try {
        // Well past the 1 s grace: the child is unused, so this is a lost response, not theft.
        const start = Date.now();
        setClock(short, new Date(start + 5000));
        const again = (await refresh(short, first.refresh_token).expect(200)).body as Tokens;
        expect(again.refresh_token).toBe(child.refresh_token);

        const grandchild = (await refresh(short, child.refresh_token).expect(200)).body as Tokens;
        // Past the grace after the child's use: `first` is now reuse.
        setClock(short, new Date(start + 10_000));
        expectError(await refresh(short, first.refresh_token), 401, 'refresh_token_reused');
        expectError(await refresh(short, grandchild.refresh_token), 401, 'session_revoked');
        expectError(await refresh(short, child.refresh_token), 401, 'session_revoked');
      } finally {
        restoreClock(short);
      }
    });
  });
});
