import type { AddressInfo } from 'node:net';
import { RevocationFeed } from '../../src/auth/oauth/revocation-feed.service.js';
import { SessionRevocations } from '../../src/auth/sessions/session-revocations.js';
import { expectError } from '../support/errors.js';
import { localPortsOf } from '../support/pg-backends.js';
import { bearer, claimsOf, login, logout, PASSWORD, register } from '../support/requests.js';
import {
  basicAuth,
  openFeed,
  type OpenFeed,
  RESOURCE_SERVER,
  RESOURCE_SERVER_ENV,
} from '../support/revocation-feed.js';
import { startTestApp, type TestApp, useTestApp } from '../support/test-app.js';
import { eventually } from '../support/time.js';

const sidOf = (accessToken: string) => claimsOf(accessToken).sid as string;

/** Starts an app that also listens on a loopback port; its origin. */
async function listening(t: TestApp): Promise<string> {
  await t.app.listen({ port: 0, host: '127.0.0.1' });
  return `http://127.0.0.1:${(t.app.getHttpServer().address() as AddressInfo).port}`;
}

/**
 * GET /oauth/revocations: resource servers that verify access tokens from the
 * JWKS learn of every ended session from it, caught up on connect and live
 * afterwards.
 */
describe('revocation feed for resource servers (e2e)', () => {
  // A short access-token lifetime, so the retention (TTL + 5 s skew, 125 s)
  // can be tested without waiting, and apart from the cursor's minute.
  const env = { ...RESOURCE_SERVER_ENV, ACCESS_TOKEN_TTL: '120' };
  const a = useTestApp(env, { listen: true });
  const b = useTestApp(env, { listen: true });
  const open: OpenFeed[] = [];

  async function follow(
    baseUrl: string,
    options: Parameters<typeof openFeed>[1] = {},
  ): Promise<OpenFeed> {
    const feed = await openFeed(baseUrl, options);
    open.push(feed);
    return feed;
  }

  afterEach(async () => {
    await Promise.all(open.splice(0).map((feed) => feed.close()));
  });

  describe('authentication (client_secret_basic)', () => {
    it.each([
      ['no credentials', undefined],
      ['a wrong secret', basicAuth(RESOURCE_SERVER.id, 'not-the-secret-0123456789abcdef01234')],
      ['an unknown id', basicAuth('nobody', RESOURCE_SERVER.secret)],
      ['malformed Basic credentials', 'Basic not-base64!'],
    ])('refuses %s: 401 invalid_client with a Basic challenge', async (_case, authorization) => {
      const req = a.http().get('/oauth/revocations');
      const res = await (authorization ? req.set('Authorization', authorization) : req);
      expectError(res, 401, 'invalid_client');
    });

    it("refuses a user's access token: the feed is for services", async () => {
      const user = await register(a);
      const res = await a.http().get('/oauth/revocations').set(bearer(user.access_token));
      expectError(res, 401, 'invalid_client');
    });

    it('refuses a `since` that is not an event id', async () => {
      const res = await a
        .http()
        .get('/oauth/revocations?since=yesterday')
        .set('Authorization', basicAuth(RESOURCE_SERVER.id, RESOURCE_SERVER.secret));
      expectError(res, 400, 'validation_failed');
    });
  });

  it('streams text/event-stream, never cached, with the usual security headers', async () => {
    const feed = await follow(a.baseUrl);
    const { headers } = feed;
    expect(headers['content-type']).toBe('text/event-stream; charset=utf-8');
    expect(headers['cache-control']).toBe('no-store');
    expect(headers['x-content-type-options']).toBe('nosniff');
    expect(headers['x-request-id']).toEqual(expect.any(String));
    await feed.caughtUp();
  });

  it('announces a logout on the instance that made it, with when its tokens stop verifying', async () => {
    const feed = await follow(a.baseUrl);
    await feed.caughtUp();
    const user = await register(a);
    await logout(a, user.access_token).expect(200);
    const event = await feed.endOf(sidOf(user.access_token));
    const endedAt = event.data.ended_at as number;
    expect(Math.abs(endedAt - Date.now() / 1000)).toBeLessThan(60);
    // ACCESS_TOKEN_TTL (120 s) plus the skew allowance (5 s).
    expect((event.data.until as number) - endedAt).toBeGreaterThanOrEqual(125);
    expect((event.data.until as number) - endedAt).toBeLessThanOrEqual(126);
    expect(Number(event.id)).toBeGreaterThan(0);
    // Announced once, although the NOTIFY reached this instance's own listener too.
    await a.http().get('/health').expect(200);
    expect(
      feed.events.filter((e) => e.data.sid === sidOf(user.access_token) && e.type !== 'caught-up'),
    ).toHaveLength(1);
  });

  it("announces another instance's logouts, through PostgreSQL's NOTIFY", async () => {
    const feed = await follow(b.baseUrl);
    await feed.caughtUp();
    const user = await register(a);
    const other = await login(a, user.username);
    await logout(a, user.access_token).expect(200);
    await a.http().post('/auth/logout-all').set(bearer(other.access_token)).expect(200);
    await feed.endOf(sidOf(user.access_token));
    await feed.endOf(sidOf(other.access_token));
  });

  it('announces the sessions of a deleted account', async () => {
    const feed = await follow(b.baseUrl);
    await feed.caughtUp();
    const user = await register(a);
    const second = await login(a, user.username);
    await a
      .http()
      .delete('/users/me')
      .set(bearer(user.access_token))
      .send({ password: PASSWORD })
      .expect(204);
    await feed.endOf(sidOf(user.access_token));
    await feed.endOf(sidOf(second.access_token));
  });

  it('catches up with Last-Event-ID: what ended while disconnected, revoked or deleted', async () => {
    const first = await follow(a.baseUrl);
    await first.caughtUp();
    const cursor = first.lastEventId;
    expect(cursor).toMatch(/^\d+$/);
    await first.close();

    const loggedOut = await register(a);
    await logout(a, loggedOut.access_token).expect(200);
    const deleted = await register(b);
    await b
      .http()
      .delete('/users/me')
      .set(bearer(deleted.access_token))
      .send({ password: PASSWORD })
      .expect(204);

    const again = await follow(b.baseUrl, { lastEventId: cursor });
    await again.caughtUp();
    const caughtUpAt = again.events.findIndex((event) => event.type === 'caught-up');
    const before = again.events.slice(0, caughtUpAt).map((event) => event.data.sid);
    expect(before).toEqual(
      expect.arrayContaining([sidOf(loggedOut.access_token), sidOf(deleted.access_token)]),
    );
    // The same with `since`, for a consumer that is not an EventSource.
    const bySince = await follow(a.baseUrl, { since: cursor });
    await bySince.endOf(sidOf(loggedOut.access_token));
    await bySince.endOf(sidOf(deleted.access_token));
  });

  it('sends nothing older than its cursor less a minute, nor than ACCESS_TOKEN_TTL plus skew', async () => {
    const [expired, older, recent] = await Promise.all([register(a), register(a), register(a)]);
    const revokeAgo = (token: string, seconds: number) =>
      a.db.query(
        `UPDATE sessions SET revoked_at = now() - make_interval(secs => $2), revoked_reason = 'logout'
          WHERE id = $1`,
        [sidOf(token), seconds],
      );
    // Past the retention (125 s): every access token of it has expired.
    await revokeAgo(expired.access_token, 200);
    // Within the retention, but more than a minute before a cursor of now.
    await revokeAgo(older.access_token, 90);
    await revokeAgo(recent.access_token, 30);
    const sentBy = async (options: Parameters<typeof openFeed>[1]) => {
      const feed = await follow(a.baseUrl, options);
      await feed.caughtUp();
      return feed.events.map((event) => event.data.sid);
    };
    const [expiredSid, olderSid, recentSid] = [expired, older, recent].map((user) =>
      sidOf(user.access_token),
    );

    const whole = await sentBy({});
    expect(whole).toEqual(expect.arrayContaining([olderSid, recentSid]));
    expect(whole).not.toContain(expiredSid);

    const fromNow = await sentBy({ lastEventId: String(Date.now()) });
    expect(fromNow).toContain(recentSid);
    expect(fromNow).not.toContain(olderSid);
    expect(fromNow).not.toContain(expiredSid);

    // A cursor from the future (a clock ahead) counts as now.
    const fromLater = await sentBy({ lastEventId: String(Date.now() + 600_000) });
    expect(fromLater).toContain(recentSid);
    expect(fromLater).not.toContain(olderSid);

    // A cursor older than the retention is the whole retention.
    const fromLongAgo = await sentBy({ since: String(Date.now() - 3_600_000) });
    expect(fromLongAgo).toEqual(expect.arrayContaining([olderSid, recentSid]));
    expect(fromLongAgo).not.toContain(expiredSid);
  });

  it('counts its consumers by resource server', async () => {
    const metric = `lineage_revocation_feed_consumers{resource_server="${RESOURCE_SERVER.id}"}`;
    const consumers = async () => {
      const text = (await a.http().get('/metrics').expect(200)).text;
      const line = text.split('\n').find((entry) => entry.startsWith(`${metric} `));
      return Number(line?.slice(metric.length + 1));
    };
    const baseline = await consumers();
    const feed = await follow(a.baseUrl);
    await feed.caughtUp();
    expect(await consumers()).toBe(baseline + 1);
    await feed.close();
    // The server learns of the disconnect when the socket closes.
    expect(
      await eventually('the consumer to be gone', async () => (await consumers()) === baseline),
    ).toBe(true);
    expect(a.app.get(RevocationFeed).openStreams).toBe(0);
  });

  it('sends a heartbeat while nothing ends', async () => {
    const feed = await follow(a.baseUrl);
    await feed.caughtUp();
    await eventually('a heartbeat', () => feed.comments.includes('ping'), { timeoutMs: 15_000 });
  });
});

/** Instances of their own: what ends a stream (a lost LISTEN, a shutdown). */
describe('revocation feed: when the server ends the stream (e2e)', () => {
  /** The session-feed backends of this process (pg_stat_activity pids). */
  async function feedBackendsOfThisProcess(t: TestApp): Promise<number[]> {
    const ports = await localPortsOf(process.pid);
    const rows = await t.db.query<{ pid: number; client_port: number }[]>(
      `SELECT pid, client_port FROM pg_stat_activity
        WHERE application_name = 'lineage-session-feed' AND datname = current_database()`,
    );
    return rows.filter((row) => ports.has(row.client_port)).map((row) => row.pid);
  }

  const describeOnLinux = process.platform === 'linux' ? it : it.skip;

  describeOnLinux(
    'ends every stream when its own LISTEN connection is lost; the consumer catches up once it is back',
    async () => {
      const before = await startTestApp(RESOURCE_SERVER_ENV);
      const known = new Set(await feedBackendsOfThisProcess(before));
      const t = await startTestApp(RESOURCE_SERVER_ENV);
      try {
        const baseUrl = await listening(t);
        const mine = (await feedBackendsOfThisProcess(t)).filter((pid) => !known.has(pid));
        expect(mine).toHaveLength(1);
        await before.close();

        const feed = await openFeed(baseUrl);
        await feed.caughtUp();
        const cursor = feed.lastEventId;
        await t.db.query('SELECT pg_terminate_backend($1)', [mine[0]]);
        expect(await feed.ended).toBeNull();

        // Ended behind the instance's back while it reconnects: only the tables know.
        const user = await register(t);
        await t.db.query(
          `UPDATE sessions SET revoked_at = now(), revoked_reason = 'logout' WHERE id = $1`,
          [sidOf(user.access_token)],
        );
        const revocations = t.app.get(SessionRevocations);
        await eventually('the view to resync', () => revocations.isReady);
        const again = await openFeed(baseUrl, { lastEventId: cursor });
        try {
          await again.endOf(sidOf(user.access_token));
        } finally {
          await again.close();
        }
      } finally {
        await t.close();
      }
    },
  );

  it('refuses new streams while its view resyncs: 503 with Retry-After', async () => {
    const t = await startTestApp(RESOURCE_SERVER_ENV);
    try {
      const revocations = t.app.get(SessionRevocations);
      Object.defineProperty(revocations, 'isReady', { get: () => false, configurable: true });
      const res = await t
        .http()
        .get('/oauth/revocations')
        .set('Authorization', basicAuth(RESOURCE_SERVER.id, RESOURCE_SERVER.secret));
      expectError(res, 503, 'service_unavailable');
      expect(res.headers['retry-after']).toBe('1');
    } finally {
      await t.close();
    }
  });

  it('ends open streams when the app closes, so closing does not wait for them', async () => {
    const t = await startTestApp(RESOURCE_SERVER_ENV);
    const baseUrl = await listening(t);
    const feeds = await Promise.all([openFeed(baseUrl), openFeed(baseUrl)]);
    await Promise.all(feeds.map((feed) => feed.caughtUp()));
    await t.close();
    for (const feed of feeds) expect(await feed.ended).toBeNull();
  });
});
