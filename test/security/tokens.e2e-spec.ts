import {
  createHash,
  createHmac,
  createPublicKey,
  createSecretKey,
  generateKeyPairSync,
  type JsonWebKey,
  type KeyObject,
  randomBytes,
  randomUUID,
  sign,
  verify,
} from 'node:crypto';
import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import jwt from 'jsonwebtoken';
import { SigningKeys } from '../../src/auth/signing-keys/signing-keys.service.js';
import { TEST_SECRETS } from '../support/secrets.js';
import {
  bearer,
  claimsOf,
  login,
  logout,
  me,
  PASSWORD,
  refresh,
  register,
  todos,
  type Tokens,
} from '../support/requests.js';
import { expectError } from '../support/errors.js';
import { type TestApp, useTestApp } from '../support/test-app.js';

/**
 * Attacks on the bearer tokens, through HTTP only: forged, altered, mistyped
 * and misplaced tokens. Each test names the requirement it checks.
 *
 * Forged tokens are built by hand (base64url header and payload, then a
 * signature over them) so the header says exactly what the attack needs;
 * jsonwebtoken would rewrite `alg` to match the key it is given. Access
 * tokens are ES256 (RFC 7518 §3.4: the signature is the raw r‖s, not DER)
 * under the app's current signing key, taken from the app itself; refresh
 * tokens are HS256 under the harness's refresh secret.
 *
 * The e2e database, and its signing keys, are shared with the other suites
 * running in parallel: this file only ever reads the keys.
 */

// The harness's refresh secret (test/support/secrets.ts): an attacker who had
// it could mint refresh tokens, so it only serves to change one thing at a time.
const REFRESH_KEY = TEST_SECRETS.JWT_REFRESH_SECRET;

type Json = Record<string, unknown>;

const b64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

type Hash = 'sha256' | 'sha384' | 'sha512';
/** Signs a JWS signing input (`header.payload`); an empty result leaves the token unsigned. */
type Signer = (input: string) => Buffer;

/** A compact JWS with exactly this header and payload, signed by `signer`. */
function forge(header: Json, payload: Json, signer: Signer): string {
  const input = `${b64url(header)}.${b64url(payload)}`;
  return `${input}.${signer(input).toString('base64url')}`;
}

/** No signature at all (alg none, or a stripped signature). */
const unsigned: Signer = () => Buffer.alloc(0);
/** HMAC under `key`: a secret, or (the confusion attack) public key material. */
const hmac =
  (key: string | Buffer, hash: Hash = 'sha256'): Signer =>
  (input) =>
    createHmac(hash, key).update(input).digest();
/** ECDSA with `key`; JWS wants raw r‖s (ieee-p1363), `der` is the wrong encoding. */
const ecdsa =
  (
    key: KeyObject,
    hash: Hash = 'sha256',
    dsaEncoding: 'ieee-p1363' | 'der' = 'ieee-p1363',
  ): Signer =>
  (input) =>
    sign(hash, Buffer.from(input), { key, dsaEncoding });
/** RSA, PKCS#1 v1.5 (RS256) or PSS (PS256). */
const rsa =
  (key: KeyObject, pss = false): Signer =>
  (input) =>
    sign('sha256', Buffer.from(input), pss ? { key, padding: 6 /* RSA_PKCS1_PSS_PADDING */ } : key);
/** A fixed signature, whatever the input. */
const fixed =
  (signature: Buffer): Signer =>
  () =>
    signature;

/** The signature bytes of a compact JWS. */
const signatureOf = (token: string) => Buffer.from(token.split('.')[2], 'base64url');
/** The JWS signing input (`header.payload`) of a compact JWS. */
const inputOf = (token: string) => token.slice(0, token.lastIndexOf('.'));

/** RFC 7638 thumbprint of an EC public key: how the app names its keys (`kid`). */
function thumbprint(key: KeyObject): string {
  const { crv, kty, x, y } = key.export({ format: 'jwk' });
  return createHash('sha256').update(JSON.stringify({ crv, kty, x, y })).digest('base64url');
}

// Keys that are not ours: what an attacker can generate at will.
const attacker = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const attackerJwk = attacker.publicKey.export({ format: 'jwk' });
const attackerKid = thumbprint(attacker.publicKey);
const attackerP384 = generateKeyPairSync('ec', { namedCurve: 'P-384' });
const attackerP521 = generateKeyPairSync('ec', { namedCurve: 'P-521' });
const attackerRsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const attackerEd25519 = generateKeyPairSync('ed25519');
// The order n of P-256 (SEC 2 §2.4.2): r and s must lie in [1, n-1].
const P256_ORDER = Buffer.from(
  'ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551',
  'hex',
);

const nowSeconds = () => Math.floor(Date.now() / 1000);

describe('security: bearer and refresh tokens (e2e)', () => {
  const t = useTestApp();
  let keys: SigningKeys;
  /** The victim: a live account and session whose claims the forgeries start from. */
  let victim: Tokens & { username: string };
  let victimClaims: Json;

  beforeAll(async () => {
    keys = t.app.get(SigningKeys);
    victim = await register(t);
    victimClaims = claimsOf(victim.access_token);
  });

  /** The app's current signing key, read at each use (never rotated here). */
  const ours = () => {
    const signer = keys.signer();
    if (!signer) throw new Error('the app has no signing key');
    return { ...signer, publicKey: createPublicKey(signer.privateKey) };
  };
  /** Signs with our current key, as the app does. */
  const ourKey = (): Signer => ecdsa(ours().privateKey);
  /** The app's access token header (alg, typ, our kid), with `changes` applied. */
  const accessHeader = (changes: Json = {}): Json => ({
    alg: 'ES256',
    typ: 'at+jwt',
    kid: ours().kid,
    ...changes,
  });
  /** An access token as the app would sign it: right header, right key. */
  const forgeAccess = (claims: Json, header: Json = accessHeader()) =>
    forge(header, claims, ourKey());
  /** Valid access claims for the victim's live session, fresh, with `changes` applied. */
  const accessClaims = (changes: Json = {}): Json => {
    const iat = nowSeconds();
    return { ...victimClaims, jti: randomUUID(), iat, exp: iat + 300, ...changes };
  };
  const without = (claims: Json, name: string): Json => {
    const copy = { ...claims };
    delete copy[name];
    return copy;
  };
  /**
   * Our public key as an attacker holds it (from the JWKS), in each form a
   * confused verifier might use as an HMAC secret.
   */
  const publicKeyMaterials = (): [string, string | Buffer][] => {
    const { kid, publicKey } = ours();
    const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const published = keys.publishedKeys().keys.find((key) => key.kid === kid);
    expect(published).toBeDefined();
    return [
      ['the SPKI PEM', pem],
      ['the SPKI PEM, trimmed', pem.trim()],
      ['the JWK JSON', JSON.stringify(publicKey.export({ format: 'jwk' }))],
      ['the published JWK JSON', JSON.stringify(published)],
      ['the SPKI DER bytes', publicKey.export({ type: 'spki', format: 'der' })],
    ];
  };

  it('control: a token signed with our ES256 key, with the right header and claims, is accepted, so each refusal below is about the one thing changed', async () => {
    const res = await me(t, forgeAccess(accessClaims())).expect(200);
    expect((res.body as { id: string }).id).toBe(victimClaims.sub);
    // The server's own token has exactly the header the forgeries start from,
    // and the claims (issuer, audience) they copy.
    const header = JSON.parse(
      Buffer.from(victim.access_token.split('.')[0], 'base64url').toString(),
    ) as Json;
    expect(header).toEqual(accessHeader());
    expect(victimClaims).toMatchObject({ iss: 'http://localhost:8000', aud: 'lineage-api' });
    // And its signature verifies under the key the forgeries sign with.
    expect(
      verify(
        'sha256',
        Buffer.from(inputOf(victim.access_token)),
        { key: ours().publicKey, dsaEncoding: 'ieee-p1363' },
        signatureOf(victim.access_token),
      ),
    ).toBe(true);
  });

  it('control: the forging key is the one GET /.well-known/jwks.json publishes, named by its RFC 7638 thumbprint, and no private part is published (RFC 7517 §5; RFC 7638)', async () => {
    const res = await t.http().get('/.well-known/jwks.json').expect(200);
    const { kid, publicKey } = ours();
    expect(kid).toBe(thumbprint(publicKey));
    const { keys: published } = res.body as { keys: Json[] };
    const jwk = published.find((key) => key.kid === kid);
    expect(jwk).toMatchObject({ ...publicKey.export({ format: 'jwk' }), alg: 'ES256', use: 'sig' });
    for (const key of published) {
      expect(Object.keys(key).sort()).toEqual(['alg', 'crv', 'kid', 'kty', 'use', 'x', 'y']);
    }
  });

  describe('signature and algorithm', () => {
    it('refuses alg "none" with no signature, carrying our kid (RFC 8725 §2.1, §3.1; ASVS 3.5.3)', async () => {
      const token = forge(accessHeader({ alg: 'none' }), accessClaims(), unsigned);
      expectError(await me(t, token), 401, 'token_invalid');
    });

    it.each(['NONE', 'None', 'nOnE'])(
      'refuses alg "%s", unsigned or signed (RFC 8725 §3.1; ASVS 3.5.3)',
      async (alg) => {
        const header = accessHeader({ alg });
        expectError(await me(t, forge(header, accessClaims(), unsigned)), 401, 'token_invalid');
        expectError(await me(t, forge(header, accessClaims(), ourKey())), 401, 'token_invalid');
      },
    );

    it('refuses a token with alg ES256 and the signature stripped (RFC 7515 §5.2; ASVS 3.5.3)', async () => {
      const token = forge(accessHeader(), accessClaims(), unsigned);
      expect(token.endsWith('.')).toBe(true);
      expectError(await me(t, token), 401, 'token_invalid');
    });

    it.each([
      ['HS256', 'sha256'],
      ['HS384', 'sha384'],
      ['HS512', 'sha512'],
    ] as const)(
      'refuses %s keyed with our public key (PEM, JWK JSON, DER), carrying our kid: no algorithm confusion (RFC 8725 §2.1, §3.1; ASVS 3.5.3)',
      async (alg, hash) => {
        for (const [, material] of publicKeyMaterials()) {
          const token = forge(accessHeader({ alg }), accessClaims(), hmac(material, hash));
          // A verifier that took the algorithm from the token and our key
          // material as its secret would accept it: only the pin refuses it.
          expect(() =>
            jwt.verify(token, createSecretKey(Buffer.from(material)), { algorithms: [alg] }),
          ).not.toThrow();
          expectError(await me(t, token), 401, 'token_invalid');
        }
      },
    );

    it('refuses RS256, PS256, ES384, ES512 and EdDSA tokens carrying our kid, whatever signs them: the algorithm is pinned (RFC 8725 §3.1; ASVS 3.5.3)', async () => {
      const { privateKey, publicKey } = ours();
      // Signed with our own key, under the hash the header names: our public
      // key verifies each of these, so only the pin on ES256 refuses them.
      for (const [alg, hash] of [
        ['RS256', 'sha256'],
        ['PS256', 'sha256'],
        ['ES384', 'sha384'],
        ['ES512', 'sha512'],
      ] as const) {
        const token = forge(accessHeader({ alg }), accessClaims(), ecdsa(privateKey, hash));
        const key = { key: publicKey, dsaEncoding: 'ieee-p1363' } as const;
        expect(verify(hash, Buffer.from(inputOf(token)), key, signatureOf(token))).toBe(true);
        expectError(await me(t, token), 401, 'token_invalid');
      }
      // Signed with an attacker's key of the kind the header names.
      for (const [alg, signer] of [
        ['RS256', rsa(attackerRsa.privateKey)],
        ['PS256', rsa(attackerRsa.privateKey, true)],
        ['ES384', ecdsa(attackerP384.privateKey, 'sha384')],
        ['ES512', ecdsa(attackerP521.privateKey, 'sha512')],
        ['EdDSA', (input: string) => sign(null, Buffer.from(input), attackerEd25519.privateKey)],
      ] as const) {
        expectError(
          await me(t, forge(accessHeader({ alg }), accessClaims(), signer)),
          401,
          'token_invalid',
        );
      }
    });

    it('refuses ES256 signed by a key that is not ours, carrying our kid (RFC 7515 §5.2; ASVS 3.5.3)', async () => {
      const token = forge(accessHeader(), accessClaims(), ecdsa(attacker.privateKey));
      // A sound signature, just not ours: it verifies under the attacker's key.
      expect(() => jwt.verify(token, attacker.publicKey, { algorithms: ['ES256'] })).not.toThrow();
      expectError(await me(t, token), 401, 'token_invalid');
    });

    it('refuses an ES256 signature with one byte changed, in r or in s (RFC 7515 §5.2; ASVS 3.5.3)', async () => {
      const genuine = forgeAccess(accessClaims());
      const signature = signatureOf(genuine);
      expect(signature).toHaveLength(64);
      for (const index of [0, 16, 31, 32, 48, 63]) {
        const altered = Buffer.from(signature);
        altered[index] ^= 0x01;
        expectError(
          await me(t, `${inputOf(genuine)}.${altered.toString('base64url')}`),
          401,
          'token_invalid',
        );
      }
      // The control: unaltered, the same token is accepted.
      await me(t, genuine).expect(200);
    });

    it('refuses out-of-range ES256 signatures: r = s = 0 (CVE-2022-21449) and r = s = n (RFC 7518 §3.4; SEC 1 §4.1.4)', async () => {
      for (const scalar of [Buffer.alloc(32), P256_ORDER]) {
        const token = forge(accessHeader(), accessClaims(), fixed(Buffer.concat([scalar, scalar])));
        expectError(await me(t, token), 401, 'token_invalid');
      }
    });

    it('refuses ES256 signatures of the wrong encoding or length as token_invalid: DER instead of raw r‖s, truncated, extended, an HMAC (RFC 7518 §3.4; RFC 6750 §3.1)', async () => {
      const { privateKey } = ours();
      const claims = accessClaims();
      const raw = signatureOf(forge(accessHeader(), claims, ecdsa(privateKey)));
      for (const signer of [
        // A correct signature by our key over this exact input, DER-encoded.
        ecdsa(privateKey, 'sha256', 'der'),
        fixed(raw.subarray(0, 63)),
        fixed(raw.subarray(0, 32)),
        fixed(Buffer.concat([raw, Buffer.from([0])])),
        fixed(Buffer.concat([raw, raw])),
        hmac(ours().publicKey.export({ type: 'spki', format: 'pem' })),
        hmac(REFRESH_KEY),
      ]) {
        expectError(await me(t, forge(accessHeader(), claims, signer)), 401, 'token_invalid');
      }
      // A genuine token with one base64url character appended (65 bytes).
      const token = forgeAccess(accessClaims());
      await me(t, token).expect(200);
      expectError(await me(t, `${token}x`), 401, 'token_invalid');
    });

    it("refuses a genuine token whose payload was changed to another user's id, signature kept (RFC 7515 §5.2; ASVS 3.5.3; API1:2023)", async () => {
      const other = await register(t);
      // The genuine token is accepted first, so the guard remembers it as
      // verified: an altered copy must not ride on that.
      await me(t, victim.access_token).expect(200);
      const [header, , signature] = victim.access_token.split('.');
      const payload = b64url({ ...victimClaims, sub: claimsOf(other.access_token).sub });
      expectError(await me(t, `${header}.${payload}.${signature}`), 401, 'token_invalid');
      // Pushing the expiry out the same way fails alike.
      const later = b64url({ ...victimClaims, exp: (victimClaims.exp as number) + 86_400 });
      expectError(await me(t, `${header}.${later}.${signature}`), 401, 'token_invalid');
    });

    it('refuses a genuine, already accepted token whose signature was changed (RFC 7515 §5.2; ASVS 3.5.3)', async () => {
      await me(t, victim.access_token).expect(200);
      const [header, payload, signature] = victim.access_token.split('.');
      // The first character (top bits of r) and one in the middle (in s); not
      // the last, whose low bits are base64url padding that decodes to nothing.
      for (const index of [0, 60]) {
        const flipped = `${signature.slice(0, index)}${signature[index] === 'A' ? 'B' : 'A'}${signature.slice(index + 1)}`;
        expectError(await me(t, `${header}.${payload}.${flipped}`), 401, 'token_invalid');
      }
      await me(t, victim.access_token).expect(200);
    });

    it('refuses a genuine token whose header was changed, signature kept (RFC 7515 §5.2; ASVS 3.5.3)', async () => {
      await me(t, victim.access_token).expect(200);
      const [rawHeader, payload, signature] = victim.access_token.split('.');
      const { kid } = JSON.parse(Buffer.from(rawHeader, 'base64url').toString()) as Json;
      for (const header of [
        { alg: 'ES256', typ: 'at+jwt', kid: 'other' },
        { alg: 'ES256', typ: 'JWT', kid },
        { typ: 'at+jwt', alg: 'ES256', kid },
        { kid, alg: 'ES256', typ: 'at+jwt' },
        { alg: 'ES256', typ: 'at+jwt', kid, cty: 'JWT' },
      ]) {
        expectError(await me(t, `${b64url(header)}.${payload}.${signature}`), 401, 'token_invalid');
      }
    });

    it('refuses structurally broken tokens without a 500 (RFC 7519 §7.2)', async () => {
      const [h, p, s] = victim.access_token.split('.');
      for (const token of [
        'a',
        'a.b',
        'a.b.c',
        `${h}.${p}`,
        `${h}.${p}.${s}.${s}`,
        `${h}..${s}`,
        `.${p}.${s}`,
        `${Buffer.from('not json').toString('base64url')}.${p}.${s}`,
        `${h}.${Buffer.from('[1,2,3]').toString('base64url')}.${s}`,
        `${h}.${Buffer.from('null').toString('base64url')}.${s}`,
      ]) {
        expectError(await me(t, token), 401, 'token_invalid');
      }
    });
  });

  describe('key selection: the kid only ever picks one of our keys (RFC 8725 §3.10; RFC 7515 §4.1.4)', () => {
    it('refuses a token without a kid, or with an empty one, even signed with our key', async () => {
      for (const header of [{ alg: 'ES256', typ: 'at+jwt' }, accessHeader({ kid: '' })]) {
        expectError(await me(t, forge(header, accessClaims(), ourKey())), 401, 'token_invalid');
      }
    });

    it('refuses an unknown kid even signed with our key: an unknown kid never falls back to the current key', async () => {
      const { kid } = ours();
      const flipped = `${kid.slice(0, -1)}${kid.endsWith('A') ? 'B' : 'A'}`;
      for (const other of [
        flipped,
        kid.toUpperCase() === kid ? kid.toLowerCase() : kid.toUpperCase(),
        `${kid} `,
        ` ${kid}`,
        `${kid}\u0000`,
        kid.slice(0, -1),
        attackerKid,
        randomUUID(),
      ]) {
        expect(other).not.toBe(kid);
        expectError(
          await me(t, forge(accessHeader({ kid: other }), accessClaims(), ourKey())),
          401,
          'token_invalid',
        );
      }
      // The control: the same claims under our kid are accepted.
      await me(t, forge(accessHeader(), accessClaims(), ourKey())).expect(200);
    });

    it('refuses a kid of another JSON type (number, boolean, null, array, object), even one wrapping our kid, with a 401, never a 500', async () => {
      const { kid } = ours();
      for (const other of [
        42,
        0,
        -1,
        1e300,
        true,
        false,
        null,
        [],
        [kid],
        [kid, kid],
        {},
        { kid },
      ]) {
        expectError(
          await me(t, forge(accessHeader({ kid: other }), accessClaims(), ourKey())),
          401,
          'token_invalid',
        );
      }
    });

    it('refuses path, SQL, URL and prototype-name kids with a 401, never a 500', async () => {
      for (const kid of [
        '../../etc/passwd',
        '../../../../dev/null',
        '/dev/null',
        '..%2f..%2fetc%2fpasswd',
        "' OR 1=1 --",
        "' UNION SELECT 'attacker-chosen-key' --",
        '"; DROP TABLE signing_keys; --',
        '__proto__',
        'constructor',
        'toString',
        'hasOwnProperty',
        'https://attacker.example/key.pem',
        'kid\r\nX-Injected: 1',
        '\u0000',
        '*',
        '%',
      ]) {
        for (const signer of [ourKey(), ecdsa(attacker.privateKey), hmac(''), unsigned]) {
          expectError(
            await me(t, forge(accessHeader({ kid }), accessClaims(), signer)),
            401,
            'token_invalid',
          );
        }
      }
    });

    it('refuses a very long kid with a 401, never a 500 (API4:2023)', async () => {
      for (const length of [129, 1024, 8 * 1024]) {
        const kid = `${ours().kid}${'A'.repeat(length - ours().kid.length)}`;
        expectError(
          await me(t, forge(accessHeader({ kid }), accessClaims(), ourKey())),
          401,
          'token_invalid',
        );
      }
    });

    it('refuses a token carrying our kid but signed by a freshly generated P-256 key', async () => {
      const fresh = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const token = forge(accessHeader(), accessClaims(), ecdsa(fresh.privateKey));
      expect(() => jwt.verify(token, fresh.publicKey, { algorithms: ['ES256'] })).not.toThrow();
      expectError(await me(t, token), 401, 'token_invalid');
    });

    it("ignores embedded and remote key headers: jwk, jku and x5u naming the attacker's key never supply it (RFC 8725 §3.10; RFC 7515 §4.1.2-4.1.5; ASVS 3.5.3)", async () => {
      const { kid } = ours();
      const jwk = { ...attackerJwk, kid: attackerKid, alg: 'ES256', use: 'sig' };
      const headers: Json[] = [
        { alg: 'ES256', typ: 'at+jwt', jwk },
        accessHeader({ kid: attackerKid, jwk }),
        accessHeader({ kid, jwk }),
        accessHeader({ kid, jwk: { ...jwk, kid } }),
        accessHeader({ kid: attackerKid, jku: 'https://attacker.example/.well-known/jwks.json' }),
        accessHeader({ kid, jku: 'https://attacker.example/.well-known/jwks.json' }),
        accessHeader({ kid: attackerKid, x5u: 'https://attacker.example/cert.pem' }),
        accessHeader({ kid, x5u: 'https://attacker.example/cert.pem' }),
      ];
      for (const header of headers) {
        const token = forge(header, accessClaims(), ecdsa(attacker.privateKey));
        if (header.jwk) {
          // A verifier that took the embedded key would accept it.
          const embedded = createPublicKey({ key: header.jwk as JsonWebKey, format: 'jwk' });
          expect(() => jwt.verify(token, embedded, { algorithms: ['ES256'] })).not.toThrow();
        }
        expectError(await me(t, token), 401, 'token_invalid');
      }
      // None of it reached the key set.
      expect(keys.publishedKeys().keys.map((key) => key.kid)).not.toContain(attackerKid);
      expect(keys.verificationKey(attackerKid)).toBeUndefined();
    });
  });

  describe('claims (RFC 7519 §4.1, §7.2; RFC 9068 §4)', () => {
    it('answers token_expired for exp in the past, so the client knows to refresh (RFC 7519 §4.1.4; RFC 6750 §3.1)', async () => {
      const iat = nowSeconds() - 3600;
      const token = forgeAccess(accessClaims({ iat, exp: iat + 60 }));
      expectError(await me(t, token), 401, 'token_expired');
    });

    it('refuses a token that is not yet valid (nbf in the future) (RFC 7519 §4.1.5)', async () => {
      const token = forgeAccess(accessClaims({ nbf: nowSeconds() + 3600 }));
      expectError(await me(t, token), 401, 'token_invalid');
    });

    it('refuses a token without exp: access tokens must expire (RFC 9068 §2.2; RFC 8725 §3.10)', async () => {
      expectError(await me(t, forgeAccess(without(accessClaims(), 'exp'))), 401, 'token_invalid');
    });

    it('refuses an exp or iat that is not an integer NumericDate (RFC 7519 §2, §4.1.4)', async () => {
      for (const changes of [
        { exp: `${nowSeconds() + 300}` },
        { exp: 1e300 },
        { exp: null },
        { iat: 'yesterday' },
      ]) {
        expectError(await me(t, forgeAccess(accessClaims(changes))), 401, 'token_invalid');
      }
    });

    it('refuses a wrong or missing issuer, the former "lineage" included (RFC 8725 §3.8; RFC 7519 §4.1.1)', async () => {
      const iss = victimClaims.iss as string;
      for (const claims of [
        accessClaims({ iss: 'evil' }),
        accessClaims({ iss: 'lineage' }),
        accessClaims({ iss: 'Lineage' }),
        accessClaims({ iss: `${iss}/` }),
        accessClaims({ iss: iss.replace('http:', 'https:') }),
        accessClaims({ iss: iss.toUpperCase() }),
        accessClaims({ iss: [iss] }),
        without(accessClaims(), 'iss'),
      ]) {
        expectError(await me(t, forgeAccess(claims)), 401, 'token_invalid');
      }
    });

    it('refuses a wrong or missing audience (RFC 8725 §3.9; RFC 7519 §4.1.3)', async () => {
      for (const claims of [
        accessClaims({ aud: 'other-api' }),
        accessClaims({ aud: ['other-api'] }),
        accessClaims({ aud: '' }),
        without(accessClaims(), 'aud'),
      ]) {
        expectError(await me(t, forgeAccess(claims)), 401, 'token_invalid');
      }
    });

    it('refuses a wrong or missing typ on the access route (RFC 8725 §3.11; RFC 9068 §4)', async () => {
      const { kid } = ours();
      for (const header of [
        { alg: 'ES256', kid },
        { alg: 'ES256', typ: 'JWT', kid },
        { alg: 'ES256', typ: 'rt+jwt', kid },
        { alg: 'ES256', typ: 'at+jwt ', kid },
        { alg: 'ES256', typ: 'AT+JWT', kid },
        { alg: 'ES256', typ: ['at+jwt'], kid },
      ]) {
        // Signed with our key: only the type is wrong.
        expectError(await me(t, forgeAccess(accessClaims(), header)), 401, 'token_invalid');
      }
    });

    it.each([
      ['sub', 'missing', undefined],
      ['sub', 'not a UUID', 'not-a-uuid'],
      ['sub', 'a number', 42],
      ['sub', 'SQL text', "' OR '1'='1"],
      ['sub', 'an object', { $ne: null }],
      ['sid', 'missing', undefined],
      ['sid', 'not a UUID', '1'],
      ['sid', 'a number', 1],
      ['sid', 'SQL text', "00000000-0000-0000-0000-000000000000' OR 1=1 --"],
      ['sid', 'an array', ['x']],
      ['jti', 'missing', undefined],
      ['jti', 'not a UUID', 'abc'],
      ['jti', 'a number', 7],
      ['jti', 'SQL text', "'; DROP TABLE users; --"],
    ])(
      'refuses a correctly signed token whose %s is %s: 401, never 500 (RFC 8725 §3.10)',
      async (claim, _what, value) => {
        const claims =
          value === undefined ? without(accessClaims(), claim) : accessClaims({ [claim]: value });
        expectError(await me(t, forgeAccess(claims)), 401, 'token_invalid');
      },
    );

    it("refuses a correctly signed token naming another user with the caller's session: sessions are bound to their user (ASVS V3 session management; API1:2023)", async () => {
      const other = await register(t);
      const token = forgeAccess(accessClaims({ sub: claimsOf(other.access_token).sub }));
      expectError(await me(t, token), 401, 'session_revoked');
    });
  });

  describe('token types are mutually exclusive (RFC 8725 §3.11, §3.12)', () => {
    it('refuses a refresh token used as an access token', async () => {
      const { refresh_token: refreshToken } = await login(t, victim.username);
      expectError(await me(t, refreshToken), 401, 'token_invalid');
    });

    it('refuses an access token used as a refresh token', async () => {
      const { access_token: accessToken } = await login(t, victim.username);
      expectError(await refresh(t, accessToken), 401, 'token_invalid');
    });

    it('refuses a token signed with the refresh key but typed at+jwt on the access route (distinct keys and algorithms)', async () => {
      // (An ES256 header over an HMAC is among the wrong-length signatures above.)
      for (const header of [{ alg: 'HS256', typ: 'at+jwt' }, accessHeader({ alg: 'HS256' })]) {
        expectError(
          await me(t, forge(header, accessClaims(), hmac(REFRESH_KEY))),
          401,
          'token_invalid',
        );
      }
    });

    it('refuses a token signed with the access key but typed rt+jwt on the refresh route (distinct keys and algorithms)', async () => {
      const { refresh_token: refreshToken } = await login(t, victim.username);
      const claims = claimsOf(refreshToken);
      const { kid, publicKey } = ours();
      for (const token of [
        // Our ES256 key, under either header.
        forge({ alg: 'ES256', typ: 'rt+jwt', kid }, claims, ourKey()),
        forge({ alg: 'ES256', typ: 'rt+jwt' }, claims, ourKey()),
        // HS256 keyed with our public key: the confusion attack on this route.
        forge(
          { alg: 'HS256', typ: 'rt+jwt' },
          claims,
          hmac(publicKey.export({ type: 'spki', format: 'pem' })),
        ),
      ]) {
        expectError(await refresh(t, token), 401, 'token_invalid');
      }
      // None of them touched the session: the genuine token still rotates once.
      await refresh(t, refreshToken).expect(200);
    });

    it('refuses a token signed with the refresh key but typed at+jwt on the refresh route (typ checked before anything else)', async () => {
      const { refresh_token: refreshToken } = await login(t, victim.username);
      const token = forge(
        { alg: 'HS256', typ: 'at+jwt' },
        claimsOf(refreshToken),
        hmac(REFRESH_KEY),
      );
      expectError(await refresh(t, token), 401, 'token_invalid');
      // The control: the same claims with the right header and key do rotate.
      const same = forge(
        { alg: 'HS256', typ: 'rt+jwt' },
        claimsOf(refreshToken),
        hmac(REFRESH_KEY),
      );
      await refresh(t, same).expect(200);
    });

    it('refuses refresh tokens with alg none, HS512 or a wrong key (RFC 8725 §3.1)', async () => {
      const { refresh_token: refreshToken } = await login(t, victim.username);
      const claims = claimsOf(refreshToken);
      for (const token of [
        forge({ alg: 'none', typ: 'rt+jwt' }, claims, unsigned),
        forge({ alg: 'HS512', typ: 'rt+jwt' }, claims, hmac(REFRESH_KEY, 'sha512')),
        forge({ alg: 'HS256', typ: 'rt+jwt' }, claims, hmac('wrong-key')),
      ]) {
        expectError(await refresh(t, token), 401, 'token_invalid');
      }
      // None of them touched the session: the genuine token still rotates once.
      await refresh(t, refreshToken).expect(200);
    });
  });

  describe('session state behind a valid signature (ASVS 3.3.1)', () => {
    it('refuses a correctly signed token for a session id that does not exist', async () => {
      const token = forgeAccess(accessClaims({ sid: randomUUID() }));
      expectError(await me(t, token), 401, 'session_revoked');
    });

    it('refuses the access token of a logged-out session at once: session_revoked', async () => {
      const session = await login(t, victim.username);
      await todos(t, session.access_token).expect(200);
      await logout(t, session.access_token, { refresh_token: session.refresh_token }).expect(200);
      expectError(await me(t, session.access_token), 401, 'session_revoked');
      expectError(await refresh(t, session.refresh_token), 401, 'session_revoked');
      // Re-signing its claims with a fresh expiry does not revive it.
      const reissued = forgeAccess({ ...claimsOf(session.access_token), exp: nowSeconds() + 300 });
      expectError(await me(t, reissued), 401, 'session_revoked');
    });

    it('refuses every token of a deleted account, even correctly signed ones (ASVS 3.3.1; ASVS V3 session management)', async () => {
      const doomed = await register(t);
      const claims = claimsOf(doomed.access_token);
      await t
        .http()
        .delete('/users/me')
        .set(bearer(doomed.access_token))
        .send({ password: PASSWORD })
        .expect(204);
      expectError(await me(t, doomed.access_token), 401, 'session_revoked');
      expectError(await refresh(t, doomed.refresh_token), 401, 'session_revoked');
      const iat = nowSeconds();
      for (const token of [
        forgeAccess({ ...claims, jti: randomUUID(), iat, exp: iat + 300 }),
        forgeAccess({ ...claims, sid: randomUUID(), jti: randomUUID(), iat, exp: iat + 300 }),
      ]) {
        expectError(await me(t, token), 401, 'session_revoked');
      }
    });

    it('a forged token presented for revocation ends nothing (RFC 7009 §2.1, §2.2; RFC 8725 §3.1)', async () => {
      const target = await login(t, victim.username);
      const claims = claimsOf(target.access_token);
      const { kid, publicKey } = ours();
      for (const token of [
        forge(accessHeader({ alg: 'none' }), claims, unsigned),
        forge(
          accessHeader({ alg: 'HS256' }),
          claims,
          hmac(publicKey.export({ type: 'spki', format: 'pem' })),
        ),
        forge(accessHeader(), claims, ecdsa(attacker.privateKey)),
        forge(
          accessHeader({ kid: attackerKid, jwk: attackerJwk }),
          claims,
          ecdsa(attacker.privateKey),
        ),
        forge(accessHeader({ kid: `${kid}x` }), claims, ourKey()),
        forge({ alg: 'HS256', typ: 'rt+jwt' }, claimsOf(target.refresh_token), hmac('wrong-key')),
      ]) {
        // RFC 7009 §2.2: 200 whatever the token, so the answer tells nothing.
        await t.http().post('/auth/revoke').send({ token }).expect(200);
      }
      await me(t, target.access_token).expect(200);
      await refresh(t, target.refresh_token).expect(200);
    });

    it('refuses a refresh token signed with our key that its session never issued: the key alone makes no token', async () => {
      const session = await login(t, victim.username);
      const otherSession = await login(t, victim.username);
      const claims = claimsOf(session.refresh_token);
      const header = JSON.parse(
        Buffer.from(session.refresh_token.split('.')[0], 'base64url').toString('utf8'),
      ) as Json;
      // Same session and user, validly signed with the refresh key, but a jti
      // that is not this session's digest of that generation (it takes the
      // session's salt, which never leaves the database), or a generation not issued yet.
      for (const token of [
        forge(header, { ...claims, jti: randomBytes(32).toString('base64url') }, hmac(REFRESH_KEY)),
        forge(
          header,
          { ...claims, jti: claimsOf(otherSession.refresh_token).jti },
          hmac(REFRESH_KEY),
        ),
        // A v1 token's shape (no generation, a UUID jti): this session has no v1 token.
        forge(header, { ...without(claims, 'gen'), jti: randomUUID() }, hmac(REFRESH_KEY)),
        forge(header, { ...claims, gen: 1 }, hmac(REFRESH_KEY)),
      ]) {
        expectError(await refresh(t, token), 401, 'token_invalid');
      }
      // Refusing them changed nothing: the issued token still rotates, to generation 1.
      const rotated = await refresh(t, session.refresh_token).expect(200);
      expect(claimsOf((rotated.body as Tokens).refresh_token).gen).toBe(1);
      await refresh(t, otherSession.refresh_token).expect(200);
    });

    it("ignores another user's refresh token in a logout body (API1:2023; ASVS 4.2.1)", async () => {
      const attackerAccount = await register(t);
      const target = await login(t, victim.username);
      await logout(t, attackerAccount.access_token, { refresh_token: target.refresh_token }).expect(
        200,
      );
      expectError(await me(t, attackerAccount.access_token), 401, 'session_revoked');
      await me(t, target.access_token).expect(200);
      await refresh(t, target.refresh_token).expect(200);
    });
  });

  describe('where the access token may travel (RFC 6750 §2)', () => {
    it('does not read the access token from the query string (RFC 6750 §2.3, §5.3; ASVS 3.1.1)', async () => {
      const res = await t.http().get('/todos').query({ access_token: victim.access_token });
      expectError(res, 401, 'token_missing');
    });

    it('does not read the access token from a cookie (RFC 6750 §2.1; ASVS V3 session management)', async () => {
      for (const cookie of [
        `access_token=${victim.access_token}`,
        `Authorization=Bearer ${victim.access_token}`,
        `refresh_token=${victim.access_token}`,
      ]) {
        expectError(await t.http().get('/todos').set('Cookie', cookie), 401, 'token_missing');
      }
    });

    it('does not read the access token from the request body (RFC 6750 §2.2 not supported)', async () => {
      const res = await t
        .http()
        .post('/todos')
        .send({ access_token: victim.access_token, title: 'x' });
      expectError(res, 401, 'token_missing');
    });

    it('refuses other schemes and an empty Bearer: token_missing (RFC 6750 §2.1, §3.1)', async () => {
      for (const value of [
        `Basic ${Buffer.from(`${victim.username}:${PASSWORD}`).toString('base64')}`,
        `Token ${victim.access_token}`,
        `JWT ${victim.access_token}`,
        'Bearer',
        'Bearer ',
        '',
        victim.access_token,
      ]) {
        expectError(await t.http().get('/todos').set('Authorization', value), 401, 'token_missing');
      }
    });

    it('takes the scheme case-insensitively and 1*SP before the token, as the grammar says (RFC 9110 §11.1; RFC 6750 §2.1)', async () => {
      // Not a weakness: the same valid token, spelled as the RFCs allow.
      for (const value of [
        `bearer ${victim.access_token}`,
        `BEARER ${victim.access_token}`,
        `Bearer  ${victim.access_token}`,
      ]) {
        await t.http().get('/users/me').set('Authorization', value).expect(200);
      }
      // And the same spellings with a bad token are clean 401s.
      for (const value of ['bearer abc.def.ghi', 'Bearer  abc.def.ghi']) {
        expectError(await t.http().get('/todos').set('Authorization', value), 401, 'token_invalid');
      }
    });

    it('refuses anything but exactly one token after the scheme: token_invalid, even when a valid token is among it (RFC 6750 §2.1)', async () => {
      const token = victim.access_token;
      // Control: the token alone works (and is now in the verified-token cache).
      await me(t, token).expect(200);
      for (const value of [
        `Bearer ${token} ${token}`,
        `Bearer ${token} x`,
        `Bearer ${token} `.padEnd(token.length + 12, 'x'),
        `Bearer ${token},`,
        `Bearer ${token}, Bearer ${token}`,
        `Bearer ${token}=x`,
        `Bearer x ${token}`,
        `Bearer\t${token}`,
      ]) {
        const res = await t.http().get('/users/me').set('Authorization', value);
        expectError(res, 401, 'token_invalid');
      }
    });

    it('answers a clean 401 to an 8 KiB garbage bearer value (RFC 6750 §3.1; API4:2023)', async () => {
      for (const value of ['A'.repeat(8 * 1024), 'a.'.repeat(4 * 1024), '.'.repeat(8 * 1024)]) {
        const res = await t.http().get('/todos').set('Authorization', `Bearer ${value}`);
        expectError(res, 401, 'token_invalid');
      }
    });

    it('answers a clean 401 to non-ASCII bytes in the bearer value (RFC 6750 §2.1 b64token)', async () => {
      // Latin-1 bytes are all an HTTP client can put in a header.
      for (const value of [
        '\u00e9\u00e8\u00ff\u0080',
        '\u00ff'.repeat(100),
        'caf\u00e9.\u00fc.\u00e4',
      ]) {
        const res = await t.http().get('/todos').set('Authorization', `Bearer ${value}`);
        expectError(res, 401, 'token_invalid');
      }
    });

    it('refuses a 20 KiB Authorization header with a 4xx, never a 5xx (API4:2023)', async () => {
      // Node refuses header blocks over its limit (16 KiB) itself, with 431.
      const status = await rawStatus(t, {
        Authorization: `Bearer ${'A'.repeat(20 * 1024)}`,
      });
      expect(status).toBeGreaterThanOrEqual(400);
      expect(status).toBeLessThan(500);
    });
  });
});

/** The status of a GET /todos sent with raw headers (Node answers 431 before Fastify sees it). */
async function rawStatus(t: TestApp, headers: Record<string, string>): Promise<number> {
  const server = t.app.getHttpServer();
  if (!server.listening) await t.app.listen(0, '127.0.0.1');
  const { port } = server.address() as AddressInfo;
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: '127.0.0.1', port, path: '/todos', method: 'GET', headers },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on('error', reject);
    req.end();
  });
}
