import { generateKeyPairSync, randomUUID, sign as cryptoSign } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT } from 'jose';
import {
  accessTokenHash,
  checkProof,
  DpopProofError,
  normalizeHtu,
  ProofKeyCache,
  type ProofExpectation,
  type ProofFault,
} from './dpop-proof.js';

const HTU = 'https://auth.example.com/auth/refresh';
const NOW = new Date('2026-12-01T12:00:00Z');
const NOW_S = NOW.getTime() / 1000;
const expectation: ProofExpectation = { htm: 'POST', htu: HTU, now: NOW, maxAge: 60, leeway: 5 };

async function keyOf(alg: string, options: Record<string, unknown> = {}) {
  const pair = await generateKeyPair(alg, { extractable: true, ...options });
  return { ...pair, jwk: await exportJWK(pair.publicKey) };
}

type Key = Awaited<ReturnType<typeof keyOf>>;

function sign(
  key: Key,
  alg = 'ES256',
  claims: Record<string, unknown> = {},
  header: Record<string, unknown> = {},
) {
  const payload: Record<string, unknown> = {
    jti: randomUUID(),
    htm: 'POST',
    htu: HTU,
    iat: NOW_S,
    ...claims,
  };
  for (const [name, value] of Object.entries(payload))
    if (value === undefined) delete payload[name];
  return new SignJWT(payload)
    .setProtectedHeader({ typ: 'dpop+jwt', alg, jwk: key.jwk, ...header })
    .sign(key.privateKey);
}

function faultOf(proof: string, expect: Partial<ProofExpectation> = {}): ProofFault {
  try {
    checkProof(proof, { ...expectation, ...expect });
  } catch (error) {
    if (error instanceof DpopProofError) return error.fault;
    throw error;
  }
  throw new Error('the proof was accepted');
}

describe('checkProof (RFC 9449 §4.3)', () => {
  let es256: Key;

  beforeAll(async () => {
    es256 = await keyOf('ES256');
  });

  it('accepts a well-formed proof and names its key by RFC 7638 thumbprint', async () => {
    const checked = checkProof(await sign(es256), expectation);
    expect(checked.jkt).toBe(await calculateJwkThumbprint(es256.jwk));
    expect(checked.iat).toBe(NOW_S);
  });

  it.each(['ES384', 'PS256', 'RS256', 'EdDSA'])(
    'accepts the asymmetric algorithm %s',
    async (alg) => {
      const key = await keyOf(alg, alg === 'EdDSA' ? { crv: 'Ed25519' } : {});
      expect(checkProof(await sign(key, alg), expectation)).toMatchObject({
        jkt: await calculateJwkThumbprint(key.jwk),
      });
    },
  );

  it('compares htu without query or fragment, after URL normalization', async () => {
    const variants = [
      'https://AUTH.example.com/auth/refresh',
      'https://auth.example.com:443/auth/refresh',
      'https://auth.example.com/auth/./refresh?x=1#frag',
    ];
    for (const htu of variants) {
      expect(checkProof(await sign(es256, 'ES256', { htu }), expectation)).toBeTruthy();
    }
    expect(
      faultOf(await sign(es256, 'ES256', { htu: 'http://auth.example.com/auth/refresh' })),
    ).toBe('htu');
    expect(
      faultOf(await sign(es256, 'ES256', { htu: 'https://auth.example.com/auth/refresh/' })),
    ).toBe('htu');
    expect(normalizeHtu('javascript:alert(1)')).toBeNull();
    expect(normalizeHtu('not a url')).toBeNull();
  });

  it('bounds iat by the maximum age and the leeway, inclusively', async () => {
    expect(checkProof(await sign(es256, 'ES256', { iat: NOW_S - 60 }), expectation)).toBeTruthy();
    expect(checkProof(await sign(es256, 'ES256', { iat: NOW_S + 5 }), expectation)).toBeTruthy();
    expect(faultOf(await sign(es256, 'ES256', { iat: NOW_S - 61 }))).toBe('iat');
    expect(faultOf(await sign(es256, 'ES256', { iat: NOW_S + 6 }))).toBe('iat');
    expect(faultOf(await sign(es256, 'ES256', { iat: undefined }))).toBe('claims');
    expect(faultOf(await sign(es256, 'ES256', { iat: 'now' }))).not.toBeUndefined();
  });

  it('checks ath against the access token when there is one, and ignores it otherwise', async () => {
    const token = 'eyJ.access.token';
    const ath = accessTokenHash(token);
    expect(
      checkProof(await sign(es256, 'ES256', { ath }), { ...expectation, accessToken: token }),
    ).toBeTruthy();
    expect(faultOf(await sign(es256), { accessToken: token })).toBe('ath');
    expect(
      faultOf(await sign(es256, 'ES256', { ath: accessTokenHash('other') }), {
        accessToken: token,
      }),
    ).toBe('ath');
    expect(checkProof(await sign(es256, 'ES256', { ath }), expectation)).toBeTruthy();
  });

  it('refuses the method, a missing or oversized jti, and a non-string nonce', async () => {
    expect(faultOf(await sign(es256, 'ES256', { htm: 'post' }))).toBe('htm');
    expect(faultOf(await sign(es256, 'ES256', { jti: undefined }))).toBe('claims');
    expect(faultOf(await sign(es256, 'ES256', { jti: 'x'.repeat(257) }))).toBe('claims');
    expect(faultOf(await sign(es256, 'ES256', { nonce: 42 }))).toBe('claims');
  });

  it('refuses headers that are not a DPoP proof of a public key', async () => {
    const privateJwk = await exportJWK(es256.privateKey);
    expect(faultOf(await sign(es256, 'ES256', {}, { typ: 'JWT' }))).toBe('header');
    expect(faultOf(await sign(es256, 'ES256', {}, { jwk: privateJwk }))).toBe('header');
    expect(faultOf(await sign(es256, 'ES256', {}, { jwk: undefined }))).toBe('header');
    expect(faultOf(await sign(es256, 'ES256', {}, { jwk: [es256.jwk] }))).toBe('header');
    const secret = new TextEncoder().encode('a secret the attacker picked, 32+ bytes');
    // jose's types keep secret members out of a header: this one is the attack.
    const secretJwk = { kty: 'oct', k: 'AA' } as object;
    const hmac = await new SignJWT({ jti: 'j', htm: 'POST', htu: HTU, iat: NOW_S })
      .setProtectedHeader({ typ: 'dpop+jwt', alg: 'HS256', jwk: secretJwk })
      .sign(secret);
    expect(faultOf(hmac)).toBe('header');
    const encode = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
    const none = `${encode({ typ: 'dpop+jwt', alg: 'none', jwk: es256.jwk })}.${encode({ jti: 'j', htm: 'POST', htu: HTU, iat: NOW_S })}.`;
    expect(faultOf(none)).toBe('header');
  });

  it('refuses a signature by another key than the header names, and malformed input', async () => {
    const other = await keyOf('ES256');
    expect(faultOf(await sign(es256, 'ES256', {}, { jwk: other.jwk }))).toBe('signature');
    const proof = await sign(es256);
    const [h, p] = proof.split('.');
    const tampered = `${h}.${Buffer.from(JSON.stringify({ jti: 'j', htm: 'POST', htu: HTU, iat: NOW_S })).toString('base64url')}.${proof.split('.')[2]}`;
    expect(faultOf(tampered)).toBe('signature');
    expect(faultOf(`${h}.${p}`)).toBe('malformed');
    expect(faultOf('%%%.%%%.%%%')).toBe('malformed');
    expect(faultOf(`${proof}${'A'.repeat(9000)}`)).toBe('malformed');
  });

  it('refuses an RSA key shorter than 2048 bits (RFC 7518 §3.3)', () => {
    // jose will not even sign with one: signed here by node:crypto.
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
    const encode = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
    const header = { typ: 'dpop+jwt', alg: 'RS256', jwk: publicKey.export({ format: 'jwk' }) };
    const input = `${encode(header)}.${encode({ jti: 'j', htm: 'POST', htu: HTU, iat: NOW_S })}`;
    const signature = cryptoSign('sha256', Buffer.from(input), privateKey).toString('base64url');
    expect(faultOf(`${input}.${signature}`)).toBe('signature');
  });

  it('refuses a key of another type than its alg, critical headers, and an expired proof', async () => {
    const p384 = await keyOf('ES384');
    expect(faultOf(await sign(es256, 'ES256', {}, { jwk: p384.jwk }))).toBe('header');
    expect(faultOf(await sign(es256, 'ES256', {}, { jwk: { ...es256.jwk, use: 'enc' } }))).toBe(
      'header',
    );
    expect(faultOf(await sign(es256, 'ES256', { exp: NOW_S - 1 }))).toBe('iat');
    expect(checkProof(await sign(es256, 'ES256', { exp: NOW_S + 30 }), expectation)).toBeTruthy();
  });

  it('imports a key once and verifies each proof with it', async () => {
    const keys = new ProofKeyCache(2);
    const first = checkProof(await sign(es256), expectation, keys);
    expect(checkProof(await sign(es256), expectation, keys).jkt).toBe(first.jkt);
    // The same public key in the header, a signature by another: still refused.
    const other = await keyOf('ES256');
    expect(faultOf(await sign(other, 'ES256', {}, { jwk: es256.jwk }), {})).toBe('signature');
  });
});
