import {
  createDpopSigner,
  defaultDpopKeyStore,
  type DpopKeyStore,
  type DpopSigner,
} from './dpop.js';
import {
  DPOP_CODES,
  LineageApiError,
  REFRESHABLE_CODES,
  SESSION_ENDED_CODES,
  USE_DPOP_NONCE,
} from './errors.js';
import type { components, operations } from './schema.js';
import { memoryTokenStorage, type StoredTokens, type TokenStorage } from './token-storage.js';

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
export { LineageApiError, type ErrorBody } from './errors.js';
export { memoryTokenStorage, type StoredTokens, type TokenStorage } from './token-storage.js';

type Schemas = components['schemas'];
export type Credentials = Schemas['CredentialsDto'];
export type TokenResponse = Schemas['TokenResponseDto'];
export type User = Schemas['UserResponseDto'];
export type Todo = Schemas['TodoResponseDto'];
export type ListTodosQuery = NonNullable<operations['TodosController_list']['parameters']['query']>;
export type NewTodo = Schemas['CreateTodoDto'];
export type TodoChanges = Schemas['UpdateTodoDto'];

export interface LineageClientOptions {
  /** The API's origin (and path prefix, if any), e.g. `https://api.example.com`. */
  baseUrl: string;
  /** Where the tokens live; in memory by default. */
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
}

export interface LineageClient {
  /** Creates the account and starts its first session; the tokens are stored. */
  register(credentials: Credentials): Promise<TokenResponse>;
  /** Starts a session (a new token family); the tokens are stored. */
  login(credentials: Credentials): Promise<TokenResponse>;
  /**
   * Ends the session on the server and forgets the tokens. The tokens are
   * forgotten even when the call fails; only a failure other than "the
   * session is already over" is rethrown.
   */
  logout(): Promise<void>;
  /** Whether tokens are stored (not whether the server still accepts them). */
  isLoggedIn(): Promise<boolean>;
  users: {
    me(): Promise<User>;
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

type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE';
interface Init {
  method: Method;
  headers: Record<string, string>;
  body?: string;
}
type Query = Record<string, string | number | boolean | undefined>;

interface Call {
  method: Method;
  path: string;
  query?: Query;
  body?: unknown;
  /**
   * A DPoP client signs this call even without a DPoP access token: the
   * routes that bind a session to its key or check it (login, register,
   * refresh, revoke; RFC 9449 §5).
   */
  proof?: true;
}

/**
 * A client for the Lineage API. Requests carry the stored access token as
 * `Authorization: Bearer` (RFC 6750 §2.1). When one is answered `401` with
 * code `token_expired` or `token_invalid`, the client refreshes once and
 * retries that request once with the new access token; any other 401 is
 * surfaced as it is, and
 * one saying the session is over (revoked, expired, reused) also clears the
 * stored tokens.
 *
 * With `dpop`, the auth routes carry a proof, which binds the session to the
 * client's key (RFC 9449 §5), and a session the server bound (`token_type:
 * DPoP`) sends its access token as `Authorization: DPoP` with a proof of its
 * own (§7.1). A request refused with `use_dpop_nonce` is signed again with the
 * server's nonce and sent once more (§8, §9).
 */
export function createLineageClient(options: LineageClientOptions): LineageClient {
  const baseUrl = options.baseUrl.replace(/\/+$/, '');
  const storage = options.storage ?? memoryTokenStorage();
  // Called through a wrapper: browsers throw "Illegal invocation" when the
  // global fetch is called with a `this` other than the window.
  const fetchImpl: typeof fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
  const dpop =
    options.dpop === undefined
      ? undefined
      : createDpopSigner(
          (options.dpop === true ? undefined : options.dpop.keys) ?? defaultDpopKeyStore(),
        );

  /** The refresh every caller that saw a refreshable 401 right now awaits. */
  let refreshing: Promise<StoredTokens> | undefined;

  /** Whether the tokens are DPoP-bound, and this client can sign for them. */
  function bound(tokens: StoredTokens): boolean {
    return dpop !== undefined && tokens.token_type?.toLowerCase() === 'dpop';
  }

  function send(call: Call, tokens?: StoredTokens): Promise<Response> {
    const url = new URL(baseUrl + call.path);
    for (const [name, value] of Object.entries(call.query ?? {})) {
      if (value !== undefined) url.searchParams.set(name, String(value));
    }
    const dpopBound = tokens !== undefined && bound(tokens);
    const headers: Record<string, string> = {};
    if (tokens !== undefined) {
      headers.Authorization = `${dpopBound ? 'DPoP' : 'Bearer'} ${tokens.access_token}`;
    }
    // The server refuses a JSON content type with an empty body, so the header
    // goes only with a body.
    if (call.body !== undefined) headers['Content-Type'] = 'application/json';
    const init = {
      method: call.method,
      headers,
      body: call.body === undefined ? undefined : JSON.stringify(call.body),
    };
    if (dpop === undefined) return fetchImpl(url, init);
    // Resource requests are signed only with a bound access token, whose hash
    // the proof then carries (`ath`, RFC 9449 §4.2); with a Bearer one they go
    // out as without DPoP.
    if (dpopBound) return signed(dpop, url, init, tokens.access_token);
    if (call.proof === true) return signed(dpop, url, init);
    return remembering(dpop, url, init);
  }

  /** Sends a DPoP client's unsigned request, keeping the server's `DPoP-Nonce` (RFC 9449 §8.2). */
  async function remembering(signer: DpopSigner, url: URL, init: Init): Promise<Response> {
    const response = await fetchImpl(url, init);
    signer.remember(url, response);
    return response;
  }

  /**
   * Sends a request with a proof; when the server answers that it wants its
   * nonce in the proof, signs again with the nonce it sent and resends, once
   * (RFC 9449 §8, §9).
   */
  async function signed(
    signer: DpopSigner,
    url: URL,
    init: Init,
    accessToken?: string,
  ): Promise<Response> {
    // A new proof per attempt: a resent proof (same jti) is a replay (§11.1).
    const attempt = async () => {
      const proof = await signer.proof(init.method, url, accessToken);
      return remembering(signer, url, { ...init, headers: { ...init.headers, DPoP: proof } });
    };
    const response = await attempt();
    if (!(await asksForNonce(response))) return response;
    await response.body?.cancel();
    // The retry's answer is final, whatever it is: a server that asks again is not asked twice.
    return attempt();
  }

  /** A `use_dpop_nonce` refusal that came with the nonce to use. */
  async function asksForNonce(response: Response): Promise<boolean> {
    if (response.status !== 400 && response.status !== 401) return false;
    if (!response.headers.has('DPoP-Nonce')) return false;
    // Read from a copy: the caller reads the body of a refusal that is not this one.
    return (await LineageApiError.from(response.clone())).code === USE_DPOP_NONCE;
  }

  async function expectOk(response: Response): Promise<Response> {
    if (!response.ok) throw await LineageApiError.from(response);
    return response;
  }

  async function json<T>(response: Response): Promise<T> {
    return (await (await expectOk(response)).json()) as T;
  }

  async function storeTokens(tokens: TokenResponse): Promise<StoredTokens> {
    // This client always uses the JSON transport; a response without a refresh
    // token would mean the cookie transport, which it never asks for.
    if (tokens.refresh_token === undefined) {
      throw new Error('token response without refresh_token (cookie transport is not supported)');
    }
    const stored: StoredTokens = {
      access_token: tokens.access_token,
      refresh_token: tokens.refresh_token,
    };
    // Only a DPoP client needs the type (Bearer or DPoP); others store the pair as before.
    if (dpop !== undefined) stored.token_type = tokens.token_type;
    await storage.set(stored);
    return stored;
  }

  async function startSession(path: string, credentials: Credentials): Promise<TokenResponse> {
    const tokens = await json<TokenResponse>(
      await send({ method: 'POST', path, body: credentials, proof: true }),
    );
    await storeTokens(tokens);
    return tokens;
  }

  /**
   * One refresh at a time (single flight). The server answers a token
   * presented again, while its successor is unused, with that same successor
   * (RFC 9700 §4.14.2 rotation, as the README's rule table says), so parallel
   * refreshes would be safe; sharing one promise just spares the round trips
   * and the re-issue events they would record.
   */
  function refreshOnce(presented: StoredTokens): Promise<StoredTokens> {
    refreshing ??= refresh(presented).finally(() => {
      refreshing = undefined;
    });
    return refreshing;
  }

  /**
   * Forgets the tokens, unless they are no longer the ones that failed (a new
   * login, or another caller's refresh, replaced them meanwhile).
   */
  async function forgetIf(stillCurrent: (tokens: StoredTokens) => boolean): Promise<void> {
    const current = await storage.get();
    if (current !== null && stillCurrent(current)) await storage.clear();
  }

  async function refresh(presented: StoredTokens): Promise<StoredTokens> {
    const response = await send({
      method: 'POST',
      path: '/auth/refresh',
      body: { refresh_token: presented.refresh_token },
      // A bound session's refresh token is refused without its key's proof (RFC 9449 §5).
      proof: true,
    });
    if (!response.ok) {
      const error = await LineageApiError.from(response);
      // A newer token of this session was already used (another client
      // sharing this storage refreshed twice meanwhile): use what it stored.
      if (error.code === 'refresh_token_superseded') {
        const current = await storage.get();
        if (current !== null && current.refresh_token !== presented.refresh_token) {
          return current;
        }
      }
      // A 401 here (session_revoked, session_expired, refresh_token_reused,
      // token_invalid) means the session is over: nothing stored can revive it.
      // Other failures (429, 503, network, a refused DPoP proof) leave the
      // tokens for a later try.
      if (response.status === 401 && !DPOP_CODES.has(error.code)) {
        await forgetIf((current) => current.refresh_token === presented.refresh_token);
      }
      throw error;
    }
    const tokens = (await response.json()) as TokenResponse;
    // Rotation: the returned refresh token replaces the presented one, which
    // the server now treats as used.
    return storeTokens(tokens);
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
    // 401: the stored token is already the new one.
    if (current.access_token !== used.access_token) return current;
    return refreshOnce(current);
  }

  /** The error of a failed authenticated call; a session that is over takes its tokens with it. */
  async function failure(response: Response, used: string): Promise<LineageApiError> {
    const error = await LineageApiError.from(response);
    if (SESSION_ENDED_CODES.has(error.code)) {
      await forgetIf((current) => current.access_token === used);
    }
    return error;
  }

  /** Sends an authenticated call; on a refreshable 401, refreshes and retries it once. */
  async function authorized(call: Call): Promise<Response> {
    const used = await storage.get();
    // Without tokens the request still goes out, and the server's answer
    // (401 token_missing) is the error the caller gets.
    if (used === null) return expectOk(await send(call));
    const response = await send(call, used);
    if (response.ok) return response;
    const error = await failure(response, used.access_token);
    // Only an access token the server no longer accepts is worth a refresh: an
    // ended session would fail again. A second refusal is final (no loop).
    if (!REFRESHABLE_CODES.has(error.code)) throw error;
    const fresh = await tokensAfterRefusal(used, error);
    // The retry's answer is final, whatever it is: at most one retry.
    const retried = await send(call, fresh);
    if (!retried.ok) throw await failure(retried, fresh.access_token);
    return retried;
  }

  const todoPath = (id: string) => `/todos/${encodeURIComponent(id)}`;

  return {
    register: (credentials) => startSession('/auth/register', credentials),
    login: (credentials) => startSession('/auth/login', credentials),

    async logout() {
      // A refresh in flight would store its tokens after this clears them.
      await refreshing?.catch(() => undefined);
      const tokens = await storage.get();
      if (tokens === null) return;
      try {
        const response = await send(
          { method: 'POST', path: '/auth/logout', body: { refresh_token: tokens.refresh_token } },
          tokens,
        );
        if (response.ok) return;
        const error = await LineageApiError.from(response);
        if (REFRESHABLE_CODES.has(error.code)) {
          // Logout needs an accepted access token; rather than refresh only to
          // log out, revoke the session by its refresh token (RFC 7009 §2.1),
          // which answers 200 whatever the token's state (§2.2).
          await expectOk(
            await send({
              method: 'POST',
              path: '/auth/revoke',
              body: { token: tokens.refresh_token, token_type_hint: 'refresh_token' },
              // A bound refresh token is revoked only with its key's proof.
              proof: true,
            }),
          );
          return;
        }
        // Any other 401: the session is already over, which is what was asked;
        // but not after a refused DPoP proof, which left the session as it was.
        if (error.status !== 401 || DPOP_CODES.has(error.code)) throw error;
      } finally {
        await storage.clear();
      }
    },

    isLoggedIn: async () => (await storage.get()) !== null,

    users: {
      me: async () => json<User>(await authorized({ method: 'GET', path: '/users/me' })),
    },

    todos: {
      async list(query = {}) {
        const response = await authorized({ method: 'GET', path: '/todos', query });
        const items = await json<Todo[]>(response);
        return { items, total: Number(response.headers.get('X-Total-Count') ?? items.length) };
      },
      create: async (todo) =>
        json<Todo>(await authorized({ method: 'POST', path: '/todos', body: todo })),
      get: async (id) => json<Todo>(await authorized({ method: 'GET', path: todoPath(id) })),
      update: async (id, changes) =>
        json<Todo>(await authorized({ method: 'PATCH', path: todoPath(id), body: changes })),
      async delete(id) {
        await authorized({ method: 'DELETE', path: todoPath(id) });
      },
    },
  };
}
