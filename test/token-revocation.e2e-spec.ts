import { expectError } from './support/errors.js';
import {
  bearer,
  claimsOf,
  expectEmpty200,
  listEvents,
  login,
  me,
  refresh,
  register,
  revoke,
  type Tokens,
} from './support/requests.js';
import { useTestApp } from './support/test-app.js';

/** RFC 7009 token revocation (POST /auth/revoke) with live tokens. */
describe('token revocation (e2e)', () => {
  const t = useTestApp();

  describe('RFC 7009 revocation (POST /auth/revoke)', () => {
    /** A user with two sessions: `a` to revoke and `b` that must survive. */
    async function twoSessions() {
      const a = await register(t);
      const b = await login(t, a.username);
      return { a, b };
    }

    async function expectSessionDead(tokens: Tokens) {
      expectError(await me(t, tokens.access_token), 401, 'session_revoked');
      expectError(await refresh(t, tokens.refresh_token), 401, 'session_revoked');
    }

    async function expectSessionAlive(tokens: Tokens) {
      await me(t, tokens.access_token).expect(200);
      await refresh(t, tokens.refresh_token).expect(200);
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
      expectEmpty200(await revoke(t, body));
      await expectSessionDead(a);
      await expectSessionAlive(b);
    });

    it('records session_revoked with reason token_revoked, once, and repeats answer 200', async () => {
      const { a, b } = await twoSessions();
      const sid = claimsOf(a.access_token).sid;
      expectEmpty200(await revoke(t, { token: a.refresh_token }));
      // Already revoked: same answer, nothing new recorded.
      expectEmpty200(await revoke(t, { token: a.refresh_token }));
      expectEmpty200(await revoke(t, { token: a.access_token, token_type_hint: 'access_token' }));

      const list = await listEvents(t, b.access_token);
      const revoked = list.filter((e) => e.type === 'session_revoked');
      expect(revoked).toHaveLength(1);
      expect(revoked[0]).toMatchObject({ session_id: sid, reason: 'token_revoked' });
      expect(list[0]).toMatchObject({ type: 'session_revoked', session_id: sid });
      await expectSessionAlive(b);
    });

    it('a rotated-out refresh token still revokes its session', async () => {
      const { a, b } = await twoSessions();
      const next = (await refresh(t, a.refresh_token).expect(200)).body as Tokens;
      expectEmpty200(await revoke(t, { token: a.refresh_token }));
      await expectSessionDead(next);
      await expectSessionAlive(b);
    });

    it('garbage, unknown and foreign-key tokens answer 200 and revoke nothing', async () => {
      const { a } = await twoSessions();
      expectEmpty200(await revoke(t, { token: 'garbage' }));
      expectEmpty200(await revoke(t, { token: 'a.b.c', token_type_hint: 'access_token' }));
      // A well-formed JWT signed with another key.
      const [header, payload] = a.refresh_token.split('.');
      expectEmpty200(await revoke(t, { token: `${header}.${payload}.${'A'.repeat(43)}` }));
      await expectSessionAlive(a);
    });

    it("anyone holding a token can revoke it: another user's token ends that user's session", async () => {
      const caller = await register(t);
      const victim = await register(t);
      const res = await revoke(t, { token: victim.refresh_token }).set(bearer(caller.access_token));
      expectEmpty200(res);
      await expectSessionDead(victim);
      await expectSessionAlive(caller);
    });

    it.each([
      ['a missing token', {}],
      ['an empty token', { token: '' }],
      ['a non-string token', { token: 42 }],
    ])('refuses %s with invalid_request (RFC 6749 §5.2)', async (_case, body) => {
      const error = expectError(await revoke(t, body), 400, 'validation_failed');
      expect(error).toMatchObject({ error: 'invalid_request', error_description: error.message });
    });

    it('ignores an unknown hint (RFC 7009 §2.2.1) and revokes the token anyway', async () => {
      const tokens = await register(t);
      expectEmpty200(await revoke(t, { token: tokens.refresh_token, token_type_hint: 'id_token' }));
      await expectSessionDead(tokens);
    });

    it('takes the form encoding RFC 7009 §2.1 requires, and refuses a repeated parameter', async () => {
      const tokens = await register(t);
      const form = (body: string) =>
        t.http().post('/auth/revoke').type('application/x-www-form-urlencoded').send(body);
      const token = encodeURIComponent(tokens.refresh_token);
      const repeated = expectError(
        await form(`token=${token}&token=${token}`),
        400,
        'validation_failed',
      );
      expect(repeated).toMatchObject({
        error: 'invalid_request',
        message: 'token must not be repeated',
      });
      await expectSessionAlive(tokens);
      expectEmpty200(await form(`token=${token}&client_id=anything&unknown=ignored`));
      await expectSessionDead(tokens);
    });
  });
});
