import { expectError } from '../support/errors.js';
import {
  bearer,
  login,
  logout,
  PASSWORD,
  refresh,
  register,
  type Tokens,
} from '../support/requests.js';
import { startTestApp, type TestApp, useTestApp } from '../support/test-app.js';

/** One sample's value from the exposition text; 0 when the series is absent. */
function sample(text: string, series: string): number {
  const line = text.split('\n').find((entry) => entry.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}

async function scrape(t: TestApp): Promise<string> {
  const res = await t.http().get('/metrics').expect(200);
  expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
  return res.text;
}

describe('observability: GET /metrics', () => {
  const t = useTestApp({ REFRESH_REUSE_GRACE: '0' });

  it('counts a detected reuse and the session it revoked', async () => {
    const user = await register(t);
    const child = await refresh(t, user.refresh_token).expect(200);
    // The child used: with no grace, the login token is now reuse.
    await refresh(t, (child.body as Tokens).refresh_token).expect(200);
    const before = await scrape(t);
    await refresh(t, user.refresh_token).expect(401);
    const after = await scrape(t);
    const reuse = 'lineage_refresh_total{outcome="reuse_detected"}';
    const revoked = 'lineage_sessions_revoked_total{reason="reuse_detected"}';
    expect(sample(after, reuse) - sample(before, reuse)).toBe(1);
    expect(sample(after, revoked) - sample(before, revoked)).toBe(1);
    const rotated = 'lineage_refresh_total{outcome="rotated"}';
    expect(sample(after, rotated)).toBe(sample(before, rotated));
  });

  it('counts rotations, refusals, logins and logouts by outcome', async () => {
    const user = await register(t);
    const before = await scrape(t);
    const fresh = await login(t, user.username);
    await t
      .http()
      .post('/auth/login')
      .send({ username: user.username, password: `${PASSWORD}!` })
      .expect(401);
    await refresh(t, fresh.refresh_token).expect(200);
    // The parent of an unused child: its child again, not a rotation.
    await refresh(t, fresh.refresh_token).expect(200);
    await refresh(t, 'not.a.jwt').expect(401);
    await logout(t, (user as Tokens).access_token).expect(200);
    const after = await scrape(t);
    const delta = (series: string) => sample(after, series) - sample(before, series);
    expect(delta('lineage_login_total{outcome="success"}')).toBe(1);
    expect(delta('lineage_login_total{outcome="failure"}')).toBe(1);
    expect(delta('lineage_refresh_total{outcome="rotated"}')).toBe(1);
    expect(delta('lineage_refresh_total{outcome="reissued"}')).toBe(1);
    expect(delta('lineage_refresh_total{outcome="invalid"}')).toBe(1);
    expect(delta('lineage_sessions_revoked_total{reason="logout"}')).toBe(1);
  });

  it('observes request latency by route pattern, not by URL', async () => {
    const user = await register(t);
    const unknownId = '00000000-0000-4000-8000-000000000000';
    await t.http().get(`/todos/${unknownId}`).set(bearer(user.access_token)).expect(404);
    const text = await scrape(t);
    const series =
      'http_request_duration_seconds_count{method="GET",route="/todos/:id",status_code="404"}';
    expect(sample(text, series)).toBeGreaterThanOrEqual(1);
    expect(text).not.toContain(unknownId);
    expect(text).toMatch(/^http_request_duration_seconds_bucket\{le="0\.005",method="GET"/m);
  });

  it('is left out of the OpenAPI document', async () => {
    const doc = (await t.http().get('/docs-json').expect(200)).body as { paths: object };
    expect(Object.keys(doc.paths)).not.toContain('/metrics');
  });
});

describe('observability: METRICS_TOKEN', () => {
  const token = 'metrics-token-0123456789abcdef';
  const t = useTestApp({ METRICS_TOKEN: token });

  it('requires the bearer token when one is configured', async () => {
    await t.http().get('/metrics').expect(401);
    await t
      .http()
      .get('/metrics')
      .set(bearer(`${token}x`))
      .expect(401);
    await t
      .http()
      .get('/metrics')
      .set(bearer(token.slice(0, -1)))
      .expect(401);
    await t.http().get('/metrics').set('Authorization', token).expect(401);
    const res = await t.http().get('/metrics').set(bearer(token)).expect(200);
    expect(res.text).toContain('lineage_login_total{outcome="success"}');
  });
});

describe('observability: /metrics in production', () => {
  const production = { NODE_ENV: 'production', PUBLIC_URL: 'https://auth.example.com' };
  const token = 'metrics-token-production-0123456789';
  let t: TestApp | undefined;

  afterAll(async () => {
    await t?.close();
  });

  it('refuses to start without METRICS_TOKEN, and then never serves metrics without it', async () => {
    await expect(startTestApp(production)).rejects.toThrow(
      /^Invalid configuration: METRICS_TOKEN is required when NODE_ENV=production/,
    );

    t = await startTestApp({ ...production, METRICS_TOKEN: token });
    expectError(await t.http().get('/metrics'), 401, 'token_invalid');
    expectError(
      await t
        .http()
        .get('/metrics')
        .set(bearer('x'.repeat(35))),
      401,
      'token_invalid',
    );
    const res = await t.http().get('/metrics').set(bearer(token)).expect(200);
    expect(res.text).toContain('lineage_login_total');
  });
});
