import { createHash } from 'node:crypto';
import { calculateJwkThumbprint, decodeJwt, EmbeddedJWK, jwtVerify, type JWK } from 'jose';
import {
  createDpopSigner,
  createLineageClient,
  generateDpopKeyPair,
  LineageApiError,
  memoryDpopKeyStore,
  memoryTokenStorage,
  type DpopKeyPair,
  type DpopKeyStore,
} from '../../client/src/lineage-client.js';
import { rejection } from './support.js';

const API = 'https://api.example.com';

/** Verifies a proof as RFC 9449 §4.3 does, with the key its header carries. */
async function verified(proof: string) {
  const { payload, protectedHeader } = await jwtVerify(proof, EmbeddedJWK, {
    typ: 'dpop+jwt',
    algorithms: ['ES256'],
  });
  return { payload, jwk: protectedHeader.jwk as JWK };
}

/** The `ath` RFC 9449 §4.2 defines, computed with Node's own hash. */
const ath = (accessToken: string) =>
  createHash('sha256').update(accessToken, 'ascii').digest('base64url');

/** A key store that counts the pairs stored in it. */
function countingStore(): DpopKeyStore & { sets: number } {
  const inner = memoryDpopKeyStore();
  const store = {
    sets: 0,
    get: () => inner.get(),
    set: (keys: DpopKeyPair) => {
      store.sets += 1;
      return inner.set(keys);
    },
    clear: () => inner.clear(),
  };
  return store;
}

describe('DPoP proofs (RFC 9449 §4.2)', () => {
  it('verify with the embedded public key and carry htm, htu without query or fragment, iat, jti', async () => {
    const signer = createDpopSigner(memoryDpopKeyStore());
    const before = Math.floor(Date.now() / 1000);
    const proof = await signer.proof('POST', `${API}/auth/login?next=%2Ftodos#top`);
    const { payload, jwk } = await verified(proof);
    expect(payload).toEqual({
      jti: expect.stringMatching(/^[A-Za-z0-9_-]{22,}$/) as unknown,
      htm: 'POST',
      htu: `${API}/auth/login`,
      iat: expect.any(Number) as unknown,
    });
    expect(payload.iat).toBeGreaterThanOrEqual(before);
    expect(payload.iat).toBeLessThanOrEqual(Math.floor(Date.now() / 1000));
    // Only the public members: no `d`, nor WebCrypto's key_ops and ext.
    expect(Object.keys(jwk).sort()).toEqual(['crv', 'kty', 'x', 'y']);
    expect(jwk).toMatchObject({ kty: 'EC', crv: 'P-256' });
  });

  it('hash the access token into ath, and take a new jti with the same key each time', async () => {
    const signer = createDpopSigner(memoryDpopKeyStore());
    const token = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln';
    const first = await verified(await signer.proof('GET', `${API}/todos?limit=5`, token));
    const second = await verified(await signer.proof('GET', `${API}/todos`, token));
    expect(first.payload.ath).toBe(ath(token));
    expect(first.payload.htu).toBe(`${API}/todos`);
    expect(first.payload.jti).not.toBe(second.payload.jti);
    expect(await calculateJwkThumbprint(first.jwk)).toBe(await calculateJwkThumbprint(second.jwk));
  });

  it("carry the newest DPoP-Nonce of the request's origin, and no other origin's", async () => {
    const signer = createDpopSigner(memoryDpopKeyStore());
    signer.remember(`${API}/auth/login`, new Response(null, { headers: { 'DPoP-Nonce': 'n-1' } }));
    signer.remember(`${API}/todos`, new Response(null, { headers: { 'DPoP-Nonce': 'n-2' } }));
    // A response without the header keeps the nonce there is.
    signer.remember(`${API}/todos`, new Response(null));
    expect(decodeJwt(await signer.proof('POST', `${API}/auth/refresh`)).nonce).toBe('n-2');
    expect(decodeJwt(await signer.proof('GET', 'https://other.example/x'))).not.toHaveProperty(
      'nonce',
    );
  });
});

describe('DPoP keys', () => {
  it('are generated with a private key that cannot be exported', async () => {
    const { privateKey, publicKey } = await generateDpopKeyPair();
    expect(privateKey.extractable).toBe(false);
    expect(privateKey.algorithm).toEqual({ name: 'ECDSA', namedCurve: 'P-256' });
    // WebCrypto leaves the public half of a generated pair extractable, as the header needs.
    expect(publicKey.extractable).toBe(true);
    await expect(crypto.subtle.exportKey('jwk', privateKey)).rejects.toThrow();
  });

  it('are created once, on first use, even by concurrent first requests, and stored', async () => {
    const store = countingStore();
    const signer = createDpopSigner(store);
    const proofs = await Promise.all([
      signer.proof('GET', `${API}/a`),
      signer.proof('GET', `${API}/b`),
    ]);
    expect(store.sets).toBe(1);
    const [a, b] = await Promise.all(proofs.map(verified));
    expect(await calculateJwkThumbprint(a.jwk)).toBe(await calculateJwkThumbprint(b.jwk));
    const stored = await store.get();
    expect(stored?.privateKey.extractable).toBe(false);
  });

  it("are the store's on a later start: the same public key signs", async () => {
    const store = memoryDpopKeyStore(await generateDpopKeyPair());
    const first = await createDpopSigner(store).publicJwk();
    const later = await verified(await createDpopSigner(store).proof('GET', `${API}/todos`));
    expect(later.jwk).toEqual(first);
  });
});

interface SentRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
}

/**
 * A fake fetch (the network is the I/O edge here): records what the client
 * sends and answers with `answer`, which sees the request and how many came
 * before it.
 */
function fakeFetch(answer: (request: SentRequest, index: number) => Response) {
  const sent: SentRequest[] = [];
  const fetch: typeof globalThis.fetch = (input, init) => {
    const request = {
      method: init?.method ?? 'GET',
      url: input instanceof Request ? input.url : String(input),
      headers: { ...(init?.headers as Record<string, string>) },
    };
    sent.push(request);
    return Promise.resolve(answer(request, sent.length - 1));
  };
  return { fetch, sent };
}

function tokenResponse(
  n: number,
  tokenType: 'Bearer' | 'DPoP',
  headers: Record<string, string> = {},
): Response {
  const body = {
    access_token: `access-${n}`,
    token_type: tokenType,
    expires_in: 900,
    refresh_token: `refresh-${n}`,
    refresh_expires_in: 604800,
  };
  return Response.json(body, { headers });
}

function errorResponse(status: number, code: string, headers: Record<string, string> = {}) {
  return Response.json(
    {
      statusCode: status,
      error: status === 400 ? 'Bad Request' : 'Unauthorized',
      code,
      message: code,
    },
    { status, headers },
  );
}

const credentials = { username: 'dpop-user', password: 'correct horse' };

describe('createLineageClient with dpop', () => {
  it("signs login again with the server's nonce, once, and keeps token_type DPoP", async () => {
    const { fetch, sent } = fakeFetch((_request, index) =>
      index === 0
        ? errorResponse(400, 'use_dpop_nonce', { 'DPoP-Nonce': 'nonce-1' })
        : tokenResponse(1, 'DPoP'),
    );
    const storage = memoryTokenStorage();
    const client = createLineageClient({ baseUrl: API, storage, fetch, dpop: true });

    const tokens = await client.login(credentials);
    expect(tokens.token_type).toBe('DPoP');
    expect(sent).toHaveLength(2);
    const [first, retry] = await Promise.all(sent.map((request) => verified(request.headers.DPoP)));
    expect(first.payload).not.toHaveProperty('nonce');
    expect(retry.payload).toMatchObject({
      htm: 'POST',
      htu: `${API}/auth/login`,
      nonce: 'nonce-1',
    });
    expect(retry.payload.jti).not.toBe(first.payload.jti);
    // Login carries no access token, so no ath either.
    expect(retry.payload).not.toHaveProperty('ath');
    expect(await storage.get()).toMatchObject({
      access_token: 'access-1',
      refresh_token: 'refresh-1',
      token_type: 'DPoP',
    });
  });

  it('sends a bound access token as Authorization: DPoP with ath, and retries a 401 use_dpop_nonce once', async () => {
    const { fetch, sent } = fakeFetch((request, index) => {
      if (request.url.endsWith('/auth/login')) {
        return tokenResponse(1, 'DPoP', { 'DPoP-Nonce': 'nonce-1' });
      }
      if (index === 1) {
        return errorResponse(401, 'use_dpop_nonce', {
          'DPoP-Nonce': 'nonce-2',
          'WWW-Authenticate': 'DPoP error="use_dpop_nonce"',
        });
      }
      return Response.json([], { headers: { 'X-Total-Count': '0' } });
    });
    const client = createLineageClient({ baseUrl: API, fetch, dpop: true });
    await client.login(credentials);

    await expect(client.todos.list({ limit: 5 })).resolves.toEqual({ items: [], total: 0 });
    expect(sent.map((request) => request.url)).toEqual([
      `${API}/auth/login`,
      `${API}/todos?limit=5`,
      `${API}/todos?limit=5`,
    ]);
    const [refused, retried] = sent.slice(1);
    expect(refused.headers.Authorization).toBe('DPoP access-1');
    expect(retried.headers.Authorization).toBe('DPoP access-1');
    // The nonce the login's response sent, then the one the refusal sent.
    expect((await verified(refused.headers.DPoP)).payload).toMatchObject({
      htm: 'GET',
      htu: `${API}/todos`,
      ath: ath('access-1'),
      nonce: 'nonce-1',
    });
    expect((await verified(retried.headers.DPoP)).payload).toMatchObject({
      ath: ath('access-1'),
      nonce: 'nonce-2',
    });
  });

  it('takes a second use_dpop_nonce as final, and keeps the tokens', async () => {
    let nonce = 0;
    const { fetch, sent } = fakeFetch((request) =>
      request.url.endsWith('/auth/login')
        ? tokenResponse(1, 'DPoP')
        : errorResponse(401, 'use_dpop_nonce', { 'DPoP-Nonce': `nonce-${++nonce}` }),
    );
    const storage = memoryTokenStorage();
    const client = createLineageClient({ baseUrl: API, storage, fetch, dpop: true });
    await client.login(credentials);

    const error = await rejection(client.users.me());
    expect(error.code).toBe('use_dpop_nonce');
    expect(sent).toHaveLength(3);
    expect(await storage.get()).not.toBeNull();
  });

  it('keeps the tokens when the refresh proof is refused (invalid_dpop_proof)', async () => {
    const { fetch, sent } = fakeFetch((request) => {
      if (request.url.endsWith('/auth/login')) return tokenResponse(1, 'DPoP');
      if (request.url.endsWith('/auth/refresh')) return errorResponse(400, 'invalid_dpop_proof');
      return errorResponse(401, 'token_expired');
    });
    const storage = memoryTokenStorage();
    const client = createLineageClient({ baseUrl: API, storage, fetch, dpop: true });
    await client.login(credentials);

    const error = await rejection(client.users.me());
    expect(error).toBeInstanceOf(LineageApiError);
    expect(error.code).toBe('invalid_dpop_proof');
    expect(sent.map((request) => new URL(request.url).pathname)).toEqual([
      '/auth/login',
      '/users/me',
      '/auth/refresh',
    ]);
    // Refresh carries a proof but no access token: no ath.
    expect((await verified(sent[2].headers.DPoP)).payload).not.toHaveProperty('ath');
    expect(await storage.get()).toMatchObject({ refresh_token: 'refresh-1' });
  });

  it('sends Bearer without a proof on resources when the server did not bind the session', async () => {
    const { fetch, sent } = fakeFetch((request) =>
      request.url.endsWith('/auth/login')
        ? tokenResponse(1, 'Bearer')
        : Response.json({ id: 'u', username: credentials.username }),
    );
    const client = createLineageClient({ baseUrl: API, fetch, dpop: true });
    await client.login(credentials);
    await client.users.me();
    expect(sent[0].headers.DPoP).toEqual(expect.any(String));
    expect(sent[1].headers).toEqual({ Authorization: 'Bearer access-1' });
  });
});

describe('createLineageClient without dpop', () => {
  it('sends no proof, Bearer tokens, and stores the pair without token_type', async () => {
    const { fetch, sent } = fakeFetch((request) =>
      request.url.endsWith('/auth/login')
        ? tokenResponse(1, 'Bearer')
        : Response.json({ id: 'u', username: credentials.username }),
    );
    const storage = memoryTokenStorage();
    const client = createLineageClient({ baseUrl: API, storage, fetch });
    await client.login(credentials);
    await client.users.me();
    expect(sent.map((request) => request.headers)).toEqual([
      { 'Content-Type': 'application/json' },
      { Authorization: 'Bearer access-1' },
    ]);
    const stored = await storage.get();
    expect(stored).toMatchObject({ access_token: 'access-1', refresh_token: 'refresh-1' });
    expect(stored).not.toHaveProperty('token_type');
  });
});
