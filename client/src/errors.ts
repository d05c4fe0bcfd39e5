import type { components } from './schema.js';

type ServerErrorBody = components['schemas']['ErrorResponseDto'];

/**
 * The server's one error shape: `{statusCode, error, code, message, details?}`,
 * its `code` one of the server's documented codes, or `unexpected_response`
 * for an answer that is not the API's (see LineageApiError.from).
 */
export type ErrorBody = Omit<ServerErrorBody, 'code'> & {
  code: ServerErrorBody['code'] | 'unexpected_response';
};

/** The access token is past `exp`: refresh, then retry (the README's Errors section lists every code). */
export const TOKEN_EXPIRED = 'token_expired';

/**
 * Access-token refusals a refresh can cure: past `exp`, or no longer
 * verifiable (its signing key was revoked, or the token was damaged) while the
 * session, which the refresh token stands for, may be intact. Tried once.
 */
export const REFRESHABLE_CODES: ReadonlySet<string> = new Set([TOKEN_EXPIRED, 'token_invalid']);

/** The session (token family) is over: no stored token will work again. */
export const SESSION_ENDED_CODES: ReadonlySet<string> = new Set([
  'session_revoked',
  'session_expired',
  'refresh_token_reused',
]);

/** The proof was missing, malformed, signed with another key or replayed (RFC 9449 §7.1). */
export const INVALID_DPOP_PROOF = 'invalid_dpop_proof';

/**
 * The server wants its nonce in the proof (RFC 9449 §8 at the auth routes as
 * a 400, §9 at resources as a 401) and sent it in `DPoP-Nonce`: sign again
 * with it, once.
 */
export const USE_DPOP_NONCE = 'use_dpop_nonce';

/**
 * DPoP refusals are about one request's proof, not the session: the tokens
 * stay, since the next request, properly signed, may well succeed.
 */
export const DPOP_CODES: ReadonlySet<string> = new Set([INVALID_DPOP_PROOF, USE_DPOP_NONCE]);

/** A non-2xx answer from the API, carrying its error body as sent. */
export class LineageApiError extends Error {
  override readonly name = 'LineageApiError';
  readonly status: number;
  readonly code: ErrorBody['code'];
  readonly body: ErrorBody;

  constructor(body: ErrorBody) {
    super(`${body.code}: ${body.message}`);
    this.status = body.statusCode;
    this.code = body.code;
    this.body = body;
  }

  /**
   * Reads the error from a response. A body that is not the API's shape (an
   * HTML page from a proxy, say) still becomes a LineageApiError, with code
   * `unexpected_response`, so callers handle one type.
   */
  static async from(response: Response): Promise<LineageApiError> {
    const text = await response.text();
    try {
      const body = JSON.parse(text) as Partial<ErrorBody> | null;
      if (typeof body?.code === 'string' && typeof body.message === 'string') {
        return new LineageApiError({
          ...body,
          statusCode: response.status,
          error: body.error ?? response.statusText,
          code: body.code,
          message: body.message,
        });
      }
    } catch {
      // Not JSON: falls through to the generic error below.
    }
    return new LineageApiError({
      statusCode: response.status,
      error: response.statusText,
      code: 'unexpected_response',
      message: `Unexpected ${response.status} response from ${response.url || 'the API'}`,
    });
  }
}
