import { ACCESS_TOKEN_TYP, keyIdOf, readClaims, REFRESH_TOKEN_TYP } from './token-claims.js';

const payload = {
  sub: '0b6c2c6e-6d0c-4a55-9d77-6ad0c0a0f001',
  sid: '1b6c2c6e-6d0c-4a55-9d77-6ad0c0a0f002',
  jti: '2b6c2c6e-6d0c-4a55-9d77-6ad0c0a0f003',
  iat: 1_700_000_000,
  exp: 1_700_000_900,
  iss: 'http://localhost:8000',
  aud: 'lineage-api',
};
const header = { alg: 'ES256', typ: ACCESS_TOKEN_TYP, kid: 'k1' };

describe('readClaims', () => {
  it('returns the claims of a well-formed token of the expected type', () => {
    expect(readClaims({ header, payload }, ACCESS_TOKEN_TYP)).toEqual(payload);
  });

  it('refuses a token of the other type (no access/refresh confusion)', () => {
    expect(readClaims({ header, payload }, REFRESH_TOKEN_TYP)).toBeUndefined();
    expect(
      readClaims({ header: { alg: 'ES256', typ: 'JWT' }, payload }, ACCESS_TOKEN_TYP),
    ).toBeUndefined();
    expect(readClaims({ header: { alg: 'ES256' }, payload }, ACCESS_TOKEN_TYP)).toBeUndefined();
  });

  it('accepts only ES256 for access tokens and only HS256 for refresh tokens', () => {
    for (const alg of ['none', 'HS256', 'HS512', 'RS256', 'ES384', 'EdDSA', undefined]) {
      expect(readClaims({ header: { ...header, alg }, payload }, ACCESS_TOKEN_TYP)).toBeUndefined();
    }
    const refreshHeader = { typ: REFRESH_TOKEN_TYP };
    expect(
      readClaims({ header: { ...refreshHeader, alg: 'HS256' }, payload }, REFRESH_TOKEN_TYP),
    ).toEqual(payload);
    for (const alg of ['none', 'ES256', 'HS512', undefined]) {
      expect(
        readClaims({ header: { ...refreshHeader, alg }, payload }, REFRESH_TOKEN_TYP),
      ).toBeUndefined();
    }
  });

  it.each(['sub', 'sid', 'jti'])('refuses a missing or malformed %s', (claim) => {
    for (const value of [undefined, '', 'admin', 42, { $ne: null }]) {
      const bad = { ...payload, [claim]: value };
      expect(readClaims({ header, payload: bad }, ACCESS_TOKEN_TYP)).toBeUndefined();
    }
  });

  it('refuses non-integer times and non-object payloads', () => {
    expect(
      readClaims({ header, payload: { ...payload, exp: '1700000900' } }, ACCESS_TOKEN_TYP),
    ).toBeUndefined();
    expect(
      readClaims({ header, payload: { ...payload, iat: 1.5 } }, ACCESS_TOKEN_TYP),
    ).toBeUndefined();
    expect(readClaims({ header, payload: 'string' }, ACCESS_TOKEN_TYP)).toBeUndefined();
    expect(readClaims({ header, payload: null }, ACCESS_TOKEN_TYP)).toBeUndefined();
  });
});

describe('keyIdOf', () => {
  const token = (headerValue: unknown) =>
    `${Buffer.from(JSON.stringify(headerValue)).toString('base64url')}.e30.sig`;

  it('reads the kid of the header', () => {
    expect(keyIdOf(token({ alg: 'ES256', kid: 'abc' }))).toBe('abc');
  });

  it('yields nothing for a missing, empty, oversized or non-string kid, or a malformed header', () => {
    for (const kid of [undefined, '', 'k'.repeat(129), 42, null, ['a'], { a: 1 }]) {
      expect(keyIdOf(token({ alg: 'ES256', kid }))).toBeUndefined();
    }
    for (const bad of ['', '.e30.sig', 'not-base64!.e30.sig', 'bnVsbA.e30.sig', 'W10.e30.sig']) {
      expect(keyIdOf(bad)).toBeUndefined();
    }
  });
});
