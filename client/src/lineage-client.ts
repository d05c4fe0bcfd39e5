import { createDpopSigner, defaultDpopKeyStore, type DpopKeyStore } from './dpop.js';
import { createTabCoordinator, SHARED, type TabCoordinator, type TabMessage } from './cross-tab.js';
import {
  DPOP_CODES,
  LineageApiError,
  type LineageErrorCode,
  REFRESHABLE_CODES,
  SESSION_ENDED_CODES,
} from './errors.js';
import { retryPolicy, type RetryOptions } from './retry.js';
import type { components, operations } from './schema.js';
import { memoryTokenStorage, type StoredTokens, type TokenStorage } from './token-storage.js';
import {
  type Call,
  createTransport,
  expectOk,
  json,
  optionalJson,
  type Query,
} from './transport.js';
import {
  fillPath,
  type HttpMethod,
  type OperationOf,
  type PathsFor,
  type RequestArgs,
  type ResponseOf,
} from './typed-request.js';

export {
  createDpopProof,
  createDpopSigner,
  exportDpopPublicJwk,
  generateDpopKeyPair,
  indexedDbDpopKeyStore,
  memoryDpopKeyStore,
  type DpopKeyPair,
  type DpopKeyStore,
  type DpopProofInput,
  type DpopPublicJwk,
  type DpopSigner,
} from './dpop.js';
export {
  LineageApiError,
  LineageNetworkError,
  type ErrorBody,
  type LineageError,
  type LineageErrorCode,
  type ServerErrorCode,
} from './errors.js';
export type { RetryOptions } from './retry.js';
export { memoryTokenStorage, type StoredTokens, type TokenStorage } from './token-storage.js';
export type {
  HttpMethod,
  OperationOf,
  PathsFor,
  RequestOptions,
  ResponseOf,
} from './typed-request.js';
export type { components, operations, paths } from './schema.js';

type Schemas = components['schemas'];
export type Credentials = Schemas['CredentialsDto'];
export type TokenResponse = Schemas['TokenResponseDto'];
export type User = Schemas['UserResponseDto'];
export type Todo = Schemas['TodoResponseDto'];
export type ListTodosQuery = NonNullable<operations['TodosController_list']['parameters']['query']>;
export type NewTodo = Schemas['CreateTodoDto'];
export type TodoChanges = Schemas['UpdateTodoDto'];
export type Session = Schemas['SessionDto'];
export type AuthEvent = Schemas['AuthEventDto'];
export type ListEventsQuery = NonNullable<
  operations['AuditController_list']['parameters']['query']
>;
export type LogoutAllScope = NonNullable<Schemas['LogoutAllDto']['scope']>;
export type LogoutAllResult = Schemas['LogoutAllResponseDto'];
export type PasswordChange = Schemas['ChangePasswordDto'];

/**
 * Where the refresh token travels. `cookie`: in the HttpOnly
 * `__Host-refresh_token` cookie the server sets, out of reach of page
 * scripts (browsers); the access token lives in this client's memory only.
 * `body`: in the JSON bodies, kept in the TokenStorage (Node, native apps).
 */
export type TokenTransport = 'cookie' | 'body';

/**
 * A change of the client's session state, emitted in this order for a
 * session: `signed_in` once, any number of `token_refreshed`, then one of
 * `signed_out` or `session_ended`, after which only a new `signed_in` comes.
 * An event is emitted before the call that caused it settles.
 */
export type AuthStateEvent =
  | {
      /**
       * Register, login, a restore() that found a session, another tab's
       * sign-in, or the first refresh of tokens a storage already held.
       */
      type: 'signed_in';
      source: EventSource;
    }
  | {
      /** A new access token (this tab's refresh or, with the cookie transport, another tab's). */
      type: 'token_refreshed';
      source: EventSource;
    }
  | {
      /**
       * A deliberate end: logout, logout-all with scope `all`, ending the
       * current session, deleting the account; here or in another tab.
       */
      type: 'signed_out';
      source: EventSource;
    }
  | {
      /**
       * The server says the session is over without this client asking:
       * revoked elsewhere (`session_revoked`: a logout on another device, a
       * password change, eviction), `session_expired`, `refresh_token_reused`
       * (theft detection), `token_invalid` on refresh. `code` and `message`
       * are the server's.
       */
      type: 'session_ended';
      source: EventSource;
      code: LineageErrorCode;
      message: string;
      status: number;
    };

/** Where an event started: in this client, or in another tab of the same origin. */
export type EventSource = 'this_tab' | 'other_tab';

export type AuthStateListener = (event: AuthStateEvent) => void;

export interface LineageClientOptions {
  /** The API's origin (and path prefix, if any), e.g. `https://api.example.com`. */
  baseUrl: string;
  /**
   * How the refresh token travels: `cookie` by default where there is a
   * `document` (a browser page), `body` elsewhere.
   */
  transport?: TokenTransport;
  /**
   * Where the tokens live with the `body` transport; in memory by default.
   * The `cookie` transport keeps the access token in memory and ignores this.
   */
  storage?: TokenStorage;
  /** A fetch implementation; the global one by default (Node >= 20, browsers). */
  fetch?: typeof fetch;
  /**
   * Binds sessions to a key pair this client holds (DPoP, RFC 9449), so its
   * tokens are worthless to whoever copies them without the key. `true`
   * keeps the key in IndexedDB where there is one (browsers: it survives a
   * reload, non-extractable), in memory elsewhere; `keys` names the store.
   */
  dpop?: true | { keys?: DpopKeyStore };
  /**
   * Seconds before the access token's expiry at which a request first
   * refreshes it, so that it is never sent expired (no 401 round trip).
   * Default: 10 % of the token's lifetime, at most 30 s.
   */
  refreshLeeway?: number;
  /**
   * Also refresh on a timer, at that moment, when nothing is being sent.
   * Default: on in browsers, off elsewhere (a timer keeps a Node process alive).
   */
  autoRefresh?: boolean;
  /** Retries of requests refused unprocessed (429, 503) or lost (network); off by default. */
  retry?: RetryOptions;
  /**
   * Coordinate with the other tabs of this origin (cookie transport in a
   * browser): one refresh for all of them, and a logout in one signs all
   * out. Default: on with the cookie transport where BroadcastChannel exists.
   */
  crossTab?: boolean;
  /** The clock, in ms since the epoch; Date.now by default. */
  now?: () => number;
}

export interface LineageClient {
  /** Creates the account and starts its first session; emits `signed_in`. */
  register(credentials: Credentials): Promise<TokenResponse>;
  /** Starts a session (a new token family); emits `signed_in`. */
  login(credentials: Credentials): Promise<TokenResponse>;
  /**
   * Picks up the session a page or process had before: with the cookie
   * transport, a refresh by cookie (the access token is only in memory);
   * with `body`, the stored tokens. Resolves to the user, or null when there
   * is no session: no cookie, nothing stored, or a session the server says
   * is over (that last case emits `session_ended`). Other failures (429,
   * 503, network) are thrown: the session may well be alive.
   */
  restore(): Promise<User | null>;
  /**
   * Ends the session on the server and forgets the tokens; emits
   * `signed_out`, also in the other tabs. A session that is already over
   * counts as logged out. With `body`, the tokens are forgotten even when
   * the call fails; with `cookie` they are kept when the server could not be
   * reached, since the cookie would revive the session on the next load.
   */
  logout(): Promise<void>;
  /** Ends every session of the user (`all`, the default; signs out here) or every other one. */
  logoutAll(scope?: LogoutAllScope): Promise<LogoutAllResult>;
  /** Whether this client holds tokens (not whether the server still accepts them). */
  isLoggedIn(): Promise<boolean>;
  /**
   * An access token good for at least the leeway, refreshed first if need
   * be; null when signed out. For calls made without this client (a DPoP-bound
   * token also needs a proof per request, which only the client's requests carry).
   */
  getAccessToken(): Promise<string | null>;
  /** Refreshes now (shared with concurrent callers and, in browsers, with the other tabs). */
  refresh(): Promise<void>;
  /** Listens to session state changes; returns the function that stops listening. */
  onAuthStateChange(listener: AuthStateListener): () => void;
  /**
   * An authorized call to any route of the API, typed from its OpenAPI
   * document: `request('GET', '/todos/{id}', { params: { id } })` resolves to
   * a Todo. Refreshes and retries as the named methods do. Use the named
   * methods for the auth routes: only they store the tokens they return.
   */
  request<M extends HttpMethod, P extends PathsFor<M>>(
    method: M,
    path: P,
    ...options: RequestArgs<OperationOf<P, M>>
  ): Promise<ResponseOf<OperationOf<P, M>>>;
  /** Stops the refresh timer and the cross-tab channel; the client is unusable after. */
  close(): void;
  users: {
    me(): Promise<User>;
    /** The account's auth events, newest first ("why was I signed out?"). */
    events(query?: ListEventsQuery): Promise<AuthEvent[]>;
    /** Changes the password; every other session ends, this one goes on. */
    changePassword(change: PasswordChange): Promise<void>;
    /** Deletes the account with its sessions, todos and events; emits `signed_out`. */
    deleteAccount(password: string): Promise<void>;
  };
  sessions: {
    /** The user's live sessions, most recently used first; `current` marks this one. */
    list(): Promise<Session[]>;
    /** Ends one session; ending this client's own signs it out (`signed_out`). */
    revoke(id: string): Promise<void>;
  };
  todos: {
    /** The caller's todos, newest first, with the total in `X-Total-Count`. */
    list(query?: ListTodosQuery): Promise<{ items: Todo[]; total: number }>;
    create(todo: NewTodo): Promise<Todo>;
    get(id: string): Promise<Todo>;
    update(id: string, changes: TodoChanges): Promise<Todo>;
    delete(id: string): Promise<void>;
  };
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

// Read off globalThis: the SDK is also compiled without the DOM library (by the tests).
const inBrowser = () => (globalThis as { document?: unknown }).document !== undefined;

/** A 400 for a refresh by cookie without the cookie: the request named no session. */
const isNoCookie = (error: LineageApiError) =>
  error.status === 400 && error.code === 'validation_failed';

/**
 * A client for the Lineage API. Requests carry the access token as
 * `Authorization: Bearer` (RFC 6750 §2.1). A token within `refreshLeeway` of
 * its expiry is refreshed before the request goes out. When a request is
 * still answered `401` with code `token_expired` or `token_invalid`, the
 * client refreshes once and retries that request once with the new access
 * token; any other 401 is surfaced as it is, and one saying the session is
 * over (revoked, expired, reused) also clears the tokens and emits
 * `session_ended`.
 *
 * With `dpop`, the auth routes carry a proof, which binds the session to the
 * client's key (RFC 9449 §5), and a session the server bound (`token_type:
 * DPoP`) sends its access token as `Authorization: DPoP` with a proof of its
 * own (§7.1). A request refused with `use_dpop_nonce` is signed again with the
 * server's nonce and sent once more (§8, §9).
 */
export function createLineageClient(options: LineageClientOptions): LineageClient {
  const baseUrl = options.baseUrl.replace(/\/+$/, '');
  const transport: TokenTransport = options.transport ?? (inBrowser() ? 'cookie' : 'body');
  const cookie = transport === 'cookie';
  // The cookie transport holds the access token in memory only: a store
  // readable from script would hand it to an XSS payload for its lifetime.
  const storage = cookie ? memoryTokenStorage() : (options.storage ?? memoryTokenStorage());
  // Called through a wrapper: browsers throw "Illegal invocation" when the
  // global fetch is called with a `this` other than the window.
  const fetchImpl: typeof fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
  const now = options.now ?? Date.now;
  const retry = retryPolicy(options.retry);
  const autoRefresh = options.autoRefresh ?? inBrowser();
  const dpop =
    options.dpop === undefined
      ? undefined
      : createDpopSigner(
          (options.dpop === true ? undefined : options.dpop.keys) ?? defaultDpopKeyStore(),
        );
  const { exchange } = createTransport({ baseUrl, fetch: fetchImpl, cookie, dpop, retry });
  const listeners = new Set<AuthStateListener>();
  const tabs: TabCoordinator | undefined =
    cookie && (options.crossTab ?? true)
      ? createTabCoordinator(`lineage:${baseUrl}`, (message) => fromOtherTab(message))
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
    if (dpop !== undefined) stored.token_type = tokens.token_type;
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
   * as the README's rule table says), so parallel refreshes would be safe;
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

  const todoPath = (id: string) => `/todos/${encodeURIComponent(id)}`;

  const request = async (
    method: HttpMethod,
    path: string,
    init: {
      params?: Record<string, string | number | boolean>;
      query?: Query;
      body?: unknown;
      headers?: Record<string, string>;
      idempotent?: boolean;
    } = {},
  ): Promise<unknown> =>
    optionalJson(
      await authorized({
        method,
        path: fillPath(path, init.params),
        query: init.query,
        body: init.body,
        headers: init.headers,
        // RFC 9110 §9.2.2.
        idempotent:
          init.idempotent ?? (method === 'GET' || method === 'PUT' || method === 'DELETE'),
      }),
    );

  return {
    register: (credentials) => startSession('/auth/register', credentials),
    login: (credentials) => startSession('/auth/login', credentials),

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

    async logoutAll(scope = 'all') {
      const run = async () =>
        json<LogoutAllResult>(
          await authorized({
            method: 'POST',
            path: '/auth/logout-all',
            body: { scope },
            idempotent: true,
          }),
        );
      return scope === 'all' ? ending(run) : run();
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

    request: request as LineageClient['request'],

    close() {
      schedule(null);
      tabs?.close();
      listeners.clear();
    },

    users: {
      me: async () =>
        json<User>(await authorized({ method: 'GET', path: '/users/me', idempotent: true })),
      events: async (query = {}) =>
        json<AuthEvent[]>(
          await authorized({ method: 'GET', path: '/users/me/events', query, idempotent: true }),
        ),
      async changePassword(change) {
        // Not retried after a lost response: the retry would present the old
        // password again, which no longer matches.
        await authorized({
          method: 'PATCH',
          path: '/users/me/password',
          body: change,
          idempotent: false,
        });
      },
      deleteAccount: (password) =>
        ending(async () => {
          await authorized({
            method: 'DELETE',
            path: '/users/me',
            body: { password },
            // A retry after a lost response would meet a deleted account's 401.
            idempotent: false,
          });
        }),
    },

    sessions: {
      list: async () =>
        json<Session[]>(
          await authorized({ method: 'GET', path: '/auth/sessions', idempotent: true }),
        ),
      async revoke(id) {
        const held = await storage.get();
        const own = held !== null && sessionIdOf(held.access_token) === id;
        const run = async () => {
          await authorized({
            method: 'DELETE',
            path: `/auth/sessions/${encodeURIComponent(id)}`,
            idempotent: true,
          });
        };
        return own ? ending(run) : run();
      },
    },

    todos: {
      async list(query = {}) {
        const response = await authorized({
          method: 'GET',
          path: '/todos',
          query,
          idempotent: true,
        });
        const items = await json<Todo[]>(response);
        return { items, total: Number(response.headers.get('X-Total-Count') ?? items.length) };
      },
      create: async (todo) =>
        json<Todo>(
          await authorized({
            method: 'POST',
            path: '/todos',
            body: todo,
            // A lost response may have created it: a retry would create a second one.
            idempotent: false,
          }),
        ),
      get: async (id) =>
        json<Todo>(await authorized({ method: 'GET', path: todoPath(id), idempotent: true })),
      update: async (id, changes) =>
        json<Todo>(
          await authorized({
            method: 'PATCH',
            path: todoPath(id),
            body: changes,
            // The same changes applied twice leave the todo as applied once.
            idempotent: true,
          }),
        ),
      async delete(id) {
        await authorized({ method: 'DELETE', path: todoPath(id), idempotent: true });
      },
    },
  };
}
