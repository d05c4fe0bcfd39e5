import { ACCESS_TOKEN_TYP, readClaims, REFRESH_TOKEN_TYP } from './token-claims.js';

const payload = {
  sub: '0b6c2c6e-6d0c-4a55-9d77-6ad0c0a0f001',
  sid: '1b6c2c6e-6d0c-4a55-9d77-6ad0c0a0f002',
  jti: '2b6c2c6e-6d0c-4a55-9d77-6ad0c0a0f003',
  iat: 1_700_000_000,
  exp: 1_700_000_900,
  iss: 'lineage',
  aud: 'lineage-api',
};
const header = { alg: 'HS256', typ: ACCESS_TOKEN_TYP };

describe('readClaims', () => {
  it('returns the claims of a well-formed token of the expected type', () => {
    expect(readClaims({ header, payload }, ACCESS_TOKEN_TYP)).toEqual(payload);
  });

  it('refuses a token of the other type (no access/refresh confusion)', () => {
    expect(readClaims({ header, payload }, REFRESH_TOKEN_TYP)).toBeUndefined();
    expect(
      readClaims({ header: { alg: 'HS256', typ: 'JWT' }, payload }, ACCESS_TOKEN_TYP),
    ).toBeUndefined();
    expect(readClaims({ header: { alg: 'HS256' }, payload }, ACCESS_TOKEN_TYP)).toBeUndefined();
  });

  it('refuses any algorithm but HS256', () => {
    for (const alg of ['none', 'HS512', 'RS256', undefined]) {
      expect(readClaims({ header: { ...header, alg }, payload }, ACCESS_TOKEN_TYP)).toBeUndefined();
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
