import { createLineageClient, type TokenStorage } from '../../client/src/lineage-client.js';
import { bearer, me, refresh, revoke } from '../support/requests.js';
import { useTestApp } from '../support/test-app.js';
import { countRequests, expireAccessToken, rejection, signedUp, storedTokens } from './support.js';

/**
 * The SDK's refresh flow against the real server
 * over HTTP. Access tokens live 2 s: with 1 s, a token refreshed at x.95 s
 * would expire 50 ms later (exp has one-second resolution), and the retry
 * could meet `token_expired` again. No reuse grace, so presenting a token
 * whose child was already used is a `refresh_token_reused`, never forgiven.
 * An expired access token is issued as of the past (expireAccessToken),
 * not waited for.
 */
describe('client SDK: refresh on token_expired or token_invalid (e2e)', () => {
  const t = useTestApp({ ACCESS_TOKEN_TTL: '2', REFRESH_REUSE_GRACE: '0' }, { listen: true });
  let baseUrl: string;
  let refreshes: { count: number };

  beforeAll(() => {
    baseUrl = t.baseUrl;
    refreshes = countRequests(t, 'POST', '/auth/refresh');
  });

  const eventCount = async (userId: string) => {
    const rows: { count: string }[] = await t.db.query(
      'SELECT count(*) FROM auth_events WHERE user_id = $1',
      [userId],
    );
    return Number(rows[0].count);
  };
  const generationOf = async (userId: string) => {
    const rows: { generation: number }[] = await t.db.query(
      'SELECT generation FROM sessions WHERE user_id = $1',
      [userId],
    );
    expect(rows).toHaveLength(1);
    return rows[0].generation;
  };

  it('10 parallel calls with an expired access token: exactly one refresh, all 10 succeed with their own data', async () => {
    const { client, storage } = await signedUp(baseUrl);
    const profile = await client.users.me();
    const created = [];
    for (let i = 0; i < 10; i++) created.push(await client.todos.create({ title: `todo ${i}` }));
    await expireAccessToken(t, storage);
    const expired = await storedTokens(storage);
    const eventsBefore = await eventCount(profile.id);
    const generationBefore = await generationOf(profile.id);
    refreshes.count = 0;

    const results = await Promise.all(created.map((todo) => client.todos.get(todo.id)));

    expect(results).toEqual(created);
    expect(refreshes.count).toBe(1);
    // One rotation, which writes no audit event, and no re-issue (that would write one).
    expect(await generationOf(profile.id)).toBe(generationBefore + 1);
    expect(await eventCount(profile.id)).toBe(eventsBefore);
    // Rotation: both tokens were replaced, and the new pair works.
    const fresh = await storedTokens(storage);
    expect(fresh.access_token).not.toBe(expired.access_token);
    expect(fresh.refresh_token).not.toBe(expired.refresh_token);
    await me(t, fresh.access_token).expect(200);
  });

  it('shares the refresh among different resources too, and later calls use the new token', async () => {
    const { client, storage, username } = await signedUp(baseUrl);
    const todo = await client.todos.create({ title: 'milk', description: 'oat' });
    await expireAccessToken(t, storage);
    refreshes.count = 0;

    const [profile, list, one] = await Promise.all([
      client.users.me(),
      client.todos.list({ limit: 5 }),
      client.todos.get(todo.id),
    ]);

    expect(profile.username).toBe(username);
    expect(list).toEqual({ items: [todo], total: 1 });
    expect(one).toEqual(todo);
    expect(refreshes.count).toBe(1);
    await client.todos.update(todo.id, { completed: true });
    expect(refreshes.count).toBe(1);
  });

  it('a session revoked elsewhere: one refresh attempt, no loop, the error surfaced, tokens cleared', async () => {
    const { client, storage } = await signedUp(baseUrl);
    const tokens = await storedTokens(storage);
    // Logout with the same session from another client (e.g. another tab).
    await revoke(t, { token: tokens.refresh_token, token_type_hint: 'refresh_token' }).expect(200);
    await expireAccessToken(t, storage);
    refreshes.count = 0;

    const error = await rejection(client.todos.list());

    expect(error.status).toBe(401);
    expect(error.code).toBe('session_revoked');
    expect(error.body).toMatchObject({ statusCode: 401, error: 'Unauthorized' });
    expect(refreshes.count).toBe(1);
    expect(await storage.get()).toBeNull();
    expect(await client.isLoggedIn()).toBe(false);
    // Nothing left to refresh with: the next call goes out bare and fails, no refresh.
    expect((await rejection(client.users.me())).code).toBe('token_missing');
    expect(refreshes.count).toBe(1);
  });

  it('a stolen-and-rotated refresh token: refresh_token_reused is surfaced and the tokens cleared', async () => {
    const { client, storage } = await signedUp(baseUrl);
    const tokens = await storedTokens(storage);
    // Someone else rotates the SDK's refresh token first, and uses the child
    // it got (RFC 9700 §4.14.2): the SDK's token is then two generations behind.
    const stolen = await refresh(t, tokens.refresh_token).expect(200);
    await refresh(t, (stolen.body as { refresh_token: string }).refresh_token).expect(200);
    await expireAccessToken(t, storage);
    refreshes.count = 0;

    const results = await Promise.allSettled([client.users.me(), client.todos.list()]);

    for (const result of results) {
      expect(result.status).toBe('rejected');
      expect((result as PromiseRejectedResult).reason).toMatchObject({
        code: 'refresh_token_reused',
      });
    }
    // Both calls awaited the one refresh; neither tried again.
    expect(refreshes.count).toBe(1);
    expect(await storage.get()).toBeNull();
  });

  it('a token_invalid 401 (e.g. its signing key was revoked) refreshes once and retries', async () => {
    const { client, storage } = await signedUp(baseUrl);
    const tokens = await storedTokens(storage);
    const damaged = `${tokens.access_token.slice(0, -4)}AAAA`;
    await storage.set({ ...tokens, access_token: damaged });
    refreshes.count = 0;

    expect(await client.todos.list()).toMatchObject({ total: 0 });

    // The session was intact: one refresh, and the rotated pair is stored.
    expect(refreshes.count).toBe(1);
    const after = await storedTokens(storage);
    expect(after.access_token).not.toBe(damaged);
    expect(after.refresh_token).not.toBe(tokens.refresh_token);
  });

  it('a refusal after the refresh is final: no second refresh', async () => {
    const { client, storage } = await signedUp(baseUrl);
    const tokens = await storedTokens(storage);
    // Every access token is refused (token_invalid) whatever the refresh returns.
    const failing = createLineageClient({
      baseUrl,
      storage,
      fetch: (input, init) => {
        const headers = new Headers(init?.headers);
        const auth = headers.get('authorization');
        if (auth) headers.set('authorization', `${auth}x`);
        return fetch(input, { ...init, headers });
      },
    });
    refreshes.count = 0;

    const error = await rejection(failing.todos.list());

    expect(error.code).toBe('token_invalid');
    expect(refreshes.count).toBe(1);
    // The refresh succeeded, so the session's tokens are kept (rotated).
    expect((await storedTokens(storage)).refresh_token).not.toBe(tokens.refresh_token);
    expect(await client.isLoggedIn()).toBe(true);
  });

  it.each([
    ['an expired', async (storage: TokenStorage) => expireAccessToken(t, storage)],
    [
      'a refused (token_invalid)',
      async (storage: TokenStorage) => {
        const tokens = await storedTokens(storage);
        await storage.set({ ...tokens, access_token: `${tokens.access_token.slice(0, -4)}AAAA` });
      },
    ],
  ])(
    'logout with %s access token revokes the session by its refresh token, without refreshing',
    async (_what, spoil) => {
      const { client, storage } = await signedUp(baseUrl);
      const tokens = await storedTokens(storage);
      await spoil(storage);
      refreshes.count = 0;

      await client.logout();

      expect(await storage.get()).toBeNull();
      expect(refreshes.count).toBe(0);
      const res = await refresh(t, tokens.refresh_token);
      expect(res.status).toBe(401);
      expect((res.body as { code: string }).code).toBe('session_revoked');
    },
  );

  it('stores the rotated pair: the refresh token that was replaced is not presented again', async () => {
    const { client, storage } = await signedUp(baseUrl);
    const first = await storedTokens(storage);
    await expireAccessToken(t, storage);
    await client.users.me();
    const second = await storedTokens(storage);
    await expireAccessToken(t, storage);
    refreshes.count = 0;

    await client.users.me();

    // Presenting `first` again would only have got `second` back (its
    // re-issued child): three different tokens show `second` was presented.
    expect(refreshes.count).toBe(1);
    const third = await storedTokens(storage);
    expect(new Set([first.refresh_token, second.refresh_token, third.refresh_token]).size).toBe(3);
    const sessions = await t.http().get('/auth/sessions').set(bearer(third.access_token));
    expect(sessions.status).toBe(200);
    expect((sessions.body as unknown[]).length).toBe(1);
  });
});
