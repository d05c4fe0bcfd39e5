import { randomUUID } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { SigningKeys } from '../../src/auth/signing-keys/signing-keys.service.js';
import { claimsOf } from './requests.js';
import { TEST_SECRETS } from './secrets.js';
import type { TestApp } from './test-app.js';

/**
 * An access token of the same session and user as `accessToken`, as the app
 * would have issued it `agoSeconds` plus its lifetime ago: signed with the
 * app's current key, so it differs from a real one only in its times, and
 * expired `agoSeconds` ago by the real clock. For what judges access-token
 * expiry by the real clock (jsonwebtoken, the remembered verified tokens),
 * which a test cannot move; instead of waiting for a token to expire.
 */
export function expiredAccessToken(t: TestApp, accessToken: string, agoSeconds = 2): string {
  const claims = claimsOf(accessToken) as { iat: number; exp: number };
  const lifetime = claims.exp - claims.iat;
  const exp = Math.floor(Date.now() / 1000) - agoSeconds;
  const signer = t.app.get(SigningKeys).signer();
  if (!signer) throw new Error('the app has no signing key');
  return jwt.sign({ ...claims, jti: randomUUID(), iat: exp - lifetime, exp }, signer.privateKey, {
    algorithm: 'ES256',
    header: { alg: 'ES256', typ: 'at+jwt', kid: signer.kid },
  });
}

/**
 * `refreshToken` as it is once expired `agoSeconds` ago: the same claims (and
 * so the same session and generation) with its times moved back, signed with
 * the refresh key the e2e apps share, as the app signs it (HS256, typ
 * rt+jwt). Stands in for waiting out its lifetime, which the real clock
 * judges (passport-jwt).
 */
export function expiredRefreshToken(refreshToken: string, agoSeconds = 2): string {
  const claims = claimsOf(refreshToken) as { iat: number; exp: number };
  const lifetime = claims.exp - claims.iat;
  const exp = Math.floor(Date.now() / 1000) - agoSeconds;
  return jwt.sign({ ...claims, iat: exp - lifetime, exp }, TEST_SECRETS.JWT_REFRESH_SECRET, {
    algorithm: 'HS256',
    header: { alg: 'HS256', typ: 'rt+jwt' },
  });
}
