import type { LineageClient, LineageClientOptions, TokenTransport } from './api.js';
import { createDpopSigner, defaultDpopKeyStore } from './dpop.js';
import { retryPolicy } from './retry.js';
import { createRoutes } from './routes.js';
import { createSession } from './session.js';
import { memoryTokenStorage } from './token-storage.js';
import { createTransport } from './transport.js';

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
export type * from './api.js';

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
