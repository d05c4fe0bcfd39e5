import type { components } from './schema.js';

type ServerErrorBody = components['schemas']['ErrorResponseDto'];

/** The codes the server documents (its `ErrorCode` enum). */
export type ServerErrorCode = components['schemas']['ErrorCode'];

/**
 * Every `code` a client error can carry: the server's, plus two of the
 * client's own. `unexpected_response`: a non-2xx answer that is not the API's
 * error shape (an HTML page from a proxy, say). `network_error`: no answer at
 * all (LineageNetworkError).
 */
export type LineageErrorCode = ServerErrorCode | 'unexpected_response' | 'network_error';

/**
 * The server's one error shape: `{statusCode, error, code, message, details?}`,
 * its `code` one of the server's documented codes, or `unexpected_response`
 * for an answer that is not the API's (see LineageApiError.from).
 */
export type ErrorBody = Omit<ServerErrorBody, 'code'> & {
  code: ServerErrorCode | 'unexpected_response';
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

/**
 * `Retry-After` (RFC 9110 §10.2.3) in seconds: delay-seconds, or an HTTP date
 * turned into the seconds left until it (0 once past). Undefined when absent
 * or unreadable.
 */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (value === null) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  // An HTTP date names its day and month; anything else (a negative number,
  // say, which Date.parse reads as a year) is unreadable.
  if (!/[a-z]/i.test(trimmed)) return undefined;
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, Math.ceil((date - now) / 1000));
}

/** What the response's headers add to an error body. */
export interface ResponseDetails {
  /** Seconds from `Retry-After` (429 and 503 carry it). */
  retryAfter?: number;
  /** The server's `X-Request-Id` for this request: quote it when reporting a problem. */
  requestId?: string;
}

/** A non-2xx answer from the API, carrying its error body as sent. */
export class LineageApiError extends Error {
  override readonly name = 'LineageApiError';
  readonly status: number;
  readonly code: ErrorBody['code'];
  readonly body: ErrorBody;
  /** Seconds the server asks to wait before trying again (`Retry-After`), if it said. */
  readonly retryAfter?: number;
  /** The server's id for the request (`X-Request-Id`), to quote in a report. */
  readonly requestId?: string;

  constructor(body: ErrorBody, details: ResponseDetails = {}) {
    super(`${body.code}: ${body.message}`);
    this.status = body.statusCode;
    this.code = body.code;
    this.body = body;
    if (details.retryAfter !== undefined) this.retryAfter = details.retryAfter;
    if (details.requestId !== undefined) this.requestId = details.requestId;
  }

  /**
   * Reads the error from a response. A body that is not the API's shape (an
   * HTML page from a proxy, say) still becomes a LineageApiError, with code
   * `unexpected_response`, so callers handle one type.
   */
  /** A response's `Retry-After`, in seconds. */
  static retryAfterOf(response: Response): number | undefined {
    return parseRetryAfter(response.headers.get('Retry-After'));
  }

  static async from(response: Response): Promise<LineageApiError> {
    const details: ResponseDetails = {
      retryAfter: LineageApiError.retryAfterOf(response),
      requestId: response.headers.get('X-Request-Id') ?? undefined,
    };
    const text = await response.text();
    try {
      const body = JSON.parse(text) as Partial<ErrorBody> | null;
      if (typeof body?.code === 'string' && typeof body.message === 'string') {
        return new LineageApiError(
          {
            ...body,
            statusCode: response.status,
            error: body.error ?? response.statusText,
            code: body.code,
            message: body.message,
          },
          details,
        );
      }
    } catch {
      // Not JSON: falls through to the generic error below.
    }
    return new LineageApiError(
      {
        statusCode: response.status,
        error: response.statusText,
        code: 'unexpected_response',
        message: `Unexpected ${response.status} response from ${response.url || 'the API'}`,
      },
      details,
    );
  }
}

/**
 * No answer at all: the request failed before a response arrived (DNS, a
 * refused or reset connection, CORS, an aborted request). `cause` is what
 * fetch threw. Whether the server acted on the request cannot be known.
 */
export class LineageNetworkError extends Error {
  override readonly name = 'LineageNetworkError';
  readonly code = 'network_error' as const;

  constructor(
    readonly method: string,
    readonly url: string,
    cause: unknown,
  ) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    super(`network_error: ${method} ${url} failed: ${reason}`, { cause });
  }
}

/** Either kind of failure the client throws for a request. */
export type LineageError = LineageApiError | LineageNetworkError;
