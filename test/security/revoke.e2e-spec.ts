import { setTimeout as sleep } from 'node:timers/promises';
import {
  bearer,
  claimsOf,
  expectError,
  register,
  startTestApp,
  type TestApp,
  type Tokens,
} from '../support/test-app.js';

/**
 * RFC 7009 revocation with an expired access token. §2.1 leaves to the server
 * whether such a token is still taken; this one takes it for
 * REVOKE_ACCESS_TOKEN_GRACE past its expiry and no longer, so an old
 * access token cannot end a live session. Refused tokens still get 200 (§2.2).
 */

/** Sleeps until the wall clock passes `epochSeconds` (JWT times) by `marginMs`. */
async function sleepUntil(epochSeconds: number, marginMs = 1100) {
  const wait = epochSeconds * 1000 + marginMs - Date.now();
  if (wait > 0) await sleep(wait);
}

async function withApp(env: Record<string, string>, fn: (t: TestApp) => Promise<void>) {
  const t = await startTestApp(env);
  try {
    await fn(t);
  } finally {
    await t.close();
  }
}

const revoke = (t: TestApp, token: string) =>
  t.http().post('/auth/revoke').send({ token, token_type_hint: 'access_token' });
const refresh = (t: TestApp, refreshToken: string) =>
  t.http().post('/auth/refresh').send({ refresh_token: refreshToken });

async function expiredAccessToken(t: TestApp): Promise<Tokens> {
  const tokens = await register(t);
  await sleepUntil(claimsOf(tokens.access_token).exp as number);
  expectError(
    await t.http().get('/users/me').set(bearer(tokens.access_token)),
    401,
    'token_expired',
  );
  return tokens;
}

describe('POST /auth/revoke with an expired access token (RFC 7009 §2.1, §2.2)', () => {
  it('does not end the session once the token expired longer ago than the grace: 200, and the session refreshes on', async () => {
    await withApp({ ACCESS_TOKEN_TTL: '1s', REVOKE_ACCESS_TOKEN_GRACE: '1s' }, async (t) => {
      const tokens = await register(t);
      await sleepUntil((claimsOf(tokens.access_token).exp as number) + 1);
      const res = await revoke(t, tokens.access_token).expect(200);
      expect(res.text).toBe('');
      await refresh(t, tokens.refresh_token).expect(200);
    });
  });

  it('with a grace of 0, refuses any expired access token, yet its refresh token still revokes the session', async () => {
    await withApp({ ACCESS_TOKEN_TTL: '1s', REVOKE_ACCESS_TOKEN_GRACE: '0' }, async (t) => {
      const tokens = await expiredAccessToken(t);
      await revoke(t, tokens.access_token).expect(200);
      const rotated = (await refresh(t, tokens.refresh_token).expect(200)).body as Tokens;
      await t.http().post('/auth/revoke').send({ token: rotated.refresh_token }).expect(200);
      expectError(await refresh(t, rotated.refresh_token), 401, 'session_revoked');
    });
  });

  it('ends the session of an access token that expired within the grace', async () => {
    await withApp({ ACCESS_TOKEN_TTL: '1s', REVOKE_ACCESS_TOKEN_GRACE: '10m' }, async (t) => {
      const tokens = await expiredAccessToken(t);
      await revoke(t, tokens.access_token).expect(200);
      expectError(await refresh(t, tokens.refresh_token), 401, 'session_revoked');
    });
  });
});
