import type { DpopKeyStore } from './dpop.js';
import type { LineageErrorCode } from './errors.js';
import type { RetryOptions } from './retry.js';
import type { components, operations } from './schema.js';
import type { TokenStorage } from './token-storage.js';
import type {
  HttpMethod,
  OperationOf,
  PathsFor,
  RequestArgs,
  ResponseOf,
} from './typed-request.js';

/*
 * The client's public types: what createLineageClient takes and returns, the
 * events it emits and the shapes of the API it speaks, named after the
 * OpenAPI document's schemas. lineage-client.ts re-exports them all.
 */

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
