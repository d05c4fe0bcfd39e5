import { calculateJwkThumbprint, exportJWK } from 'jose';
import * as oauth from 'oauth4webapi';
import { freePort } from '../support/app-process.js';
import {
  dpopProof,
  hmacProof,
  newProofKey,
  type ProofKey,
  type ProofOptions,
  unsignedProof,
} from '../support/dpop.js';
import { expectError } from '../support/errors.js';
import { bearer, claimsOf, PASSWORD, type Tokens, uniqueUsername } from '../support/requests.js';
import { startTestApp, type TestApp } from '../support/test-app.js';

// As the other suites: Redis only when the run provides one (.ci/run's third pass).
const TEST_REDIS_URL = process.env.TEST_REDIS_URL;

interface Received {
  status: number;
  headers: Record<string, string>;
  body: Record<string, unknown>;
}

/** A fetch response in the shape the shared error assertion reads. */
async function received(response: Response): Promise<Received> {
  // An RFC 7009 revocation answers 200 with no body.
  const text = await response.text();
  return {
    status: response.status,
    headers: Object.fromEntries(response.headers),
    body: (text ? JSON.parse(text) : {}) as Record<string, unknown>,
  };
}

/**
 * Sessions bound to a client's key (RFC 9449) through the real HTTP stack:
 * oauth4webapi's own DPoP support as the client, and hand-made proofs for
 * everything the server must refuse. Two instances share one PUBLIC_URL (and,
 * with TEST_REDIS_URL, one Redis), as two replicas behind a proxy do.
 */
describe('DPoP-bound sessions (e2e)', () => {
  let t: TestApp;
  let second: TestApp;
  let origin: string;
  let secondOrigin: string;
  const app: oauth.Client = { client_id: 'e2e-app' };
  const none = oauth.None();
  const insecure = { [oauth.allowInsecureRequests]: true };
  let as: oauth.AuthorizationServer;

  beforeAll(async () => {
    const [port, secondPort] = [await freePort(), await freePort()];
    origin = `http://127.0.0.1:${port}`;
    secondOrigin = `http://127.0.0.1:${secondPort}`;
    const env: Record<string, string> = { PUBLIC_URL: origin, OAUTH_CLIENTS: app.client_id };
    if (TEST_REDIS_URL) env.REDIS_URL = TEST_REDIS_URL;
    t = await startTestApp(env);
    second = await startTestApp(env);
    await t.app.listen({ port, host: '127.0.0.1' });
    await second.app.listen({ port: secondPort, host: '127.0.0.1' });
    const issuer = new URL(origin);
    as = await oauth.processDiscoveryResponse(
      issuer,
      await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...insecure }),
    );
  });

  afterAll(async () => {
    await second?.close();
    await t?.close();
  });

  const url = (path: string) => `${origin}${path}`;

  /** A POST of JSON to the first instance (or `to`), with a DPoP header when given. */
  async function post(path: string, body: object, proof?: string, to = origin) {
    const response = await fetch(`${to}${path}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', ...(proof ? { DPoP: proof } : {}) },
      body: JSON.stringify(body),
    });
    return received(response);
  }

  const refreshProof = (key: ProofKey, extra: Partial<ProofOptions> = {}) =>
    dpopProof(key, { htm: 'POST', htu: url('/auth/refresh'), ...extra });

  /** A bound session of a new account, started on the JSON route with `key`. */
  async function boundSession(key: ProofKey): Promise<Tokens> {
    const username = uniqueUsername('dpop');
    const res = await post(
      '/auth/register',
      { username, password: PASSWORD },
      await dpopProof(key, { htm: 'POST', htu: url('/auth/register') }),
    );
    expect(res.status).toBe(201);
    return res.body as unknown as Tokens;
  }

  async function refreshBound(key: ProofKey, refreshToken: string): Promise<Tokens> {
    const res = await post(
      '/auth/refresh',
      { refresh_token: refreshToken },
      await refreshProof(key),
    );
    expect(res.status).toBe(200);
    return res.body as unknown as Tokens;
  }

  /** GET /todos with a bound access token, the way RFC 9449 §7.1 sends it. */
  async function getTodos(accessToken: string, proof: string | undefined, scheme = 'DPoP') {
    const response = await fetch(url('/todos'), {
      headers: { Authorization: `${scheme} ${accessToken}`, ...(proof ? { DPoP: proof } : {}) },
    });
    return received(response);
  }

  const sessionRow = async (sessionId: string) =>
    (
      await t.db.query<{ dpop_jkt: string | null; revoked_at: Date | null; generation: number }[]>(
        'SELECT dpop_jkt, revoked_at, generation FROM sessions WHERE id = $1',
        [sessionId],
      )
    )[0];

  describe('with oauth4webapi as the client', () => {
    it('publishes its proof algorithms in the metadata (RFC 9449 §5.1)', () => {
      expect(as.dpop_signing_alg_values_supported).toEqual(expect.arrayContaining(['ES256']));
      expect(as.dpop_signing_alg_values_supported).not.toContain('HS256');
    });

    it('binds a password grant, refreshes it and calls a resource with its proofs', async () => {
      const username = uniqueUsername('o4w');
      await post('/auth/register', { username, password: PASSWORD });
      const keyPair = await oauth.generateKeyPair('ES256');
      const DPoP = oauth.DPoP(app, keyPair);
      const jkt = await calculateJwkThumbprint(await exportJWK(keyPair.publicKey));

      const tokens = await oauth.processGenericTokenEndpointResponse(
        as,
        app,
        await oauth.genericTokenEndpointRequest(
          as,
          app,
          none,
          'password',
          new URLSearchParams({ username, password: PASSWORD }),
          { ...insecure, DPoP },
        ),
      );
      expect(tokens.token_type).toBe('dpop');
      expect(claimsOf(tokens.access_token).cnf).toEqual({ jkt });
      const sid = claimsOf(tokens.access_token).sid as string;
      expect((await sessionRow(sid)).dpop_jkt).toBe(jkt);

      const call = (accessToken: string) =>
        oauth.protectedResourceRequest(
          accessToken,
          'GET',
          new URL(url('/todos')),
          undefined,
          null,
          {
            ...insecure,
            DPoP,
          },
        );
      expect((await call(tokens.access_token)).status).toBe(200);

      const refreshed = await oauth.processRefreshTokenResponse(
        as,
        app,
        await oauth.refreshTokenGrantRequest(as, app, none, tokens.refresh_token!, {
          ...insecure,
          DPoP,
        }),
      );
      expect(refreshed.token_type).toBe('dpop');
      expect(refreshed.refresh_token).not.toBe(tokens.refresh_token);
      expect(claimsOf(refreshed.refresh_token!).cnf).toEqual({ jkt });
      expect((await call(refreshed.access_token)).status).toBe(200);

      // The same refresh token without the key: refused, and the session lives on.
      const stolen = await oauth.refreshTokenGrantRequest(
        as,
        app,
        none,
        refreshed.refresh_token!,
        insecure,
      );
      expect(stolen.status).toBe(400);
      expect(await stolen.json()).toMatchObject({ error: 'invalid_dpop_proof' });
      const after = await oauth.processRefreshTokenResponse(
        as,
        app,
        await oauth.refreshTokenGrantRequest(as, app, none, refreshed.refresh_token!, {
          ...insecure,
          DPoP,
        }),
      );
      expect((await call(after.access_token)).status).toBe(200);
    });
  });

  describe('on the JSON routes', () => {
    it('binds login and register, answers token_type DPoP, and keeps unbound sessions as they were', async () => {
      const key = await newProofKey();
      const tokens = await boundSession(key);
      expect(tokens.token_type).toBe('DPoP');
      expect(claimsOf(tokens.access_token).cnf).toEqual({ jkt: key.jkt });
      expect(claimsOf(tokens.refresh_token).cnf).toEqual({ jkt: key.jkt });

      const plain = await post('/auth/register', {
        username: uniqueUsername(),
        password: PASSWORD,
      });
      expect(plain.body.token_type).toBe('Bearer');
      expect(claimsOf(plain.body.access_token as string)).not.toHaveProperty('cnf');
      expect(claimsOf(plain.body.refresh_token as string)).not.toHaveProperty('cnf');
      const todos = await t
        .http()
        .get('/todos')
        .set(bearer(plain.body.access_token as string));
      expect(todos.status).toBe(200);
      // An unbound token is a bearer token: the DPoP scheme is refused for it.
      const asDpop = await getTodos(
        plain.body.access_token as string,
        await dpopProof(key, {
          htm: 'GET',
          htu: url('/todos'),
          accessToken: plain.body.access_token as string,
        }),
      );
      expectError(asDpop, 401, 'invalid_dpop_proof');
    });

    it('accepts a bound access token only as DPoP, with a proof of its key over its hash', async () => {
      const key = await newProofKey();
      const { access_token: token } = await boundSession(key);
      const good = (extra: Partial<ProofOptions> = {}) =>
        dpopProof(key, { htm: 'GET', htu: url('/todos'), accessToken: token, ...extra });

      expect((await getTodos(token, await good())).status).toBe(200);
      // Query strings are not part of htu (RFC 9449 §4.3 check 9).
      const withQuery = await fetch(url('/todos?limit=5'), {
        headers: { Authorization: `DPoP ${token}`, DPoP: await good() },
      });
      expect(withQuery.status).toBe(200);

      const refusals: Array<[string, Promise<Received>]> = [
        ['as Bearer, with a proof', getTodos(token, await good(), 'Bearer')],
        ['as Bearer, without a proof', getTodos(token, undefined, 'Bearer')],
        ['without a proof', getTodos(token, undefined)],
        ['without ath', getTodos(token, await good({ claims: { ath: undefined } }))],
        [
          'with the ath of another token',
          getTodos(token, await good({ accessToken: `${token}x` })),
        ],
        [
          'signed by another key',
          getTodos(
            token,
            await dpopProof(await newProofKey(), {
              htm: 'GET',
              htu: url('/todos'),
              accessToken: token,
            }),
          ),
        ],
        ['for another method', getTodos(token, await good({ htm: 'POST' }))],
        ['for another URL', getTodos(token, await good({ htu: url('/users/me') }))],
      ];
      for (const [, pending] of refusals) {
        const res = await pending;
        expectError(res, 401, 'invalid_dpop_proof');
        expect(res.headers['www-authenticate']).toMatch(/^DPoP .*error="invalid_dpop_proof"/);
      }
      // None of that touched the session.
      expect((await getTodos(token, await good())).status).toBe(200);
    });

    /** lineage_dpop_refusals_total for `place` and `reason`, as this instance's /metrics shows it. */
    async function refusalsCounted(place: string, reason: string): Promise<number> {
      const text = await (await fetch(url('/metrics'))).text();
      const line = text
        .split('\n')
        .find((l) =>
          l.startsWith(`lineage_dpop_refusals_total{place="${place}",reason="${reason}"}`),
        );
      return line ? Number(line.split(' ').pop()) : 0;
    }

    it('refuses every forged or broken refresh proof without rotating or ending the session', async () => {
      const missingBefore = await refusalsCounted('refresh', 'missing');
      const key = await newProofKey();
      const tokens = await boundSession(key);
      const sid = claimsOf(tokens.access_token).sid as string;
      const reused = await refreshProof(key);
      const rotated = await post('/auth/refresh', { refresh_token: tokens.refresh_token }, reused);
      expect(rotated.status).toBe(200);
      // The newest token, held by its owner; the forgeries below present it.
      const current = rotated.body.refresh_token as string;
      const now = Math.floor(Date.now() / 1000);
      const htu = url('/auth/refresh');
      const privateJwk = await exportJWK(key.privateKey);
      const forged: Array<[string, string | undefined]> = [
        ['no proof', undefined],
        ['wrong htm', await refreshProof(key, { htm: 'PUT' })],
        ['wrong htu', await refreshProof(key, { htu: url('/auth/login') })],
        [
          'htu of another host',
          await refreshProof(key, { htu: 'https://evil.example/auth/refresh' }),
        ],
        ['iat too old', await refreshProof(key, { claims: { iat: now - 600 } })],
        ['iat in the future', await refreshProof(key, { claims: { iat: now + 120 } })],
        ['jti replayed', reused],
        ['another key', await refreshProof(await newProofKey())],
        ['a private key in the header', await refreshProof(key, { header: { jwk: privateJwk } })],
        ['alg none', unsignedProof(key, { htm: 'POST', htu })],
        ['HS256', await hmacProof({ htm: 'POST', htu })],
        ['typ JWT', await refreshProof(key, { header: { typ: 'JWT' } })],
        ['no jti', await refreshProof(key, { claims: { jti: undefined } })],
        ['not a JWS', 'not.a.proof'],
      ];
      for (const [name, proof] of forged) {
        const res = await post('/auth/refresh', { refresh_token: current }, proof);
        expect([name, res.status, res.body.code]).toEqual([name, 400, 'invalid_dpop_proof']);
      }
      const row = await sessionRow(sid);
      expect(row.revoked_at).toBeNull();
      // Each refusal is on the account's record, with why.
      const events = await t.db.query<{ reason: string }[]>(
        `SELECT reason FROM auth_events WHERE session_id = $1 AND type = 'dpop_proof_refused'`,
        [sid],
      );
      expect(events).toHaveLength(forged.length);
      expect(events.map((e) => e.reason)).toEqual(
        expect.arrayContaining([
          'missing',
          'htm',
          'htu',
          'iat',
          'replayed',
          'key_mismatch',
          'header',
        ]),
      );
      expect(await refusalsCounted('refresh', 'missing')).toBe(missingBefore + 1);
      // The owner's newest token still rotates: nothing was consumed.
      const next = await refreshBound(key, current);
      expect((await sessionRow(sid)).generation).toBe(row.generation + 1);
      expect(next.token_type).toBe('DPoP');
    });

    it('never treats a replayed older token without the key as reuse (the session survives)', async () => {
      const key = await newProofKey();
      const first = await boundSession(key);
      const second = await refreshBound(key, first.refresh_token);
      const third = await refreshBound(key, second.refresh_token);
      // `first` is two generations behind: with the key it would be reuse and end the session.
      const replay = await post('/auth/refresh', { refresh_token: first.refresh_token });
      expectError(replay, 400, 'invalid_dpop_proof');
      const thief = await post(
        '/auth/refresh',
        { refresh_token: first.refresh_token },
        await refreshProof(await newProofKey()),
      );
      expectError(thief, 400, 'invalid_dpop_proof');
      const sid = claimsOf(first.access_token).sid as string;
      expect((await sessionRow(sid)).revoked_at).toBeNull();
      expect((await refreshBound(key, third.refresh_token)).token_type).toBe('DPoP');
    });

    it('lets exactly one of two parallel requests with one proof through', async () => {
      const key = await newProofKey();
      const tokens = await boundSession(key);
      const proof = await refreshProof(key);
      const results = await Promise.all(
        [0, 1].map(() => post('/auth/refresh', { refresh_token: tokens.refresh_token }, proof)),
      );
      expect(results.map((r) => r.status).sort()).toEqual([200, 400]);
      expect(results.find((r) => r.status === 400)?.body.code).toBe('invalid_dpop_proof');
    });

    (TEST_REDIS_URL ? it : it.skip)(
      TEST_REDIS_URL
        ? 'refuses a proof replayed to a second instance (the jti cache is shared)'
        : 'refuses a proof replayed to a second instance — SKIPPED: set TEST_REDIS_URL (e.g. redis://127.0.0.1:6379)',
      async () => {
        const key = await newProofKey();
        const tokens = await boundSession(key);
        const proof = await refreshProof(key);
        expect(
          (await post('/auth/refresh', { refresh_token: tokens.refresh_token }, proof)).status,
        ).toBe(200);
        const elsewhere = await post(
          '/auth/refresh',
          { refresh_token: tokens.refresh_token },
          proof,
          secondOrigin,
        );
        expectError(elsewhere, 400, 'invalid_dpop_proof');
        expect(elsewhere.body.message).toMatch(/already used/);
      },
    );

    it('revokes a bound token only with a proof of its key (RFC 7009 with RFC 9449)', async () => {
      const key = await newProofKey();
      const tokens = await boundSession(key);
      const sid = claimsOf(tokens.access_token).sid as string;
      const revoke = (proof?: string) =>
        post('/auth/revoke', { token: tokens.refresh_token }, proof);
      expectError(await revoke(), 400, 'invalid_dpop_proof');
      expectError(
        await revoke(
          await dpopProof(await newProofKey(), { htm: 'POST', htu: url('/auth/revoke') }),
        ),
        400,
        'invalid_dpop_proof',
      );
      expect((await sessionRow(sid)).revoked_at).toBeNull();
      const done = await revoke(await dpopProof(key, { htm: 'POST', htu: url('/auth/revoke') }));
      expect(done.status).toBe(200);
      expect((await sessionRow(sid)).revoked_at).not.toBeNull();
    });
  });
});

describe('DPoP with server nonces and DPOP_REQUIRED (e2e)', () => {
  let t: TestApp;
  let origin: string;
  const app: oauth.Client = { client_id: 'e2e-app' };
  const insecure = { [oauth.allowInsecureRequests]: true };

  beforeAll(async () => {
    const port = await freePort();
    origin = `http://127.0.0.1:${port}`;
    t = await startTestApp({
      PUBLIC_URL: origin,
      OAUTH_CLIENTS: app.client_id,
      DPOP_NONCE: 'true',
      DPOP_REQUIRED: 'true',
    });
    await t.app.listen({ port, host: '127.0.0.1' });
  });

  afterAll(() => t?.close());

  it('refuses a session without a proof when DPoP is required', async () => {
    const res = await fetch(`${origin}/auth/register`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ username: uniqueUsername(), password: PASSWORD }),
    });
    expectError(await received(res), 400, 'invalid_dpop_proof');
  });

  it('asks for a nonce (use_dpop_nonce) and accepts the retry that carries it (RFC 9449 §8)', async () => {
    const key = await newProofKey();
    const register = async (proof: string) =>
      received(
        await fetch(`${origin}/auth/register`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json', DPoP: proof },
          body: JSON.stringify({ username: uniqueUsername(), password: PASSWORD }),
        }),
      );
    const htu = `${origin}/auth/register`;
    const first = await register(await dpopProof(key, { htm: 'POST', htu }));
    expectError(first, 400, 'use_dpop_nonce');
    const nonce = first.headers['dpop-nonce'];
    expect(nonce).toEqual(expect.any(String));
    expectError(
      await register(await dpopProof(key, { htm: 'POST', htu, nonce: 'made-up' })),
      400,
      'use_dpop_nonce',
    );
    const retried = await register(await dpopProof(key, { htm: 'POST', htu, nonce }));
    expect(retried.status).toBe(201);
    const tokens = retried.body as unknown as Tokens;

    // On a resource the nonce challenge is a 401 with a DPoP challenge (§9).
    const call = (proof: string) =>
      fetch(`${origin}/todos`, {
        headers: { Authorization: `DPoP ${tokens.access_token}`, DPoP: proof },
      });
    const stale = await call(
      await dpopProof(key, {
        htm: 'GET',
        htu: `${origin}/todos`,
        accessToken: tokens.access_token,
      }),
    );
    expect(stale.status).toBe(401);
    expect(stale.headers.get('www-authenticate')).toMatch(/^DPoP .*error="use_dpop_nonce"/);
    const fresh = stale.headers.get('dpop-nonce')!;
    const ok = await call(
      await dpopProof(key, {
        htm: 'GET',
        htu: `${origin}/todos`,
        accessToken: tokens.access_token,
        nonce: fresh,
      }),
    );
    expect(ok.status).toBe(200);
  });

  it('lets oauth4webapi recover from use_dpop_nonce by its own retry', async () => {
    const issuer = new URL(origin);
    const as = await oauth.processDiscoveryResponse(
      issuer,
      await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...insecure }),
    );
    const keyPair = await oauth.generateKeyPair('ES256');
    const DPoP = oauth.DPoP(app, keyPair);
    const username = uniqueUsername('nonce');
    // The account, registered with a proof of another key (DPoP is required).
    const other = await newProofKey();
    const htu = `${origin}/auth/register`;
    const first = await fetch(htu, {
      method: 'POST',
      headers: {
        'Content-Type': 'application/json',
        DPoP: await dpopProof(other, { htm: 'POST', htu }),
      },
      body: JSON.stringify({ username, password: PASSWORD }),
    });
    const nonce = first.headers.get('dpop-nonce')!;
    const created = await fetch(htu, {
      method: 'POST',
      headers: {
        'Content-Type': 'application/json',
        DPoP: await dpopProof(other, { htm: 'POST', htu, nonce }),
      },
      body: JSON.stringify({ username, password: PASSWORD }),
    });
    expect(created.status).toBe(201);

    const grant = () =>
      oauth.genericTokenEndpointRequest(
        as,
        app,
        oauth.None(),
        'password',
        new URLSearchParams({ username, password: PASSWORD }),
        { ...insecure, DPoP },
      );
    let tokens: oauth.TokenEndpointResponse;
    try {
      tokens = await oauth.processGenericTokenEndpointResponse(as, app, await grant());
      throw new Error('expected the first attempt to be asked for a nonce');
    } catch (error) {
      expect(oauth.isDPoPNonceError(error)).toBe(true);
      tokens = await oauth.processGenericTokenEndpointResponse(as, app, await grant());
    }
    expect(tokens.token_type).toBe('dpop');
    const response = await oauth.protectedResourceRequest(
      tokens.access_token,
      'GET',
      new URL(`${origin}/todos`),
      undefined,
      null,
      { ...insecure, DPoP },
    );
    expect(response.status).toBe(200);
  });
});

describe('DPoP while Redis is unreachable (e2e)', () => {
  let t: TestApp;
  let origin: string;

  beforeAll(async () => {
    const [port, nobody] = [await freePort(), await freePort()];
    origin = `http://127.0.0.1:${port}`;
    // A Redis URL where nothing listens: the replay cache falls back to memory.
    t = await startTestApp({ PUBLIC_URL: origin, REDIS_URL: `redis://127.0.0.1:${nobody}` });
    await t.app.listen({ port, host: '127.0.0.1' });
  });

  afterAll(() => t?.close());

  it('still binds and refreshes, and still refuses a replay to this instance', async () => {
    const key = await newProofKey();
    const post = async (path: string, body: object, proof: string) =>
      received(
        await fetch(`${origin}${path}`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json', DPoP: proof },
          body: JSON.stringify(body),
        }),
      );
    const registered = await post(
      '/auth/register',
      { username: uniqueUsername('outage'), password: PASSWORD },
      await dpopProof(key, { htm: 'POST', htu: `${origin}/auth/register` }),
    );
    expect(registered.status).toBe(201);
    const proof = await dpopProof(key, { htm: 'POST', htu: `${origin}/auth/refresh` });
    const body = { refresh_token: registered.body.refresh_token };
    const refreshed = await post('/auth/refresh', body, proof);
    expect([refreshed.status, refreshed.body.token_type]).toEqual([200, 'DPoP']);
    expectError(await post('/auth/refresh', body, proof), 400, 'invalid_dpop_proof');
  });
});
