import * as oauth from 'oauth4webapi';
import * as client from 'openid-client';
import { freePort } from '../support/app-process.js';
import { claimsOf, PASSWORD, register, uniqueUsername } from '../support/requests.js';
import { startTestApp, type TestApp } from '../support/test-app.js';

/**
 * Lineage through OAuth 2 client libraries nobody on this team wrote:
 * oauth4webapi (panva's low-level RFC 6749/7009/7662/8414 client) and
 * openid-client (its high-level sibling), over real HTTP.
 */
describe('standard OAuth 2 clients (e2e)', () => {
  let t: TestApp;
  let issuer: URL;
  let as: oauth.AuthorizationServer;
  const app: oauth.Client = { client_id: 'e2e-app' };
  const none = oauth.None();
  const insecure = { [oauth.allowInsecureRequests]: true };
  // A resource server, which introspects with client_secret_basic.
  const API_SECRET = 'resource-server-secret-of-32-chars!';
  const api: oauth.Client = { client_id: 'e2e-api' };

  async function introspect(token: string, secret = API_SECRET) {
    return oauth.processIntrospectionResponse(
      as,
      api,
      await oauth.introspectionRequest(as, api, oauth.ClientSecretBasic(secret), token, insecure),
    );
  }

  beforeAll(async () => {
    const port = await freePort();
    issuer = new URL(`http://127.0.0.1:${port}`);
    t = await startTestApp({
      PUBLIC_URL: issuer.origin,
      OAUTH_CLIENTS: 'e2e-app,other-app',
      RESOURCE_SERVERS: `${api.client_id}:${API_SECRET}`,
    });
    await t.app.listen({ port, host: '127.0.0.1' });
    const response = await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...insecure });
    as = await oauth.processDiscoveryResponse(issuer, response);
  });

  afterAll(() => t?.close());

  const passwordGrant = (username: string, password: string, who: oauth.Client = app) =>
    oauth.genericTokenEndpointRequest(
      as,
      who,
      none,
      'password',
      new URLSearchParams({ username, password }),
      insecure,
    );

  async function logIn(username: string, who: oauth.Client = app) {
    return oauth.processGenericTokenEndpointResponse(
      as,
      who,
      await passwordGrant(username, PASSWORD, who),
    );
  }

  async function refreshWith(token: string, who: oauth.Client = app) {
    return oauth.processRefreshTokenResponse(
      as,
      who,
      await oauth.refreshTokenGrantRequest(as, who, none, token, insecure),
    );
  }

  /** The status of GET /todos; oauth4webapi raises a 401's RFC 6750 challenge as an error. */
  async function todos(accessToken: string): Promise<number> {
    try {
      const response = await oauth.protectedResourceRequest(
        accessToken,
        'GET',
        new URL('/todos', issuer),
        undefined,
        undefined,
        insecure,
      );
      return response.status;
    } catch (error) {
      if (!(error instanceof oauth.WWWAuthenticateChallengeError)) throw error;
      expect(error.cause[0]).toMatchObject({ scheme: 'bearer' });
      return error.status;
    }
  }

  /**
   * The OAuth error a library raised for a refused request: from the body
   * (RFC 6749 §5.2), or for a 401 from the Basic challenge and then the body.
   */
  async function oauthError(attempt: Promise<unknown>): Promise<Record<string, unknown>> {
    const error = await attempt.then(
      () => undefined,
      (thrown: unknown) => thrown,
    );
    if (error instanceof oauth.WWWAuthenticateChallengeError) {
      expect(error.cause[0]).toMatchObject({ scheme: 'basic' });
      const body = (await error.response.json()) as Record<string, unknown>;
      return { status: error.status, error: body.error, code: body.code };
    }
    expect(error).toBeInstanceOf(oauth.ResponseBodyError);
    const { status, error: code, cause } = error as oauth.ResponseBodyError;
    return { status, error: code, code: (cause as { code?: unknown }).code };
  }

  it('discovers the metadata (RFC 8414) and trusts what it says', () => {
    expect(as).toMatchObject({
      issuer: issuer.origin,
      token_endpoint: `${issuer.origin}/oauth/token`,
      revocation_endpoint: `${issuer.origin}/auth/revoke`,
      introspection_endpoint: `${issuer.origin}/oauth/introspect`,
      jwks_uri: `${issuer.origin}/.well-known/jwks.json`,
      grant_types_supported: ['password', 'refresh_token'],
      token_endpoint_auth_methods_supported: ['none'],
    });
    expect(as).not.toHaveProperty('registration_endpoint');
  });

  it('logs in with the password grant and calls /todos with the bearer token', async () => {
    const { username } = await register(t);
    const tokens = await logIn(username);
    expect(tokens).toMatchObject({ token_type: 'bearer', expires_in: 900 });
    expect(typeof tokens.refresh_token).toBe('string');
    expect(await todos(tokens.access_token)).toBe(200);
    // The session names the app that holds it; a JSON-route login names none.
    const sessions = (await oauth
      .protectedResourceRequest(
        tokens.access_token,
        'GET',
        new URL('/auth/sessions', issuer),
        undefined,
        undefined,
        insecure,
      )
      .then((response) => response.json())) as { client_id: string | null; current: boolean }[];
    expect(sessions).toEqual([
      expect.objectContaining({ client_id: 'e2e-app', current: true }),
      expect.objectContaining({ client_id: null, current: false }),
    ]);
  });

  it('answers a wrong password with invalid_grant (400)', async () => {
    const { username } = await register(t);
    const attempt = passwordGrant(username, 'not the password').then((response) =>
      oauth.processGenericTokenEndpointResponse(as, app, response),
    );
    expect(await oauthError(attempt)).toEqual({
      status: 400,
      error: 'invalid_grant',
      code: 'invalid_credentials',
    });
    const unknown = passwordGrant(uniqueUsername(), PASSWORD).then((response) =>
      oauth.processGenericTokenEndpointResponse(as, app, response),
    );
    expect(await oauthError(unknown)).toMatchObject({ error: 'invalid_grant' });
  });

  it('rotates both tokens with the refresh grant', async () => {
    const { username } = await register(t);
    const first = await logIn(username);
    const second = await refreshWith(first.refresh_token!);
    expect(second.access_token).not.toBe(first.access_token);
    expect(second.refresh_token).not.toBe(first.refresh_token);
    expect(await todos(second.access_token)).toBe(200);
    const third = await refreshWith(second.refresh_token!);
    expect(await todos(third.access_token)).toBe(200);
  });

  it('a replayed old refresh token is invalid_grant, and the whole family is dead after it', async () => {
    const { username } = await register(t);
    const first = await logIn(username);
    const second = await refreshWith(first.refresh_token!);
    const third = await refreshWith(second.refresh_token!);
    const fourth = await refreshWith(third.refresh_token!);
    // Three generations behind the newest: theft, whenever presented (RFC 9700 §4.14.2).
    expect(await oauthError(refreshWith(first.refresh_token!))).toEqual({
      status: 400,
      error: 'invalid_grant',
      code: 'refresh_token_reused',
    });
    expect(await oauthError(refreshWith(fourth.refresh_token!))).toMatchObject({
      error: 'invalid_grant',
      code: 'session_revoked',
    });
    expect(await todos(fourth.access_token)).toBe(401);
  });

  it('refuses a refresh token to a client it was not issued to, and the session goes on', async () => {
    const { username } = await register(t);
    const tokens = await logIn(username);
    expect(
      await oauthError(refreshWith(tokens.refresh_token!, { client_id: 'other-app' })),
    ).toEqual({ status: 400, error: 'invalid_grant', code: 'token_invalid' });
    const next = await refreshWith(tokens.refresh_token!);
    expect(await todos(next.access_token)).toBe(200);
  });

  it('refuses an unlisted client with invalid_client (401)', async () => {
    const { username } = await register(t);
    const attempt = passwordGrant(username, PASSWORD, { client_id: 'stranger' }).then((response) =>
      oauth.processGenericTokenEndpointResponse(as, { client_id: 'stranger' }, response),
    );
    expect(await oauthError(attempt)).toEqual({
      status: 401,
      error: 'invalid_client',
      code: 'invalid_client',
    });
  });

  it('revokes form-encoded (RFC 7009): the session ends, and revoking again is still 200', async () => {
    const { username } = await register(t);
    const tokens = await logIn(username);
    const revoke = () => oauth.revocationRequest(as, app, none, tokens.refresh_token!, insecure);
    await expect(oauth.processRevocationResponse(await revoke())).resolves.toBeUndefined();
    expect(await todos(tokens.access_token)).toBe(401);
    expect(await oauthError(refreshWith(tokens.refresh_token!))).toMatchObject({
      error: 'invalid_grant',
    });
    await expect(oauth.processRevocationResponse(await revoke())).resolves.toBeUndefined();
  });

  it('introspects (RFC 7662): active while the session lives, inactive at once after logout', async () => {
    const { username } = await register(t);
    const first = await logIn(username);
    const second = await refreshWith(first.refresh_token!);
    const third = await refreshWith(second.refresh_token!);
    const access = await introspect(third.access_token);
    const claims = claimsOf(third.access_token);
    expect(access).toEqual({
      active: true,
      token_type: 'Bearer',
      client_id: 'e2e-app',
      iss: issuer.origin,
      aud: claims.aud,
      sid: claims.sid,
      sub: claims.sub,
      jti: claims.jti,
      iat: claims.iat,
      exp: claims.exp,
    });
    // Refresh tokens: the newest and its parent (which would get the newest back) are active.
    expect(await introspect(third.refresh_token!)).toMatchObject({ active: true, sid: access.sid });
    expect(await introspect(second.refresh_token!)).toMatchObject({ active: true });
    expect(await introspect(first.refresh_token!)).toEqual({ active: false });
    expect(await introspect('not.a.token')).toEqual({ active: false });

    await oauth.processRevocationResponse(
      await oauth.revocationRequest(as, app, none, third.access_token, insecure),
    );
    expect(await introspect(third.access_token)).toEqual({ active: false });
    expect(await introspect(third.refresh_token!)).toEqual({ active: false });
  });

  it('refuses introspection without the resource server’s secret (invalid_client, 401)', async () => {
    const { username } = await register(t);
    const tokens = await logIn(username);
    expect(await oauthError(introspect(tokens.access_token, 'wrong-secret'))).toEqual({
      status: 401,
      error: 'invalid_client',
      code: 'invalid_client',
    });
  });

  it('openid-client discovers, logs in, refreshes and revokes', async () => {
    const { username } = await register(t);
    const config = await client.discovery(issuer, 'e2e-app', undefined, client.None(), {
      execute: [client.allowInsecureRequests],
      algorithm: 'oauth2',
    });
    const tokens = await client.genericGrantRequest(config, 'password', {
      username,
      password: PASSWORD,
    });
    const next = await client.refreshTokenGrant(config, tokens.refresh_token!);
    expect(next.refresh_token).not.toBe(tokens.refresh_token);
    const me = await client.fetchProtectedResource(
      config,
      next.access_token,
      new URL('/users/me', issuer),
      'GET',
    );
    expect(await me.json()).toMatchObject({ username });
    await client.tokenRevocation(config, next.access_token);
    expect(await todos(next.access_token)).toBe(401);
  });
});
