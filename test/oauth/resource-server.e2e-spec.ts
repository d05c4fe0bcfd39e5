import { setTimeout as sleep } from 'node:timers/promises';
import { dpopProof, newProofKey, type ProofKey, type ProofOptions } from '../support/dpop.js';
import { logout, PASSWORD, register, type Tokens, uniqueUsername } from '../support/requests.js';
import {
  buildClient,
  type ResourceServerProcess,
  startResourceServer,
} from '../support/resource-server-process.js';
import { RESOURCE_SERVER, RESOURCE_SERVER_ENV } from '../support/revocation-feed.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';
import { useTestApp } from '../support/test-app.js';
import { eventually } from '../support/time.js';

/**
 * The product's promise for resource servers that follow the revocation
 * feed: a token is refused within a second of its session's logout.
 */
const LOGOUT_CONTRACT_MS = 1_000;
const POLL_MS = 20;

/**
 * Polls `rs` with `token` from `since` until it is refused as `session_ended`,
 * for at most LOGOUT_CONTRACT_MS; with `neverAccepted`, not accepted in the
 * meantime either (fail-closed, while its feed catches up). Returns how long
 * it took (reported, not judged beyond the contract).
 */
async function refusedWithinContract(
  rs: ResourceServerProcess,
  token: string,
  since: number,
  neverAccepted = false,
): Promise<number> {
  const seen: string[] = [];
  for (;;) {
    const { status, code } = await rs.call(token);
    const elapsed = Date.now() - since;
    if (status === 401 && code === 'session_ended') return elapsed;
    seen.push(`${status} ${code ?? ''}`.trim());
    if (neverAccepted) expect(status).not.toBe(200);
    if (elapsed > LOGOUT_CONTRACT_MS) {
      throw new Error(`still not refused ${elapsed} ms later (answers: ${seen.join(', ')})`);
    }
    await sleep(POLL_MS);
  }
}

/** Waits until the resource server accepts `token` (its feed up again). */
async function acceptedBy(rs: ResourceServerProcess, token: string): Promise<void> {
  await eventually('the token to be accepted', async () => (await rs.call(token)).status === 200, {
    timeoutMs: 15_000,
    intervalMs: 50,
  });
}

function report(what: string, ms: number): void {
  process.stdout.write(`  ${what}: ${ms} ms\n`);
}

/**
 * A separate Node process, as another team's service: it verifies Lineage's
 * access tokens with the built @lineage/client verifier (JWKS signatures,
 * plus the revocation feed) and reaches the feed through a TCP proxy that
 * the test breaks on purpose. The JWK Set is fetched directly.
 */
describe('a resource server following the revocation feed (separate process, e2e)', () => {
  let failClosed: ResourceServerProcess | undefined;
  let failOpen: ResourceServerProcess | undefined;
  let closedProxy: TcpProxy | undefined;
  let openProxy: TcpProxy | undefined;

  // Declared before the app: the processes and proxies go first, then the
  // app can close without connections held open through them.
  afterAll(async () => {
    await Promise.all([failClosed?.stop(), failOpen?.stop()]);
    await Promise.all([closedProxy?.close(), openProxy?.close()]);
  });

  const t = useTestApp(RESOURCE_SERVER_ENV, { listen: true });

  beforeAll(async () => {
    await buildClient();
    const metadata = await t.http().get('/.well-known/oauth-authorization-server').expect(200);
    const lineagePort = new URL(t.baseUrl).port;
    closedProxy = await startTcpProxy(Number(lineagePort));
    openProxy = await startTcpProxy(Number(lineagePort));
    const env = (proxy: TcpProxy, policy: string) => ({
      LINEAGE_URL: t.baseUrl,
      FEED_URL: `${proxy.url}/oauth/revocations`,
      ISSUER: (metadata.body as { issuer: string }).issuer,
      AUDIENCE: 'lineage-api',
      RESOURCE_SERVER_ID: RESOURCE_SERVER.id,
      RESOURCE_SERVER_SECRET: RESOURCE_SERVER.secret,
      ON_FEED_DOWN: policy,
      MAX_FEED_SILENCE_MS: '4000',
      // Reconnects are tried often here, so a restored feed is measured rather than the backoff.
      RECONNECT_MAX_MS: '250',
    });
    [failClosed, failOpen] = await Promise.all([
      startResourceServer(env(closedProxy, 'fail-closed')),
      startResourceServer(env(openProxy, 'fail-open')),
    ]);
    for (const rs of [failClosed, failOpen]) {
      await eventually('the feed to be up', () => rs.feedUp(), { timeoutMs: 20_000 });
    }
  }, 90_000);

  const closed = () => failClosed!;
  const open = () => failOpen!;

  it('accepts a DPoP-bound token only with a fresh proof of its key (RFC 9449 §7.1)', async () => {
    const key = await newProofKey();
    const registered = await t
      .http()
      .post('/auth/register')
      .set('DPoP', await dpopProof(key, { htm: 'POST', htu: `${t.baseUrl}/auth/register` }))
      .send({ username: uniqueUsername('rs'), password: PASSWORD })
      .expect(201);
    const token = (registered.body as Tokens).access_token;
    const rs = closed();
    const proof = (extra: Partial<ProofOptions> = {}, by: ProofKey = key) =>
      dpopProof(by, { htm: 'GET', htu: `${rs.url}/protected`, accessToken: token, ...extra });
    const good = await proof();
    expect(await rs.call(token, { scheme: 'DPoP', proof: good })).toEqual({ status: 200 });
    const refused = { status: 401, code: 'invalid_dpop_proof' };
    expect(await rs.call(token, { scheme: 'DPoP', proof: good })).toEqual(refused);
    expect(await rs.call(token)).toEqual(refused);
    expect(await rs.call(token, { scheme: 'DPoP' })).toEqual(refused);
    for (const forged of [
      await proof({}, await newProofKey()),
      await proof({ accessToken: `${token}x` }),
      await proof({ htm: 'POST' }),
      await proof({ htu: `${t.baseUrl}/protected` }),
      await proof({ claims: { iat: Math.floor(Date.now() / 1000) - 600 } }),
    ]) {
      expect(await rs.call(token, { scheme: 'DPoP', proof: forged })).toEqual(refused);
    }
    // An unbound token is a bearer token only.
    const plain = await register(t);
    expect(
      await rs.call(plain.access_token, {
        scheme: 'DPoP',
        proof: await dpopProof(key, {
          htm: 'GET',
          htu: `${rs.url}/protected`,
          accessToken: plain.access_token,
        }),
      }),
    ).toEqual(refused);
    expect(await rs.call(token, { scheme: 'DPoP', proof: await proof() })).toEqual({ status: 200 });
  });

  it("accepts a live session's token on its signature, and refuses what is not a Lineage token", async () => {
    const user = await register(t);
    for (const rs of [closed(), open()]) {
      expect(await rs.call(user.access_token)).toEqual({ status: 200 });
      const [header, payload] = user.access_token.split('.');
      expect(await rs.call(`${header}.${payload}.AAAA`)).toEqual({
        status: 401,
        code: 'token_invalid',
      });
    }
  });

  it('refuses a token within a second of its logout', async () => {
    const user = await register(t);
    await acceptedBy(closed(), user.access_token);
    await acceptedBy(open(), user.access_token);
    await logout(t, user.access_token).expect(200);
    const loggedOutAt = Date.now();
    const [closedMs, openMs] = await Promise.all([
      refusedWithinContract(closed(), user.access_token, loggedOutAt),
      refusedWithinContract(open(), user.access_token, loggedOutAt),
    ]);
    report(
      'refused after the logout response (fail-closed, fail-open)',
      Math.max(closedMs, openMs),
    );
  });

  it('feed cut: fail-closed refuses every token, fail-open accepts; a logout made meanwhile is refused within a second of the feed coming back', async () => {
    const live = await register(t);
    const duringOutage = await register(t);
    for (const rs of [closed(), open()]) await acceptedBy(rs, live.access_token);

    for (const proxy of [closedProxy!, openProxy!]) {
      proxy.refuse(true);
      proxy.cut();
    }
    // Fail-closed: a session that ends now would go unnoticed, so nothing is accepted.
    await eventually(
      'the fail-closed server to refuse while its feed is down',
      async () => {
        const res = await closed().call(live.access_token);
        return res.status === 503 && res.code === 'revocation_feed_down';
      },
      { timeoutMs: 10_000 },
    );
    await logout(t, duringOutage.access_token).expect(200);
    // Down for a while: several reconnections refused.
    await eventually('reconnections to be refused', () =>
      [closedProxy!, openProxy!].every((proxy) => proxy.refused >= 3),
    );
    expect(await closed().call(live.access_token)).toEqual({
      status: 503,
      code: 'revocation_feed_down',
    });
    expect(await closed().call(duringOutage.access_token)).toEqual({
      status: 503,
      code: 'revocation_feed_down',
    });
    // Fail-open: signatures alone, so the session that ended meanwhile still passes.
    expect(await open().call(live.access_token)).toEqual({ status: 200 });
    expect(await open().call(duringOutage.access_token)).toEqual({ status: 200 });

    for (const proxy of [closedProxy!, openProxy!]) proxy.refuse(false);
    const restoredAt = Date.now();
    const [closedMs, openMs] = await Promise.all([
      refusedWithinContract(closed(), duringOutage.access_token, restoredAt, true),
      refusedWithinContract(open(), duringOutage.access_token, restoredAt),
    ]);
    report(
      'a logout made during the outage, refused after the feed came back (fail-closed, fail-open)',
      Math.max(closedMs, openMs),
    );
    for (const rs of [closed(), open()]) await acceptedBy(rs, live.access_token);

    // And right after: live again.
    const next: Tokens = await register(t);
    for (const rs of [closed(), open()]) await acceptedBy(rs, next.access_token);
    await logout(t, next.access_token).expect(200);
    const loggedOutAt = Date.now();
    await Promise.all([
      refusedWithinContract(closed(), next.access_token, loggedOutAt),
      refusedWithinContract(open(), next.access_token, loggedOutAt),
    ]);
  }, 60_000);

  it('a feed that goes silent counts as down once past maxFeedSilence, and recovers', async () => {
    const user = await register(t);
    await acceptedBy(closed(), user.access_token);
    closedProxy!.silence(true);
    try {
      await eventually(
        'the silent feed to count as down',
        async () => (await closed().call(user.access_token)).status === 503,
        { timeoutMs: 20_000, intervalMs: 100 },
      );
    } finally {
      closedProxy!.silence(false);
    }
    await acceptedBy(closed(), user.access_token);
  }, 60_000);
});
