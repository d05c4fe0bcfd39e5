import { createLineageClient, memoryTokenStorage } from '../../client/src/lineage-client.js';
import { bearer, logout, me, PASSWORD, refresh } from '../support/requests.js';
import { useTestApp } from '../support/test-app.js';
import { countRequests, rejection, signedUp, storedTokens } from './support.js';

/** The SDK's calls and errors with default token lifetimes: nothing expires here. */
describe('client SDK: session, resources and errors (e2e)', () => {
  const t = useTestApp({}, { listen: true });
  let baseUrl: string;
  let refreshes: { count: number };

  beforeAll(() => {
    baseUrl = t.baseUrl;
    refreshes = countRequests(t, 'POST', '/auth/refresh');
  });

  it('login stores the tokens; users/me and the todos resource round-trip typed bodies', async () => {
    const { username } = await signedUp(baseUrl);
    const storage = memoryTokenStorage();
    const client = createLineageClient({ baseUrl: `${baseUrl}/`, storage });
    expect(await client.isLoggedIn()).toBe(false);

    const tokens = await client.login({ username, password: PASSWORD });
    expect(tokens.token_type).toBe('Bearer');
    expect(await storage.get()).toEqual({
      access_token: tokens.access_token,
      refresh_token: tokens.refresh_token,
      expires_at: expect.any(Number) as number,
      expires_in: tokens.expires_in,
    });

    const me = await client.users.me();
    expect(Object.keys(me).sort()).toEqual(['created_at', 'id', 'username']);
    expect(me.username).toBe(username);

    const first = await client.todos.create({ title: 'one' });
    const second = await client.todos.create({
      title: 'two',
      description: 'more',
      completed: true,
    });
    expect(first).toMatchObject({ title: 'one', description: null, completed: false });
    expect(second).toMatchObject({ title: 'two', description: 'more', completed: true });
    expect(await client.todos.get(first.id)).toEqual(first);
    expect(await client.todos.list()).toEqual({ items: [second, first], total: 2 });
    expect(await client.todos.list({ completed: true })).toEqual({ items: [second], total: 1 });
    expect(await client.todos.list({ limit: 1, offset: 1 })).toEqual({ items: [first], total: 2 });

    const updated = await client.todos.update(first.id, { completed: true, description: null });
    expect(updated).toMatchObject({ id: first.id, completed: true, description: null });
    await client.todos.delete(second.id);
    expect((await rejection(client.todos.get(second.id))).code).toBe('not_found');
    expect(refreshes.count).toBe(0);
  });

  it('surfaces the server error body as a typed LineageApiError', async () => {
    const { client, username } = await signedUp(baseUrl);

    const taken = await rejection(client.register({ username, password: PASSWORD }));
    expect(taken).toMatchObject({ status: 409, code: 'username_taken', name: 'LineageApiError' });
    expect(taken.message).toBe(`username_taken: ${taken.body.message}`);

    const invalid = await rejection(client.todos.create({ title: '' }));
    expect(invalid.status).toBe(400);
    expect(invalid.body).toMatchObject({ statusCode: 400, code: 'validation_failed' });
    expect(invalid.body.details?.map((detail) => detail.field)).toEqual(['title']);

    const malformed = await rejection(client.todos.get('not-a-uuid'));
    expect(malformed.code).toBe('validation_failed');

    const anonymous = createLineageClient({ baseUrl });
    const bad = await rejection(anonymous.login({ username, password: 'wrong password' }));
    expect(bad).toMatchObject({ status: 401, code: 'invalid_credentials' });
    expect(await anonymous.isLoggedIn()).toBe(false);
  });

  it('a session revoked elsewhere (not expired): no refresh, session_revoked surfaced, tokens cleared', async () => {
    const { client, storage } = await signedUp(baseUrl);
    const tokens = await storedTokens(storage);
    // Another tab logs this session out.
    await logout(t, tokens.access_token, { refresh_token: tokens.refresh_token }).expect(200);
    refreshes.count = 0;

    const error = await rejection(client.users.me());

    expect(error).toMatchObject({ status: 401, code: 'session_revoked' });
    expect(refreshes.count).toBe(0);
    expect(await storage.get()).toBeNull();
  });

  it('logout ends the session on the server and clears the tokens', async () => {
    const { client, storage } = await signedUp(baseUrl);
    const tokens = await storedTokens(storage);

    await client.logout();

    expect(await storage.get()).toBeNull();
    expect(await client.isLoggedIn()).toBe(false);
    const profile = await me(t, tokens.access_token);
    expect(profile.status).toBe(401);
    expect((profile.body as { code: string }).code).toBe('session_revoked');
    const res = await refresh(t, tokens.refresh_token);
    expect((res.body as { code: string }).code).toBe('session_revoked');
    // Logging out again, with nothing stored, is a no-op.
    await client.logout();
  });

  it('logout clears the tokens even when the server says the session is already gone', async () => {
    const { client, storage } = await signedUp(baseUrl);
    const tokens = await storedTokens(storage);
    await t.http().post('/auth/logout-all').set(bearer(tokens.access_token)).send({}).expect(200);

    await client.logout();

    expect(await storage.get()).toBeNull();
  });

  it('logout clears the tokens and rethrows when the server cannot be reached', async () => {
    const { storage } = await signedUp(baseUrl);
    const offline = createLineageClient({
      baseUrl,
      storage,
      fetch: () => Promise.reject(new TypeError('fetch failed')),
    });

    await expect(offline.logout()).rejects.toThrow('fetch failed');
    expect(await storage.get()).toBeNull();
  });
});
