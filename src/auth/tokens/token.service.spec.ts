import { generateKeyPairSync } from 'node:crypto';
import type { ConfigService } from '@nestjs/config';
import jsonwebtoken from 'jsonwebtoken';
import { type AppConfig } from '../../config/configuration.js';
import { buildConfig } from '../../config/environment.js';
import type { SigningKeys } from '../signing-keys/signing-keys.service.js';
import { generationJti, newTokenSalt, TokenService, UNBOUND } from './token.service.js';

// One ES256 key standing in for the key set (its own tests are signing-keys.service.spec.ts).
const KID = 'unit-test-key';
const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const keySet = {
  signer: () => ({ kid: KID, privateKey }),
  resolveVerificationKey: (kid: string) => Promise.resolve(kid === KID ? publicKey : undefined),
} as unknown as SigningKeys;

function service(): TokenService {
  const config = buildConfig({
    DATABASE_URL: 'postgres://u@localhost/db',
    SIGNING_KEYS_SECRET: 'signing-keys-secret-for-unit-tests-0123',
    JWT_REFRESH_SECRET: 'refresh-secret-for-unit-tests-012345678',
    ACCESS_TOKEN_TTL: '15m',
    REFRESH_TOKEN_TTL: '7d',
  });
  const configService = { get: (key: keyof AppConfig) => config[key] } as unknown as ConfigService<
    AppConfig,
    true
  >;
  return new TokenService(configService, keySet);
}

const USER = '0b6c2c6e-6d0c-4a55-9d77-6ad0c0a0f001';
const SESSION = '1b6c2c6e-6d0c-4a55-9d77-6ad0c0a0f002';
const now = new Date('2026-03-01T10:00:00.750Z');

describe('TokenService', () => {
  it('signs access tokens with typ at+jwt, ES256, the key id and the session claims', () => {
    const { token, claims } = service().signAccessToken(
      USER,
      SESSION,
      now,
      new Date(now.getTime() + 86400_000),
    );
    const decoded = jsonwebtoken.decode(token, { complete: true });
    expect(decoded?.header).toEqual({ alg: 'ES256', typ: 'at+jwt', kid: KID });
    expect(decoded?.payload).toEqual(claims);
    expect(
      jsonwebtoken.verify(token, publicKey, { algorithms: ['ES256'], ignoreExpiration: true }),
    ).toEqual(claims);
    expect(claims).toMatchObject({
      sub: USER,
      sid: SESSION,
      iss: 'http://localhost:8000',
      aud: 'lineage-api',
    });
    expect(claims.exp - claims.iat).toBe(900);
    expect(claims.iat).toBe(Math.floor(now.getTime() / 1000));
  });

  it('signs the identical refresh token from the same generation (the re-issue)', () => {
    const tokens = service();
    const salt = newTokenSalt();
    const spec = {
      userId: USER,
      sessionId: SESSION,
      generation: 3,
      jti: generationJti(salt, 3),
      ...tokens.refreshLifetime(now, tokens.absoluteExpiry(now)),
      binding: UNBOUND,
    };
    const first = tokens.signRefreshToken(spec);
    const again = {
      ...spec,
      issuedAt: new Date(spec.issuedAt),
      expiresAt: new Date(spec.expiresAt),
    };
    expect(service().signRefreshToken(again)).toBe(first);
    expect(tokens.verifyRefreshTokenIgnoringExpiry(first)).toMatchObject({ gen: 3, jti: spec.jti });
  });

  it('names the OAuth client in both tokens when the session has one, and only then', () => {
    const tokens = service();
    const salt = newTokenSalt();
    const spec = {
      userId: USER,
      sessionId: SESSION,
      generation: 0,
      jti: generationJti(salt, 0),
      ...tokens.refreshLifetime(now),
    };
    const withClient = tokens.signRefreshToken({ ...spec, binding: { clientId: 'web-app', keyThumbprint: null } });
    const without = tokens.signRefreshToken({ ...spec, binding: UNBOUND });
    expect(tokens.verifyRefreshTokenIgnoringExpiry(withClient)?.client_id).toBe('web-app');
    expect(tokens.verifyRefreshTokenIgnoringExpiry(without)).not.toHaveProperty('client_id');
    const response = tokens.response(USER, SESSION, withClient, spec.expiresAt, now, {
      clientId: 'web-app',
      keyThumbprint: null,
    });
    expect(jsonwebtoken.decode(response.access_token)).toMatchObject({ client_id: 'web-app' });
    expect(
      jsonwebtoken.decode(
        tokens.response(USER, SESSION, without, spec.expiresAt, now).access_token,
      ),
    ).not.toHaveProperty('client_id');
  });

  it('derives each generation its own jti from the salt, and no two salts agree', () => {
    const salt = newTokenSalt();
    expect(generationJti(salt, 0)).not.toBe(generationJti(salt, 1));
    expect(generationJti(salt, 1)).not.toBe(generationJti(newTokenSalt(), 1));
    expect(generationJti(salt, 1)).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it('keeps refresh times on whole seconds so the session row reproduces the JWT', () => {
    const tokens = service();
    const lifetime = tokens.refreshLifetime(now, tokens.absoluteExpiry(now));
    expect(lifetime.issuedAt.getTime() % 1000).toBe(0);
    expect(lifetime.expiresAt.getTime() - lifetime.issuedAt.getTime()).toBe(7 * 86400 * 1000);
  });

  it('never lets an access token outlive its session', () => {
    const end = new Date(now.getTime() + 60_000);
    const { claims } = service().signAccessToken(USER, SESSION, now, end);
    expect(claims.exp).toBe(Math.floor(end.getTime() / 1000));
    expect(claims.exp - claims.iat).toBeLessThan(900);
  });

  it('never lets a refresh token outlive the session (SESSION_MAX_AGE)', () => {
    const tokens = service();
    const sessionStart = new Date('2026-02-01T10:00:00Z');
    const end = tokens.absoluteExpiry(sessionStart);
    expect(end.getTime() - sessionStart.getTime()).toBe(30 * 86400 * 1000);
    // Three days before the end, a 7-day token is cut to the session's end.
    const late = new Date(end.getTime() - 3 * 86400 * 1000);
    expect(tokens.refreshLifetime(late, end).expiresAt).toEqual(end);
    // Early on, the sliding 7 days apply.
    const early = tokens.refreshLifetime(sessionStart, end);
    expect(early.expiresAt.getTime() - sessionStart.getTime()).toBe(7 * 86400 * 1000);
  });

  it('keeps the types apart: neither token verifies as the other', async () => {
    const tokens = service();
    const refresh = tokens.signRefreshToken({
      userId: USER,
      sessionId: SESSION,
      generation: 0,
      jti: generationJti(newTokenSalt(), 0),
      ...tokens.refreshLifetime(new Date(), tokens.absoluteExpiry(new Date())),
      binding: UNBOUND,
    });
    expect(jsonwebtoken.decode(refresh, { complete: true })?.header).toEqual({
      alg: 'HS256',
      typ: 'rt+jwt',
    });
    expect(await tokens.verifyAccessTokenForRevocation(refresh)).toBeUndefined();
    expect(tokens.verifyRefreshTokenIgnoringExpiry(refresh)).toMatchObject({
      sub: USER,
      sid: SESSION,
    });
    const access = tokens.signAccessToken(
      USER,
      SESSION,
      new Date(),
      new Date(Date.now() + 86400_000),
    ).token;
    expect(tokens.verifyRefreshTokenIgnoringExpiry(access)).toBeUndefined();
    expect(await tokens.verifyAccessTokenForRevocation(access)).toMatchObject({ sub: USER });
  });

  it('takes an access token for revocation up to the grace past its expiry, not later (RFC 7009 §2.1)', async () => {
    const tokens = service();
    const issuedAgo = (seconds: number) =>
      tokens.signAccessToken(
        USER,
        SESSION,
        new Date(Date.now() - seconds * 1000),
        new Date(Date.now() + 86400_000),
      ).token;
    // 15 min lifetime, 5 min grace by default.
    expect(await tokens.verifyAccessTokenForRevocation(issuedAgo(60))).toMatchObject({ sub: USER });
    expect(await tokens.verifyAccessTokenForRevocation(issuedAgo(15 * 60 + 60))).toMatchObject({
      sub: USER,
    });
    expect(
      await tokens.verifyAccessTokenForRevocation(issuedAgo(15 * 60 + 6 * 60)),
    ).toBeUndefined();
    expect(await tokens.verifyAccessTokenForRevocation(issuedAgo(2 * 3600))).toBeUndefined();
  });
});
