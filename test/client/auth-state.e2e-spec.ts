import { performance } from 'node:perf_hooks';
import {
  type AuthStateEvent,
  createLineageClient,
  type LineageClient,
  LineageNetworkError,
  memoryTokenStorage,
  type Todo,
  type TokenStorage,
} from '../../client/src/lineage-client.js';
import { freePort } from '../support/app-process.js';
import { PASSWORD, uniqueUsername } from '../support/requests.js';
import { useTestApp } from '../support/test-app.js';
import { expiredAccessToken } from '../support/tokens.js';
import { countRequests, rejection, storedTokens } from './support.js';

interface Sent {
  method: string;
  path: string;
  status: number;
  at: number;
  retryAfter: string | null;
}

/** The global fetch, with every answer recorded (method, path, status, when). */
function recordingFetch() {
  const sent: Sent[] = [];
  const fetchImpl: typeof fetch = async (input, init) => {
    const response = await fetch(input, init);
    sent.push({
      method: init?.method ?? 'GET',
      // The client always passes a URL.
      path: (input as URL).pathname,
      status: response.status,
      at: performance.now(),
      retryAfter: response.headers.get('Retry-After'),
    });
    return response;
  };
  return { sent, fetch: fetchImpl };
}

interface Watched {
  client: LineageClient;
  storage: TokenStorage;
  events: AuthStateEvent[];
  sent: Sent[];
  username: string;
}

/** A body-transport client whose events and requests are recorded, signed up as a new user. */
async function watched(
  baseUrl: string,
  extra: Partial<Parameters<typeof createLineageClient>[0]> = {},
): Promise<Watched> {
  const storage = memoryTokenStorage();
  const { sent, fetch } = recordingFetch();
  const client = createLineageClient({ baseUrl, storage, fetch, ...extra });
  const events: AuthStateEvent[] = [];
  client.onAuthStateChange((event) => events.push(event));
  const username = uniqueUsername('sdk');
  await client.register({ username, password: PASSWORD });
  return { client, storage, events, sent, username };
}

const types = (events: AuthStateEvent[]) => events.map((event) => event.type);

describe('client SDK: auth-state events, proactive refresh, every route (e2e)', () => {
  // Access tokens live 60 s; a token near expiry is simulated by one issued as
  // of the past (expiredAccessToken) and a held expiry to match.
  const t = useTestApp({ ACCESS_TOKEN_TTL: '60' }, { listen: true });
  let baseUrl: string;
  let refreshes: { count: number };

  beforeAll(() => {
    baseUrl = t.baseUrl;
    refreshes = countRequests(t, 'POST', '/auth/refresh');
  });

  /** The held access token replaced by an expired one of the same session, held as expired. */
  async function expireHeld(storage: TokenStorage): Promise<void> {
    const held = await storedTokens(storage);
    await storage.set({
      ...held,
      access_token: expiredAccessToken(t, held.access_token),
      expires_at: Date.now() - 1000,
    });
  }

  it('emits signed_in, token_refreshed, then signed_out, in that order, each before its call settles', async () => {
    const { client, events } = await watched(baseUrl);
    expect(types(events)).toEqual(['signed_in']);

    await client.refresh();
    expect(types(events)).toEqual(['signed_in', 'token_refreshed']);

    await client.logout();
    expect(types(events)).toEqual(['signed_in', 'token_refreshed', 'signed_out']);
    expect(events.every((event) => event.source === 'this_tab')).toBe(true);
    expect(await client.getAccessToken()).toBeNull();
  });

  it('a login over a held session ends its events: signed_out, then signed_in', async () => {
    const { client, events, username } = await watched(baseUrl);

    await client.login({ username, password: PASSWORD });

    expect(types(events)).toEqual(['signed_in', 'signed_out', 'signed_in']);
  });

  it('emits session_ended with the server code when the session is revoked elsewhere, and stops listening on unsubscribe', async () => {
    const first = await watched(baseUrl);
    const second = createLineageClient({ baseUrl });
    await second.login({ username: first.username, password: PASSWORD });
    // Another device ends every other session.
    expect(await second.logoutAll('others')).toMatchObject({ revoked_sessions: 1 });

    const error = await rejection(first.client.users.me());

    expect(error).toMatchObject({ status: 401, code: 'session_revoked' });
    expect(first.events.at(-1)).toMatchObject({
      type: 'session_ended',
      code: 'session_revoked',
      status: 401,
      source: 'this_tab',
    });
    expect(types(first.events)).toEqual(['signed_in', 'session_ended']);
    expect(await first.client.isLoggedIn()).toBe(false);
    // The second device is untouched.
    expect((await second.users.me()).username).toBe(first.username);

    const later: AuthStateEvent[] = [];
    const stop = second.onAuthStateChange((event) => later.push(event));
    stop();
    await second.logout();
    expect(later).toEqual([]);
  });

  it('refreshes before sending a token that is due, so no request is answered 401', async () => {
    const { client, storage, events, sent } = await watched(baseUrl);
    await client.todos.create({ title: 'before' });
    await expireHeld(storage);
    refreshes.count = 0;

    const [list, me, token] = await Promise.all([
      client.todos.list(),
      client.users.me(),
      client.getAccessToken(),
    ]);

    expect(list.total).toBe(1);
    expect(me.id).toBeDefined();
    expect(refreshes.count).toBe(1);
    // Without the proactive refresh, the expired token would have met 401 token_expired.
    expect(sent.filter((request) => request.status === 401)).toEqual([]);
    expect(types(events)).toEqual(['signed_in', 'token_refreshed']);
    expect(token).toBe((await storedTokens(storage)).access_token);
    // The refreshed token is held with its new expiry, and is not due again.
    expect((await storedTokens(storage)).expires_at).toBeGreaterThan(Date.now() + 50_000);
    await client.users.me();
    expect(refreshes.count).toBe(1);
  });

  it('a token refused anyway (no held expiry, as stored by an earlier version) still refreshes on the 401', async () => {
    const { client, storage, sent } = await watched(baseUrl);
    const held = await storedTokens(storage);
    await storage.set({
      access_token: expiredAccessToken(t, held.access_token),
      refresh_token: held.refresh_token,
    });

    expect((await client.todos.list()).total).toBe(0);
    expect(sent.filter((request) => request.status === 401)).toHaveLength(1);
  });

  it('request() sends typed calls to any route, with path parameters, query and body', async () => {
    const { client } = await watched(baseUrl);

    const created: Todo = await client.request('POST', '/todos', { body: { title: 'typed' } });
    const fetched = await client.request('GET', '/todos/{id}', { params: { id: created.id } });
    const listed = await client.request('GET', '/todos', { query: { completed: false } });
    const patched = await client.request('PATCH', '/todos/{id}', {
      params: { id: created.id },
      body: { completed: true },
    });
    const deleted = await client.request('DELETE', '/todos/{id}', { params: { id: created.id } });

    expect(fetched).toEqual(created);
    expect(listed.map((todo) => todo.id)).toEqual([created.id]);
    expect(patched).toMatchObject({ id: created.id, completed: true });
    expect(deleted).toBeUndefined();
    expect((await rejection(client.todos.get(created.id))).code).toBe('not_found');
  });

  it('covers every user route: sessions, events, password change, logout-all and account deletion', async () => {
    const { client, events, username } = await watched(baseUrl);
    const other = createLineageClient({ baseUrl });
    await other.login({ username, password: PASSWORD });

    const sessions = await client.sessions.list();
    expect(sessions).toHaveLength(2);
    const current = sessions.find((session) => session.current);
    const elsewhere = sessions.find((session) => !session.current);
    if (!current || !elsewhere) throw new Error('expected this session and another');

    await client.sessions.revoke(elsewhere.id);
    expect((await rejection(other.users.me())).code).toBe('session_revoked');
    expect(await client.sessions.list()).toHaveLength(1);
    expect((await rejection(client.sessions.revoke(elsewhere.id))).code).toBe('not_found');

    await client.users.changePassword({
      current_password: PASSWORD,
      new_password: 'a new one 123',
    });
    const wrong = await rejection(
      client.users.changePassword({ current_password: PASSWORD, new_password: 'another 1234' }),
    );
    expect(wrong).toMatchObject({ status: 403, code: 'invalid_password' });
    const recorded = (await client.users.events({ limit: 100 })).map((event) => event.type);
    expect(recorded).toEqual(expect.arrayContaining(['registered', 'password_changed']));

    // Ending this client's own session signs it out.
    await client.sessions.revoke(current.id);
    expect(types(events)).toEqual(['signed_in', 'signed_out']);
    expect(await client.isLoggedIn()).toBe(false);

    await client.login({ username, password: 'a new one 123' });
    const again = createLineageClient({ baseUrl });
    await again.login({ username, password: 'a new one 123' });
    expect(await client.logoutAll('others')).toEqual({
      message: 'Logged out',
      revoked_sessions: 1,
    });
    expect(await client.isLoggedIn()).toBe(true);
    expect(await client.logoutAll()).toEqual({ message: 'Logged out', revoked_sessions: 1 });
    expect(types(events)).toEqual(['signed_in', 'signed_out', 'signed_in', 'signed_out']);

    await client.login({ username, password: 'a new one 123' });
    await client.users.deleteAccount('a new one 123');
    expect(types(events).at(-1)).toBe('signed_out');
    const gone = await rejection(client.login({ username, password: 'a new one 123' }));
    expect(gone.code).toBe('invalid_credentials');
  });

  it('errors carry the server request id', async () => {
    const { client } = await watched(baseUrl);
    const error = await rejection(client.todos.get('00000000-0000-4000-8000-000000000000'));
    expect(error.code).toBe('not_found');
    expect(error.requestId).toEqual(expect.any(String));
  });

  it('wraps a network failure in LineageNetworkError, with the cause', async () => {
    const port = await freePort();
    const client = createLineageClient({ baseUrl: `http://127.0.0.1:${port}` });

    const error: unknown = await client.login({ username: 'nobody', password: PASSWORD }).then(
      () => undefined,
      (reason: unknown) => reason,
    );

    expect(error).toBeInstanceOf(LineageNetworkError);
    expect(error).toMatchObject({ code: 'network_error', method: 'POST' });
    // fetch's own TypeError (from Node's realm, not the test's: compared by name).
    expect((error as LineageNetworkError).cause).toMatchObject({ name: 'TypeError' });
    expect((error as LineageNetworkError).message).toContain(
      (error as Error & { cause: Error }).cause.message,
    );
  });

  it('after a lost response, retries an idempotent call but never a POST that creates', async () => {
    const { storage, username } = await watched(baseUrl);
    // The request reaches the server and is processed; only its answer is lost.
    let lose = 0;
    const losing: typeof fetch = async (input, init) => {
      const response = await fetch(input, init);
      if (lose > 0) {
        lose -= 1;
        await response.body?.cancel();
        throw new TypeError('socket hang up');
      }
      return response;
    };
    const client = createLineageClient({
      baseUrl,
      storage,
      fetch: losing,
      retry: { attempts: 3, baseDelay: 10 },
    });
    expect(username).toBeDefined();

    lose = 1;
    const error: unknown = await client.todos.create({ title: 'once' }).then(
      () => undefined,
      (reason: unknown) => reason,
    );
    expect(error).toBeInstanceOf(LineageNetworkError);

    lose = 1;
    const list = await client.todos.list();
    // The POST was processed once and not repeated; the GET was retried.
    expect(list.items.map((todo) => todo.title)).toEqual(['once']);
  });
});

describe('client SDK: retry on 429 honours Retry-After (e2e)', () => {
  // One login per address per 1 s window; the request over it blocks the
  // address for a window, and is answered 429 with Retry-After.
  const t = useTestApp(
    { RATE_LIMIT_WINDOW: '1', RATE_LIMIT_PER_IP: '1', RATE_LIMIT_REFRESH_PER_IP: '1' },
    { listen: true },
  );

  /** Logs in without retries until the server refuses: the address is then blocked for a window. */
  async function exhaustLogins(username: string): Promise<void> {
    const plain = createLineageClient({ baseUrl: t.baseUrl });
    for (let i = 0; i < 5; i++) {
      const outcome: unknown = await plain.login({ username, password: PASSWORD }).then(
        () => undefined,
        (reason: unknown) => reason,
      );
      if ((outcome as { status?: number } | undefined)?.status === 429) return;
    }
    throw new Error('the server never rate-limited the logins');
  }

  async function newUser(): Promise<string> {
    const username = uniqueUsername('sdk');
    // Registrations have a budget of their own, which the retry waits out.
    await createLineageClient({ baseUrl: t.baseUrl, retry: { attempts: 5 } }).register({
      username,
      password: PASSWORD,
    });
    return username;
  }

  it('waits at least Retry-After, then succeeds', async () => {
    const username = await newUser();
    const { sent, fetch } = recordingFetch();
    const client = createLineageClient({ baseUrl: t.baseUrl, fetch, retry: { attempts: 5 } });
    await exhaustLogins(username);

    const tokens = await client.login({ username, password: PASSWORD });

    expect(tokens.access_token).toEqual(expect.any(String));
    const logins = sent.filter((request) => request.path === '/auth/login');
    expect(logins[0]).toMatchObject({ status: 429 });
    expect(logins.at(-1)).toMatchObject({ status: 200 });
    // Each retry came no earlier than the Retry-After of the refusal before it.
    for (let i = 1; i < logins.length; i++) {
      const retryAfter = Number(logins[i - 1].retryAfter);
      expect(retryAfter).toBeGreaterThan(0);
      expect(logins[i].at - logins[i - 1].at).toBeGreaterThanOrEqual(retryAfter * 1000);
    }
  });

  it('without retry, the 429 is thrown with its retryAfter and request id', async () => {
    const username = await newUser();
    await exhaustLogins(username);

    const error = await rejection(
      createLineageClient({ baseUrl: t.baseUrl }).login({ username, password: PASSWORD }),
    );

    expect(error).toMatchObject({ status: 429, code: 'rate_limited' });
    expect(error.retryAfter).toBeGreaterThan(0);
    expect(error.requestId).toEqual(expect.any(String));
  });

  it('a Retry-After longer than maxRetryAfter is not waited for', async () => {
    const username = await newUser();
    const { sent, fetch } = recordingFetch();
    const client = createLineageClient({
      baseUrl: t.baseUrl,
      fetch,
      retry: { attempts: 5, maxRetryAfter: 0 },
    });
    await exhaustLogins(username);

    const error = await rejection(client.login({ username, password: PASSWORD }));

    expect(error.status).toBe(429);
    expect(sent.filter((request) => request.path === '/auth/login')).toHaveLength(1);
  });
});
