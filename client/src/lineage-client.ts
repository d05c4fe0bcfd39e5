import { createDpopSigner, defaultDpopKeyStore, type DpopKeyStore } from './dpop.js';
import type { LineageErrorCode } from './errors.js';
import { retryPolicy, type RetryOptions } from './retry.js';
import { createRoutes } from './routes.js';
import type { components, operations } from './schema.js';
import { createSession } from './session.js';
import { memoryTokenStorage, type TokenStorage } from './token-storage.js';
import { createTransport } from './transport.js';
import type {
  HttpMethod,
  OperationOf,
  PathsFor,
  RequestArgs,
  ResponseOf,
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

// Read off globalThis: the SDK is also compiled without the DOM library (by the tests).
const inBrowser = () => (globalThis as { document?: unknown }).document !== undefined;

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
  const session = createSession({
    cookie,
    storage,
    exchange,
    dpop: dpop !== undefined,
    refreshLeeway: options.refreshLeeway,
    autoRefresh,
    tabChannel: cookie && (options.crossTab ?? true) ? `lineage:${baseUrl}` : undefined,
    now,
  });
  const routes = createRoutes(session);

  return {
    register: (credentials) => session.startSession('/auth/register', credentials),
    login: (credentials) => session.startSession('/auth/login', credentials),
    restore: () => session.restore(),
    logout: () => session.logout(),
    logoutAll: (scope) => routes.logoutAll(scope),
    isLoggedIn: () => session.isLoggedIn(),
    getAccessToken: () => session.getAccessToken(),
    refresh: () => session.refresh(),
    onAuthStateChange: (listener) => session.onAuthStateChange(listener),
    request: routes.request,
    close: () => session.close(),
    users: routes.users,
    sessions: routes.sessions,
    todos: routes.todos,
  };
}
