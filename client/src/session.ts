import { createTabCoordinator, SHARED, type TabCoordinator, type TabMessage } from './cross-tab.js';
import { DPOP_CODES, LineageApiError, REFRESHABLE_CODES, SESSION_ENDED_CODES } from './errors.js';
import type {
  AuthStateEvent,
  AuthStateListener,
  Credentials,
  EventSource,
  LineageClient,
  TokenResponse,
  User,
} from './api.js';
import type { StoredTokens, TokenStorage } from './token-storage.js';
import { type Call, expectOk, json, type Transport } from './transport.js';

export interface SessionOptions {
  /** The cookie transport: the refresh token is in the HttpOnly cookie, not in `storage`. */
  cookie: boolean;
  storage: TokenStorage;
  exchange: Transport['exchange'];
  /** Whether the client signs with DPoP: then the token type (Bearer or DPoP) is kept. */
  dpop: boolean;
  /** See LineageClientOptions. */
  refreshLeeway?: number;
  autoRefresh: boolean;
  /** The BroadcastChannel the tabs of this origin share a session on; none without. */
  tabChannel?: string;
  now: () => number;
}

/**
 * The session state of one client: the tokens it holds, their refresh (on
 * demand, on a timer, once for all tabs), the end of the session, and the
 * events that report each change.
 */
export interface ClientSession extends Pick<
  LineageClient,
  'restore' | 'logout' | 'isLoggedIn' | 'getAccessToken' | 'refresh' | 'onAuthStateChange' | 'close'
> {
  /** Register or login: the call to `path` whose tokens start a session; emits `signed_in`. */
  startSession: (path: string, credentials: Credentials) => Promise<TokenResponse>;
  /** Sends an authenticated call; on a refreshable 401, refreshes and retries it once. */
  authorized: (call: Call) => Promise<Response>;
  /** Runs a call that ends this client's session when it succeeds (the server also clears the cookie). */
  ending: <T>(run: () => Promise<T>) => Promise<T>;
  /** Whether the tokens held now are those of the session `sessionId`. */
  holds: (sessionId: string) => Promise<boolean>;
}

/** The `sid` claim of an access token (read, not verified: the server verifies). */
function sessionIdOf(accessToken: string): string | undefined {
  try {
    const payload = accessToken.split('.')[1] ?? '';
    const json = atob(payload.replace(/-/g, '+').replace(/_/g, '/'));
    const sid = (JSON.parse(json) as { sid?: unknown }).sid;
    return typeof sid === 'string' ? sid : undefined;
  } catch {
    return undefined;
  }
}

/** A 400 for a refresh by cookie without the cookie: the request named no session. */
const isNoCookie = (error: LineageApiError) =>
  error.status === 400 && error.code === 'validation_failed';

export function createSession(options: SessionOptions): ClientSession {
  const { cookie, storage, exchange, dpop, autoRefresh, now } = options;
  const listeners = new Set<AuthStateListener>();
  const tabs: TabCoordinator | undefined =
    options.tabChannel !== undefined
      ? createTabCoordinator(options.tabChannel, (message) => fromOtherTab(message))
      : undefined;

  /** The refresh every caller that needs one right now awaits. */
  let refreshing: Promise<StoredTokens> | undefined;
  /**
   * With the cookie transport, whether this client knows if there is a
   * session: until restore(), a login or a logout, a call first tries a
   * refresh by cookie.
   */
  let sessionKnown = !cookie;
  /** Why the session ended, for callers that awaited another tab's refresh. */
  let endedBy: LineageApiError | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  /** Whether `signed_in` was emitted for the session held now (so it comes first, and once). */
  let announced = false;

  function emit(event: AuthStateEvent): void {
    for (const listener of [...listeners]) {
      try {
        listener(event);
      } catch (error) {
        // A listener's bug must not break the client's bookkeeping: reported
        // as an uncaught error, as a throwing event listener would be.
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }

  function leewayMs(tokens: StoredTokens): number {
    if (options.refreshLeeway !== undefined) return options.refreshLeeway * 1000;
    return Math.min(30_000, (tokens.expires_in ?? 0) * 100);
  }

  /** Whether the access token is within the leeway of its expiry (by this machine's clock). */
  function dueForRefresh(tokens: StoredTokens): boolean {
    return tokens.expires_at !== undefined && now() >= tokens.expires_at - leewayMs(tokens);
  }

  function schedule(tokens: StoredTokens | null): void {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    if (!autoRefresh || tokens === null || tokens.expires_at === undefined) return;
    // setTimeout fires at once for a delay past 2^31 - 1 ms (about 24.8 days).
    const delay = Math.min(2 ** 31 - 1, Math.max(0, tokens.expires_at - leewayMs(tokens) - now()));
    timer = setTimeout(() => {
      timer = undefined;
      // Failures surface through the next request and the events.
      refreshOnce(tokens).catch(() => undefined);
    }, delay);
  }

  /** Keeps the tokens, as this client or another tab received them. */
  async function keep(tokens: StoredTokens, source: EventSource): Promise<void> {
    const held = await storage.get();
    // Another session replaces the held one (a login over it, here or in
    // another tab): this client has left the old one, which ends its events.
    if (
      announced &&
      held !== null &&
      sessionIdOf(held.access_token) !== sessionIdOf(tokens.access_token)
    ) {
      announced = false;
      emit({ type: 'signed_out', source });
    }
    await storage.set(tokens);
    sessionKnown = true;
    endedBy = undefined;
    schedule(tokens);
    const type = announced ? 'token_refreshed' : 'signed_in';
    announced = true;
    emit({ type, source });
  }

  async function storeTokens(tokens: TokenResponse): Promise<StoredTokens> {
    const stored: StoredTokens = {
      access_token: tokens.access_token,
      expires_at: now() + tokens.expires_in * 1000,
      expires_in: tokens.expires_in,
    };
    if (!cookie) {
      // A response without a refresh token means the cookie transport, which
      // this client did not ask for.
      if (tokens.refresh_token === undefined) {
        throw new Error('token response without refresh_token (expected the body transport)');
      }
      stored.refresh_token = tokens.refresh_token;
    }
    // Only a DPoP client needs the type (Bearer or DPoP).
    if (dpop) stored.token_type = tokens.token_type;
    await keep(stored, 'this_tab');
    tabs?.post({ type: 'tokens', tokens: stored });
    return stored;
  }

  async function startSession(path: string, credentials: Credentials): Promise<TokenResponse> {
    const tokens = await json<TokenResponse>(
      await exchange({
        method: 'POST',
        path,
        body: credentials,
        proof: true,
        transport: true,
        // A lost response may have created the account or a session.
        idempotent: false,
      }),
    );
    await storeTokens(tokens);
    return tokens;
  }

  /** Forgets the tokens; true when there were any. */
  async function forget(): Promise<boolean> {
    const held = await storage.get();
    await storage.clear();
    schedule(null);
    sessionKnown = true;
    announced = false;
    return held !== null;
  }

  /** A deliberate sign-out (this client's logout, or another tab's). */
  async function signedOut(source: EventSource): Promise<void> {
    if (await forget()) emit({ type: 'signed_out', source });
    if (source === 'this_tab') tabs?.post({ type: 'signed_out' });
  }

  /**
   * The server said the session is over. Forgets the tokens, unless they are
   * no longer the ones that failed (a new login, or another caller's refresh,
   * replaced them meanwhile).
   */
  async function ended(
    error: LineageApiError,
    stillCurrent: (tokens: StoredTokens) => boolean,
    source: EventSource = 'this_tab',
  ): Promise<void> {
    const current = await storage.get();
    if (current !== null && !stillCurrent(current)) return;
    endedBy = error;
    // This client's restore that finds a dead cookie reports it too: the page had a session.
    const restoring = !sessionKnown && source === 'this_tab';
    const had = (await forget()) || restoring;
    if (source === 'this_tab') {
      tabs?.post({
        type: 'session_ended',
        code: error.code,
        message: error.body.message,
        status: error.status,
      });
    }
    if (had) {
      emit({
        type: 'session_ended',
        source,
        code: error.code,
        message: error.body.message,
        status: error.status,
      });
    }
  }

  async function fromOtherTab(message: TabMessage): Promise<void> {
    switch (message.type) {
      case 'tokens':
        return keep(message.tokens, 'other_tab');
      case 'signed_out':
        return signedOut('other_tab');
      case 'session_ended':
        return ended(
          new LineageApiError({
            statusCode: message.status,
            error: 'Unauthorized',
            code: message.code as LineageApiError['code'],
            message: message.message,
          }),
          () => true,
          'other_tab',
        );
      default:
        return;
    }
  }

  /**
   * One refresh at a time (single flight), and with the cookie transport one
   * for all tabs. The server answers a token presented again, while its
   * successor is unused, with that same successor (RFC 9700 §4.14.2 rotation,
   * as the rule table in docs/sessions.md says), so parallel refreshes would be safe;
   * sharing one spares the round trips and the re-issue events they record.
   */
  function refreshOnce(presented: StoredTokens | null): Promise<StoredTokens> {
    refreshing ??= coordinated(presented).finally(() => {
      refreshing = undefined;
    });
    return refreshing;
  }

  async function coordinated(presented: StoredTokens | null): Promise<StoredTokens> {
    if (tabs === undefined) return refreshNow(presented);
    const outcome = await tabs.refresh(() => refreshNow(presented));
    if (outcome !== SHARED) return outcome;
    // Another tab refreshed (its tokens are kept by now) or learned the session is over.
    const current = await storage.get();
    if (current !== null) return current;
    throw endedBy ?? new Error('the session ended in another tab');
  }

  async function refreshNow(presented: StoredTokens | null): Promise<StoredTokens> {
    try {
      return await refreshRequest(presented);
    } catch (error) {
      // Whatever else happened, the other tabs must not wait for this one.
      if (!(error instanceof LineageApiError && error.status === 401)) {
        tabs?.post({ type: 'refresh_failed' });
      }
      throw error;
    }
  }

  async function refreshRequest(
    presented: StoredTokens | null,
    again = false,
  ): Promise<StoredTokens> {
    if (!cookie && presented?.refresh_token === undefined) {
      throw new Error('no refresh token to refresh with');
    }
    const response = await exchange({
      method: 'POST',
      path: '/auth/refresh',
      body: cookie ? undefined : { refresh_token: presented?.refresh_token },
      // A bound session's refresh token is refused without its key's proof (RFC 9449 §5).
      proof: true,
      transport: true,
      // Safe after a lost response: the token presented again gets the very
      // successor the lost answer carried (the server's rotation rule).
      idempotent: true,
    });
    if (response.ok) {
      // Rotation: the returned refresh token replaces the presented one.
      return storeTokens((await response.json()) as TokenResponse);
    }
    const error = await LineageApiError.from(response);
    if (error.code === 'refresh_token_superseded') {
      // A newer token of this session was already used (another client
      // sharing the storage or the cookie jar refreshed twice meanwhile).
      // With `body`, use what it stored; with the cookie, the jar holds it.
      if (cookie && !again) return refreshRequest(presented, true);
      const current = await storage.get();
      if (
        current?.refresh_token !== undefined &&
        current.refresh_token !== presented?.refresh_token
      ) {
        return current;
      }
    }
    // A 401 here (session_revoked, session_expired, refresh_token_reused,
    // token_invalid) means the session is over: nothing held can revive it.
    // Other failures (429, 503, network, a refused DPoP proof) leave the
    // tokens for a later try.
    if (response.status === 401 && !DPOP_CODES.has(error.code)) {
      await ended(error, (current) => current.access_token === presented?.access_token);
    }
    throw error;
  }

  /**
   * The tokens to send a request with: the held ones, refreshed first when
   * they are due. With the cookie transport and no session known yet, a
   * refresh by cookie finds out.
   */
  async function currentTokens(): Promise<StoredTokens | null> {
    await refreshing?.catch(() => undefined);
    const held = await storage.get();
    if (held === null) {
      if (sessionKnown) return null;
      return restoreTokens();
    }
    if (!dueForRefresh(held)) return held;
    try {
      return await refreshOnce(held);
    } catch (error) {
      // A proactive refresh that failed for a passing reason (429, 503, the
      // network) does not stop a request whose token has not expired yet.
      const over = (await storage.get()) === null;
      if (!over && held.expires_at !== undefined && now() < held.expires_at) return held;
      throw error;
    }
  }

  /** With the cookie transport: the session the cookie stands for, or null without one. */
  async function restoreTokens(): Promise<StoredTokens | null> {
    try {
      return await refreshOnce(null);
    } catch (error) {
      if (!(error instanceof LineageApiError)) throw error;
      if (isNoCookie(error)) {
        sessionKnown = true;
        return null;
      }
      // A session that is over was forgotten (and announced) by the refresh.
      if (error.status === 401 && !DPOP_CODES.has(error.code)) return null;
      throw error;
    }
  }

  /** The tokens to retry with, after `used`'s access token was refused (expired or invalid). */
  async function tokensAfterRefusal(
    used: StoredTokens,
    refused: LineageApiError,
  ): Promise<StoredTokens> {
    const current = await storage.get();
    // Logged out, or a refresh failed and cleared the tokens, meanwhile.
    if (current === null) throw refused;
    // Another caller's refresh finished between this request's send and its
    // 401: the held token is already the new one.
    if (current.access_token !== used.access_token) return current;
    return refreshOnce(current);
  }

  /** The error of a failed authenticated call; a session that is over takes its tokens with it. */
  async function failure(response: Response, used: string): Promise<LineageApiError> {
    const error = await LineageApiError.from(response);
    if (SESSION_ENDED_CODES.has(error.code)) {
      await ended(error, (current) => current.access_token === used);
    }
    return error;
  }

  /** Sends an authenticated call; on a refreshable 401, refreshes and retries it once. */
  async function authorized(call: Call): Promise<Response> {
    const used = await currentTokens();
    // Without tokens the request still goes out, and the server's answer
    // (401 token_missing) is the error the caller gets.
    if (used === null) return expectOk(await exchange(call));
    const response = await exchange(call, used);
    if (response.ok) return response;
    const error = await failure(response, used.access_token);
    // Only an access token the server no longer accepts is worth a refresh: an
    // ended session would fail again. A second refusal is final (no loop).
    if (!REFRESHABLE_CODES.has(error.code)) throw error;
    const fresh = await tokensAfterRefusal(used, error);
    // The retry's answer is final, whatever it is: at most one retry.
    const retried = await exchange(call, fresh);
    if (!retried.ok) throw await failure(retried, fresh.access_token);
    return retried;
  }

  /** Runs a call that ends this client's session when it succeeds (the server also clears the cookie). */
  async function ending<T>(run: () => Promise<T>): Promise<T> {
    const result = await run();
    await signedOut('this_tab');
    return result;
  }

  async function logoutWithBody(tokens: StoredTokens): Promise<void> {
    try {
      const response = await exchange(
        {
          method: 'POST',
          path: '/auth/logout',
          body: { refresh_token: tokens.refresh_token },
          // Repeating a logout is harmless.
          idempotent: true,
        },
        tokens,
      );
      if (response.ok) return;
      const error = await LineageApiError.from(response);
      if (REFRESHABLE_CODES.has(error.code)) {
        // Logout needs an accepted access token; rather than refresh only to
        // log out, revoke the session by its refresh token (RFC 7009 §2.1),
        // which answers 200 whatever the token's state (§2.2).
        await expectOk(
          await exchange({
            method: 'POST',
            path: '/auth/revoke',
            body: { token: tokens.refresh_token, token_type_hint: 'refresh_token' },
            // A bound refresh token is revoked only with its key's proof.
            proof: true,
            idempotent: true,
          }),
        );
        return;
      }
      // Any other 401: the session is already over, which is what was asked;
      // but not after a refused DPoP proof, which left the session as it was.
      if (error.status !== 401 || DPOP_CODES.has(error.code)) throw error;
    } finally {
      await signedOut('this_tab');
    }
  }

  async function logoutWithCookie(): Promise<void> {
    try {
      // The server reads the cookie (no body) and clears it; an expired
      // access token is refreshed first, as for any call.
      await authorized({ method: 'POST', path: '/auth/logout', idempotent: true });
    } catch (error) {
      // A session already over is logged out; anything else (network, 503)
      // keeps the state, since the cookie would still revive the session.
      const over =
        error instanceof LineageApiError && error.status === 401 && !DPOP_CODES.has(error.code);
      if (!over) throw error;
    }
    await signedOut('this_tab');
  }

  return {
    startSession,
    authorized,
    ending,

    async holds(sessionId) {
      const held = await storage.get();
      return held !== null && sessionIdOf(held.access_token) === sessionId;
    },

    async restore() {
      if (cookie) {
        const tokens = (await storage.get()) ?? (await restoreTokens());
        if (tokens === null) return null;
      } else {
        sessionKnown = true;
        const tokens = await storage.get();
        if (tokens === null) return null;
        schedule(tokens);
        if (!announced) {
          announced = true;
          emit({ type: 'signed_in', source: 'this_tab' });
        }
      }
      try {
        return await json<User>(
          await authorized({ method: 'GET', path: '/users/me', idempotent: true }),
        );
      } catch (error) {
        // The session turned out to be over: forgotten and announced already.
        if ((await storage.get()) === null && error instanceof LineageApiError) return null;
        throw error;
      }
    },

    async logout() {
      // A refresh in flight would keep its tokens after this forgets them.
      await refreshing?.catch(() => undefined);
      const tokens = await storage.get();
      if (tokens === null) {
        if (cookie && !sessionKnown && (await restoreTokens()) !== null) return logoutWithCookie();
        await signedOut('this_tab');
        return;
      }
      return cookie ? logoutWithCookie() : logoutWithBody(tokens);
    },

    isLoggedIn: async () => (await storage.get()) !== null,

    getAccessToken: async () => (await currentTokens())?.access_token ?? null,

    async refresh() {
      await refreshOnce(await storage.get());
    },

    onAuthStateChange(listener) {
      listeners.add(listener);
      return () => {
        listeners.delete(listener);
      };
    },

    close() {
      schedule(null);
      tabs?.close();
      listeners.clear();
    },
  };
}
