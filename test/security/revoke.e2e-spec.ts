import { expectError } from '../support/errors.js';
import { me, refresh, register, revoke, type Tokens } from '../support/requests.js';
import { type TestApp, useTestApp } from '../support/test-app.js';
import { expiredAccessToken } from '../support/tokens.js';

/**
 * RFC 7009 revocation with an expired access token. §2.1 leaves to the server
 * whether such a token is still taken; this one takes it for
 * REVOKE_ACCESS_TOKEN_GRACE past its expiry and no longer, so an old
 * access token cannot end a live session. Refused tokens still get 200 (§2.2).
 */

const revokeAccess = (t: TestApp, token: string) =>
  revoke(t, { token, token_type_hint: 'access_token' });

/**
 * A live session, with an access token of it that expired `agoSeconds` ago
 * (see support/tokens.ts: minted as of the past rather than waited for).
 */
async function withExpiredAccessToken(t: TestApp, agoSeconds: number): Promise<Tokens> {
  const tokens = await register(t);
  const expired = expiredAccessToken(t, tokens.access_token, agoSeconds);
  expectError(await me(t, expired), 401, 'token_expired');
  return { ...tokens, access_token: expired };
}

describe('POST /auth/revoke with an expired access token (RFC 7009 §2.1, §2.2)', () => {
  describe('with a grace of 1 s', () => {
    const t = useTestApp({ ACCESS_TOKEN_TTL: '1s', REVOKE_ACCESS_TOKEN_GRACE: '1s' });

    it('does not end the session once the token expired longer ago than the grace: 200, and the session refreshes on', async () => {
      const tokens = await withExpiredAccessToken(t, 3);
      const res = await revokeAccess(t, tokens.access_token).expect(200);
      expect(res.text).toBe('');
      await refresh(t, tokens.refresh_token).expect(200);
    });
  });

  describe('with a grace of 0', () => {
    const t = useTestApp({ ACCESS_TOKEN_TTL: '1s', REVOKE_ACCESS_TOKEN_GRACE: '0' });

    it('refuses any expired access token, yet its refresh token still revokes the session', async () => {
      const tokens = await withExpiredAccessToken(t, 1);
      await revokeAccess(t, tokens.access_token).expect(200);
      const rotated = (await refresh(t, tokens.refresh_token).expect(200)).body as Tokens;
      await revoke(t, { token: rotated.refresh_token }).expect(200);
      expectError(await refresh(t, rotated.refresh_token), 401, 'session_revoked');
    });
  });

  describe('with a grace of 10 min', () => {
    const t = useTestApp({ ACCESS_TOKEN_TTL: '1s', REVOKE_ACCESS_TOKEN_GRACE: '10m' });

    it('ends the session of an access token that expired within the grace', async () => {
      const tokens = await withExpiredAccessToken(t, 3);
      await revokeAccess(t, tokens.access_token).expect(200);
      expectError(await refresh(t, tokens.refresh_token), 401, 'session_revoked');
    });
  });
});
