/** What the client keeps between calls: the pair from the last token response. */
export interface StoredTokens {
  access_token: string;
  /**
   * Single-use (RFC 9700 §4.14.2): every refresh replaces it with the one the
   * server returns. Absent with the cookie transport, where the browser keeps
   * it in an HttpOnly cookie that no script reads.
   */
  refresh_token?: string;
  /**
   * When the access token expires, in milliseconds since the epoch by this
   * machine's clock: the time the token response arrived plus its
   * `expires_in`, so a skewed clock does not matter. The client refreshes
   * shortly before it (`refreshLeeway`). Absent in tokens stored by earlier
   * versions, which are refreshed when the server refuses them.
   */
  expires_at?: number;
  /** The access token's lifetime in seconds (`expires_in`), for the default leeway. */
  expires_in?: number;
  /**
   * The token response's `token_type` (RFC 6749 §5.1, case-insensitive), kept
   * by a DPoP client only: `DPoP` means the session is bound to its key (RFC
   * 9449 §5) and the access token goes out as `Authorization: DPoP` with a
   * proof (§7.1); absent, or `Bearer`, as `Authorization: Bearer`.
   */
  token_type?: string;
}

/**
 * Where the tokens live. Methods may be synchronous or return promises, so a
 * store backed by IndexedDB, a native keychain or a server-side session fits.
 *
 * A browser store that is readable from script (localStorage, sessionStorage)
 * hands the refresh token to any XSS payload (RFC 9700 §4.14); the default
 * keeps it in memory, which lasts as long as the page or process.
 */
export interface TokenStorage {
  get(): StoredTokens | null | Promise<StoredTokens | null>;
  set(tokens: StoredTokens): void | Promise<void>;
  clear(): void | Promise<void>;
}

export function memoryTokenStorage(initial: StoredTokens | null = null): TokenStorage {
  let tokens = initial;
  return {
    get: () => tokens,
    set: (next) => {
      tokens = next;
    },
    clear: () => {
      tokens = null;
    },
  };
}
