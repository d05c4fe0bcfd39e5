import { createHmac, randomUUID } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import jwt from 'jsonwebtoken';
import {
  bearer,
  claimsOf,
  login,
  PASSWORD,
  register,
  startTestApp,
  type TestApp,
  type Tokens,
} from '../support/test-app.js';

/**
 * Attacks on the bearer tokens, through HTTP only: forged, altered, mistyped
 * and misplaced tokens. Each test names the requirement it checks.
 *
 * Forged tokens are built by hand (base64url header and payload, HMAC over
 * them) so the header says exactly what the attack needs; jsonwebtoken would
 * rewrite `alg` to match the key it is given.
 */

// The harness's keys (test/support/test-app.ts): an attacker who had them
// could mint tokens, so these only serve to change one thing at a time.
const ACCESS_KEY = 'test-access-secret-0123456789abcdef0123456789';
const REFRESH_KEY = 'test-refresh-secret-0123456789abcdef012345678';

type Json = Record<string, unknown>;
interface Res {
  status: number;
  body: unknown;
  headers: Record<string, string | string[] | undefined>;
}

const b64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

/** A compact JWS with exactly this header and payload, HMAC-signed with `key` (none: no signature). */
function forge(
  header: Json,
  payload: Json,
  key: string | null = ACCESS_KEY,
  hash: 'sha256' | 'sha384' | 'sha512' = 'sha256',
): string {
  const input = `${b64url(header)}.${b64url(payload)}`;
  const signature = key === null ? '' : createHmac(hash, key).update(input).digest('base64url');
  return `${input}.${signature}`;
}

const ACCESS_HEADER = { alg: 'HS256', typ: 'at+jwt' };
const REFRESH_HEADER = { alg: 'HS256', typ: 'rt+jwt' };
const nowSeconds = () => Math.floor(Date.now() / 1000);

/**
 * The one error shape, no internals, and RFC 6750 §3 on every 401: the Bearer
 * challenge, with `error="invalid_token"` when a token was presented and no
 * error code when none was (RFC 6750 §3.1).
 */
function expectError(res: Res, status: number, code?: string) {
  expect(res.status).toBe(status);
  const body = res.body as Json;
  expect(body).toMatchObject({ statusCode: status, ...(code ? { code } : {}) });
  expect(Object.keys(body).sort()).toEqual(
    ['code', 'error', 'message', 'statusCode', ...('details' in body ? ['details'] : [])].sort(),
  );
  expect(typeof body.error).toBe('string');
  expect(typeof body.message).toBe('string');
  expect(body).not.toHaveProperty('stack');
  expect(JSON.stringify(body)).not.toMatch(/node_modules|\/work\/|\n\s+at |Error:/);
  if (status === 401) {
    const challenge = res.headers['www-authenticate'];
    expect(challenge).toMatch(/^Bearer realm="lineage"/);
    if (body.code === 'token_missing') expect(challenge).not.toContain('error=');
    else expect(challenge).toContain('error="invalid_token"');
  }
}

describe('security: bearer and refresh tokens (e2e)', () => {
  let t: TestApp;
  /** The victim: a live account and session whose claims the forgeries start from. */
  let victim: Tokens & { username: string };
  let victimClaims: Json;

  beforeAll(async () => {
    t = await startTestApp();
    victim = await register(t);
    victimClaims = claimsOf(victim.access_token);
  });

  afterAll(async () => {
    await t.close();
  });

  const me = (token: string) => t.http().get('/users/me').set(bearer(token));
  const refresh = (token: string) => t.http().post('/auth/refresh').send({ refresh_token: token });
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

  it('control: a token with the right key, algorithm, type and claims is accepted, so each refusal below is about the one thing changed', async () => {
    const res = await me(forge(ACCESS_HEADER, accessClaims())).expect(200);
    expect((res.body as { id: string }).id).toBe(victimClaims.sub);
    // The server's own token has exactly the header the forgeries start from.
    const header = JSON.parse(
      Buffer.from(victim.access_token.split('.')[0], 'base64url').toString(),
    ) as Json;
    expect(header).toEqual(ACCESS_HEADER);
  });

  describe('signature and algorithm', () => {
    it('refuses alg "none" with no signature (RFC 8725 §2.1, §3.1; ASVS 3.5.3)', async () => {
      const token = forge({ alg: 'none', typ: 'at+jwt' }, accessClaims(), null);
      expectError(await me(token), 401, 'token_invalid');
    });

    it.each(['NONE', 'None', 'nOnE'])(
      'refuses alg "%s", unsigned or signed (RFC 8725 §3.1; ASVS 3.5.3)',
      async (alg) => {
        const header = { alg, typ: 'at+jwt' };
        expectError(await me(forge(header, accessClaims(), null)), 401, 'token_invalid');
        expectError(await me(forge(header, accessClaims())), 401, 'token_invalid');
      },
    );

    it('refuses a token with alg HS256 and the signature stripped (RFC 7515 §5.2; ASVS 3.5.3)', async () => {
      const token = forge(ACCESS_HEADER, accessClaims(), null);
      expect(token.endsWith('.')).toBe(true);
      expectError(await me(token), 401, 'token_invalid');
    });

    it.each([
      ['HS384', 'sha384'],
      ['HS512', 'sha512'],
    ] as const)(
      'refuses %s even when signed with the correct access key: the algorithm is pinned (RFC 8725 §3.1; ASVS 3.5.3)',
      async (alg, hash) => {
        const token = forge({ alg, typ: 'at+jwt' }, accessClaims(), ACCESS_KEY, hash);
        // jsonwebtoken itself would accept it: only the server's pin refuses it.
        expect(() => jwt.verify(token, ACCESS_KEY)).not.toThrow();
        expectError(await me(token), 401, 'token_invalid');
      },
    );

    it('refuses HS256 signed with a wrong key (RFC 7515 §5.2; ASVS 3.5.3)', async () => {
      for (const key of ['wrong-key', '', `${ACCESS_KEY}x`, ACCESS_KEY.slice(0, -1)]) {
        expectError(await me(forge(ACCESS_HEADER, accessClaims(), key)), 401, 'token_invalid');
      }
    });

    it('refuses an RS256-labelled token carrying an HMAC signature: no key confusion (RFC 8725 §2.1, §3.1; ASVS 3.5.3)', async () => {
      for (const alg of ['RS256', 'ES256', 'PS256']) {
        const token = forge({ alg, typ: 'at+jwt' }, accessClaims(), ACCESS_KEY);
        expectError(await me(token), 401, 'token_invalid');
      }
    });

    it("refuses a genuine token whose payload was changed to another user's id, signature kept (RFC 7515 §5.2; ASVS 3.5.3; API1:2023)", async () => {
      const other = await register(t);
      // The genuine token is accepted first, so the guard remembers it as
      // verified: an altered copy must not ride on that.
      await me(victim.access_token).expect(200);
      const [header, , signature] = victim.access_token.split('.');
      const payload = b64url({ ...victimClaims, sub: claimsOf(other.access_token).sub });
      expectError(await me(`${header}.${payload}.${signature}`), 401, 'token_invalid');
      // Pushing the expiry out the same way fails alike.
      const later = b64url({ ...victimClaims, exp: (victimClaims.exp as number) + 86_400 });
      expectError(await me(`${header}.${later}.${signature}`), 401, 'token_invalid');
    });

    it('refuses a genuine, already accepted token whose signature was changed (RFC 7515 §5.2; ASVS 3.5.3)', async () => {
      await me(victim.access_token).expect(200);
      const [header, payload, signature] = victim.access_token.split('.');
      const flipped = `${signature[0] === 'A' ? 'B' : 'A'}${signature.slice(1)}`;
      expectError(await me(`${header}.${payload}.${flipped}`), 401, 'token_invalid');
      expectError(await me(`${header}.${payload}.${signature}x`), 401, 'token_invalid');
      await me(victim.access_token).expect(200);
    });

    it('refuses a genuine token whose header was changed, signature kept (RFC 7515 §5.2; ASVS 3.5.3)', async () => {
      await me(victim.access_token).expect(200);
      const [, payload, signature] = victim.access_token.split('.');
      for (const header of [
        { alg: 'HS256', typ: 'at+jwt', kid: 'other' },
        { alg: 'HS256', typ: 'JWT' },
        { typ: 'at+jwt', alg: 'HS256' },
      ]) {
        expectError(await me(`${b64url(header)}.${payload}.${signature}`), 401, 'token_invalid');
      }
    });

    it('ignores key-selecting headers: kid, jku and an embedded jwk never choose the key (RFC 8725 §3.10; ASVS 3.5.3)', async () => {
      const attackerKey = 'attacker-chosen-key';
      const headers: Json[] = [
        { ...ACCESS_HEADER, kid: '../../../../dev/null' },
        { ...ACCESS_HEADER, kid: "' UNION SELECT 'attacker-chosen-key' --" },
        { ...ACCESS_HEADER, jku: 'https://attacker.example/jwks.json' },
        {
          ...ACCESS_HEADER,
          jwk: { kty: 'oct', k: Buffer.from(attackerKey).toString('base64url') },
        },
      ];
      for (const header of headers) {
        expectError(await me(forge(header, accessClaims(), attackerKey)), 401, 'token_invalid');
        expectError(await me(forge(header, accessClaims(), '')), 401, 'token_invalid');
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
        expectError(await me(token), 401, 'token_invalid');
      }
    });
  });

  describe('claims (RFC 7519 §4.1, §7.2; RFC 9068 §4)', () => {
    it('answers token_expired for exp in the past, so the client knows to refresh (RFC 7519 §4.1.4; RFC 6750 §3.1)', async () => {
      const iat = nowSeconds() - 3600;
      const token = forge(ACCESS_HEADER, accessClaims({ iat, exp: iat + 60 }));
      expectError(await me(token), 401, 'token_expired');
    });

    it('refuses a token that is not yet valid (nbf in the future) (RFC 7519 §4.1.5)', async () => {
      const token = forge(ACCESS_HEADER, accessClaims({ nbf: nowSeconds() + 3600 }));
      expectError(await me(token), 401, 'token_invalid');
    });

    it('refuses a token without exp: access tokens must expire (RFC 9068 §2.2; RFC 8725 §3.10)', async () => {
      expectError(
        await me(forge(ACCESS_HEADER, without(accessClaims(), 'exp'))),
        401,
        'token_invalid',
      );
    });

    it('refuses an exp or iat that is not an integer NumericDate (RFC 7519 §2, §4.1.4)', async () => {
      for (const changes of [
        { exp: `${nowSeconds() + 300}` },
        { exp: 1e300 },
        { exp: null },
        { iat: 'yesterday' },
      ]) {
        expectError(await me(forge(ACCESS_HEADER, accessClaims(changes))), 401, 'token_invalid');
      }
    });

    it('refuses a wrong or missing issuer (RFC 8725 §3.8; RFC 7519 §4.1.1)', async () => {
      for (const claims of [
        accessClaims({ iss: 'evil' }),
        accessClaims({ iss: 'Lineage' }),
        accessClaims({ iss: ['lineage'] }),
        without(accessClaims(), 'iss'),
      ]) {
        expectError(await me(forge(ACCESS_HEADER, claims)), 401, 'token_invalid');
      }
    });

    it('refuses a wrong or missing audience (RFC 8725 §3.9; RFC 7519 §4.1.3)', async () => {
      for (const claims of [
        accessClaims({ aud: 'other-api' }),
        accessClaims({ aud: ['other-api'] }),
        accessClaims({ aud: '' }),
        without(accessClaims(), 'aud'),
      ]) {
        expectError(await me(forge(ACCESS_HEADER, claims)), 401, 'token_invalid');
      }
    });

    it('refuses a wrong or missing typ on the access route (RFC 8725 §3.11; RFC 9068 §4)', async () => {
      for (const header of [
        { alg: 'HS256' },
        { alg: 'HS256', typ: 'JWT' },
        { alg: 'HS256', typ: 'rt+jwt' },
        { alg: 'HS256', typ: 'at+jwt ' },
        { alg: 'HS256', typ: ['at+jwt'] },
      ]) {
        // Signed with the access key: only the type is wrong.
        expectError(await me(forge(header, accessClaims())), 401, 'token_invalid');
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
        expectError(await me(forge(ACCESS_HEADER, claims)), 401, 'token_invalid');
      },
    );

    it("refuses a correctly signed token naming another user with the caller's session: sessions are bound to their user (ASVS V3 session management; API1:2023)", async () => {
      const other = await register(t);
      const token = forge(ACCESS_HEADER, accessClaims({ sub: claimsOf(other.access_token).sub }));
      expectError(await me(token), 401, 'session_revoked');
    });
  });

  describe('token types are mutually exclusive (RFC 8725 §3.11, §3.12)', () => {
    it('refuses a refresh token used as an access token', async () => {
      const { refresh_token: refreshToken } = await login(t, victim.username);
      expectError(await me(refreshToken), 401, 'token_invalid');
    });

    it('refuses an access token used as a refresh token', async () => {
      const { access_token: accessToken } = await login(t, victim.username);
      expectError(await refresh(accessToken), 401, 'token_invalid');
    });

    it('refuses a token signed with the refresh key but typed at+jwt on the access route (distinct keys)', async () => {
      const token = forge(ACCESS_HEADER, accessClaims(), REFRESH_KEY);
      expectError(await me(token), 401, 'token_invalid');
    });

    it('refuses a token signed with the access key but typed rt+jwt on the refresh route (distinct keys)', async () => {
      const { refresh_token: refreshToken } = await login(t, victim.username);
      const token = forge(REFRESH_HEADER, claimsOf(refreshToken), ACCESS_KEY);
      expectError(await refresh(token), 401, 'token_invalid');
    });

    it('refuses a token signed with the refresh key but typed at+jwt on the refresh route (typ checked; the stored hash binds the exact token too)', async () => {
      const { refresh_token: refreshToken } = await login(t, victim.username);
      const token = forge(ACCESS_HEADER, claimsOf(refreshToken), REFRESH_KEY);
      expectError(await refresh(token), 401, 'token_invalid');
      // The control: the same claims with the right header and key do rotate.
      await refresh(forge(REFRESH_HEADER, claimsOf(refreshToken), REFRESH_KEY)).expect(200);
    });

    it('refuses refresh tokens with alg none, HS512 or a wrong key (RFC 8725 §3.1)', async () => {
      const { refresh_token: refreshToken } = await login(t, victim.username);
      const claims = claimsOf(refreshToken);
      for (const token of [
        forge({ alg: 'none', typ: 'rt+jwt' }, claims, null),
        forge({ alg: 'HS512', typ: 'rt+jwt' }, claims, REFRESH_KEY, 'sha512'),
        forge(REFRESH_HEADER, claims, 'wrong-key'),
      ]) {
        expectError(await refresh(token), 401, 'token_invalid');
      }
      // None of them touched the session: the genuine token still rotates once.
      await refresh(refreshToken).expect(200);
    });
  });

  describe('session state behind a valid signature (ASVS 3.3.1)', () => {
    it('refuses a correctly signed token for a session id that does not exist', async () => {
      const token = forge(ACCESS_HEADER, accessClaims({ sid: randomUUID() }));
      expectError(await me(token), 401, 'session_revoked');
    });

    it('refuses the access token of a logged-out session at once: session_revoked', async () => {
      const session = await login(t, victim.username);
      await t.http().get('/todos').set(bearer(session.access_token)).expect(200);
      await t
        .http()
        .post('/auth/logout')
        .set(bearer(session.access_token))
        .send({ refresh_token: session.refresh_token })
        .expect(200);
      expectError(await me(session.access_token), 401, 'session_revoked');
      expectError(await refresh(session.refresh_token), 401, 'session_revoked');
      // Re-signing its claims with a fresh expiry does not revive it.
      const reissued = forge(ACCESS_HEADER, {
        ...claimsOf(session.access_token),
        exp: nowSeconds() + 300,
      });
      expectError(await me(reissued), 401, 'session_revoked');
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
      expectError(await me(doomed.access_token), 401, 'session_revoked');
      expectError(await refresh(doomed.refresh_token), 401);
      const iat = nowSeconds();
      for (const token of [
        forge(ACCESS_HEADER, { ...claims, jti: randomUUID(), iat, exp: iat + 300 }),
        forge(ACCESS_HEADER, {
          ...claims,
          sid: randomUUID(),
          jti: randomUUID(),
          iat,
          exp: iat + 300,
        }),
      ]) {
        expectError(await me(token), 401, 'session_revoked');
      }
    });

    it('a forged token presented for revocation ends nothing (RFC 7009 §2.1, §2.2; RFC 8725 §3.1)', async () => {
      const target = await login(t, victim.username);
      const claims = claimsOf(target.access_token);
      for (const token of [
        forge({ alg: 'none', typ: 'at+jwt' }, claims, null),
        forge({ alg: 'HS512', typ: 'at+jwt' }, claims, ACCESS_KEY, 'sha512'),
        forge(ACCESS_HEADER, claims, 'wrong-key'),
        forge(REFRESH_HEADER, claimsOf(target.refresh_token), 'wrong-key'),
      ]) {
        // RFC 7009 §2.2: 200 whatever the token, so the answer tells nothing.
        await t.http().post('/auth/revoke').send({ token }).expect(200);
      }
      await me(target.access_token).expect(200);
      await refresh(target.refresh_token).expect(200);
    });

    it("ignores another user's refresh token in a logout body (API1:2023; ASVS 4.2.1)", async () => {
      const attacker = await register(t);
      const target = await login(t, victim.username);
      await t
        .http()
        .post('/auth/logout')
        .set(bearer(attacker.access_token))
        .send({ refresh_token: target.refresh_token })
        .expect(200);
      expectError(await me(attacker.access_token), 401, 'session_revoked');
      await me(target.access_token).expect(200);
      await refresh(target.refresh_token).expect(200);
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
