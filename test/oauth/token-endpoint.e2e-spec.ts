import { expectError } from '../support/errors.js';
import {
  bearer,
  claimsOf,
  listEvents,
  PASSWORD,
  refresh,
  register,
  todos,
  type Tokens,
} from '../support/requests.js';
import { useTestApp } from '../support/test-app.js';

const FORM = 'application/x-www-form-urlencoded';

/**
 * POST /oauth/token on the wire (RFC 6749 §3.2, §4.3, §5, §6): what a client
 * library would not send on its own, and how it shares everything with the
 * JSON routes.
 */
describe('OAuth token endpoint (e2e)', () => {
  const t = useTestApp({ OAUTH_CLIENTS: 'web-app,cli' });

  const token = (body: Record<string, string> | string) =>
    t
      .http()
      .post('/oauth/token')
      .type(FORM)
      .send(typeof body === 'string' ? body : new URLSearchParams(body).toString());

  const passwordGrant = (username: string, extra: Record<string, string> = {}) =>
    token({ grant_type: 'password', client_id: 'web-app', username, password: PASSWORD, ...extra });

  it('answers a password grant as RFC 6749 §5.1 says, never cached', async () => {
    const { username } = await register(t);
    const res = await passwordGrant(username).expect(200);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.headers.pragma).toBe('no-cache');
    const tokens = res.body as Tokens & Record<string, unknown>;
    expect(Object.keys(tokens).sort()).toEqual(
      ['access_token', 'expires_in', 'refresh_expires_in', 'refresh_token', 'token_type'].sort(),
    );
    expect(tokens).toMatchObject({ token_type: 'Bearer', expires_in: 900 });
    expect(claimsOf(tokens.access_token)).toMatchObject({ client_id: 'web-app' });
    await todos(t, tokens.access_token).expect(200);
  });

  it('takes the client in HTTP Basic with an empty secret, as Swagger UI sends it', async () => {
    const { username } = await register(t);
    const basic = `Basic ${Buffer.from('cli:').toString('base64')}`;
    const res = await token({ grant_type: 'password', username, password: PASSWORD })
      .set('Authorization', basic)
      .expect(200);
    expect(claimsOf((res.body as Tokens).access_token)).toMatchObject({ client_id: 'cli' });
  });

  it('records the login and the refresh as the JSON routes do', async () => {
    const { username } = await register(t);
    const first = (await passwordGrant(username).expect(200)).body as Tokens;
    await token({
      grant_type: 'refresh_token',
      client_id: 'web-app',
      refresh_token: first.refresh_token,
    }).expect(200);
    const types = (await listEvents(t, first.access_token)).map((event) => event.type);
    expect(types).toEqual(expect.arrayContaining(['registered', 'login_succeeded']));
  });

  it('a refresh token from either route refreshes at the other', async () => {
    const json = await register(t);
    // JSON login → OAuth refresh: a session of the JSON routes names no client.
    const viaOAuth = await token({
      grant_type: 'refresh_token',
      client_id: 'cli',
      refresh_token: json.refresh_token,
    }).expect(200);
    const rotated = viaOAuth.body as Tokens;
    expect(claimsOf(rotated.access_token)).not.toHaveProperty('client_id');
    // OAuth login → JSON refresh: the client stays on the session's tokens.
    const oauthLogin = (await passwordGrant(json.username).expect(200)).body as Tokens;
    const viaJson = await refresh(t, oauthLogin.refresh_token).expect(200);
    expect(claimsOf((viaJson.body as Tokens).refresh_token)).toMatchObject({
      client_id: 'web-app',
    });
    expect(claimsOf((viaJson.body as Tokens).access_token)).toMatchObject({ client_id: 'web-app' });
    // And the rotation rule spans both: the OAuth-rotated token's parent gets it back.
    const again = await refresh(t, json.refresh_token).expect(200);
    expect((again.body as Tokens).refresh_token).toBe(rotated.refresh_token);
  });

  it.each([
    ['no grant_type', { client_id: 'web-app' }, 400, 'invalid_request', 'validation_failed'],
    [
      'an unknown grant',
      { client_id: 'web-app', grant_type: 'client_credentials' },
      400,
      'unsupported_grant_type',
      'unsupported_grant_type',
    ],
    [
      'no client',
      { grant_type: 'password', username: 'x', password: 'y' },
      401,
      'invalid_client',
      'invalid_client',
    ],
    [
      'an unlisted client',
      { grant_type: 'password', client_id: 'other', username: 'x', password: 'y' },
      401,
      'invalid_client',
      'invalid_client',
    ],
    [
      'a client secret',
      {
        grant_type: 'password',
        client_id: 'web-app',
        client_secret: 's',
        username: 'x',
        password: 'y',
      },
      401,
      'invalid_client',
      'invalid_client',
    ],
    [
      'no password',
      { grant_type: 'password', client_id: 'web-app', username: 'x' },
      400,
      'invalid_request',
      'validation_failed',
    ],
    [
      'no refresh token',
      { grant_type: 'refresh_token', client_id: 'web-app' },
      400,
      'invalid_request',
      'validation_failed',
    ],
    [
      'a refresh token that is not one',
      { grant_type: 'refresh_token', client_id: 'web-app', refresh_token: 'a.b.c' },
      400,
      'invalid_grant',
      'token_invalid',
    ],
  ] as const)('answers %s with %s %s', async (_case, body, status, error, code) => {
    const res = await token(body);
    expect(expectError(res, status, code)).toMatchObject({ error });
  });

  it('refuses a repeated parameter (RFC 6749 §3.1) and ignores unknown ones', async () => {
    const { username } = await register(t);
    const base = `grant_type=password&client_id=web-app&username=${username}&password=${encodeURIComponent(PASSWORD)}`;
    const repeated = await token(`${base}&grant_type=password`);
    expect(expectError(repeated, 400, 'validation_failed')).toMatchObject({
      error: 'invalid_request',
      error_description: 'grant_type must not be repeated',
    });
    // An empty value is an absent one (§3.1): scope= is what Swagger UI sends.
    await token(`${base}&scope=&unknown=ignored`).expect(200);
  });

  it('takes forms only: JSON here is invalid_request, and a form anywhere else is 415', async () => {
    const { username } = await register(t);
    const json = await t
      .http()
      .post('/oauth/token')
      .send({ grant_type: 'password', client_id: 'web-app', username, password: PASSWORD });
    expect(expectError(json, 400, 'bad_request')).toMatchObject({ error: 'invalid_request' });
    const form = await t
      .http()
      .post('/auth/login')
      .type(FORM)
      .send(new URLSearchParams({ username, password: PASSWORD }).toString());
    expectError(form, 415, 'unsupported_media_type');
  });

  it('a refresh token of another client is refused without touching the session', async () => {
    const { username } = await register(t);
    const tokens = (await passwordGrant(username).expect(200)).body as Tokens;
    const res = await token({
      grant_type: 'refresh_token',
      client_id: 'cli',
      refresh_token: tokens.refresh_token,
    });
    expect(expectError(res, 400, 'token_invalid')).toMatchObject({ error: 'invalid_grant' });
    await todos(t, tokens.access_token).expect(200);
    await token({
      grant_type: 'refresh_token',
      client_id: 'web-app',
      refresh_token: tokens.refresh_token,
    }).expect(200);
  });

  it('lists the client on the session, for the user to see which app holds it', async () => {
    const { username, access_token } = await register(t);
    await passwordGrant(username).expect(200);
    const res = await t.http().get('/auth/sessions').set(bearer(access_token)).expect(200);
    const clients = (res.body as { client_id: string | null }[]).map((s) => s.client_id).sort();
    expect(clients).toEqual(['web-app', null].sort());
  });
});

describe('OAuth token endpoint under real rate limits (e2e)', () => {
  const t = useTestApp({ RATE_LIMIT_PER_IP: '3', OAUTH_CLIENTS: 'web-app' });

  it('a password grant spends the same per-address budget as POST /auth/login', async () => {
    const { username } = await register(t);
    await t.http().post('/auth/login').send({ username, password: PASSWORD }).expect(200);
    const grant = () =>
      t
        .http()
        .post('/oauth/token')
        .type(FORM)
        .send(
          new URLSearchParams({
            grant_type: 'password',
            client_id: 'web-app',
            username,
            password: PASSWORD,
          }).toString(),
        );
    await grant().expect(200);
    await grant().expect(200);
    // The fourth login of the window, whichever route it takes.
    const limited = await grant();
    expectError(limited, 429, 'rate_limited');
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    expectError(
      await t.http().post('/auth/login').send({ username, password: PASSWORD }),
      429,
      'rate_limited',
    );
  });
});
