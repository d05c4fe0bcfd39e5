import { HttpStatus } from '@nestjs/common';
import { STATUS_CODES } from 'node:http';
import { ErrorCode, type ErrorDetail } from './errors.js';

/** The one error shape every failing response carries. */
export interface ErrorBody {
  statusCode: number;
  error: string;
  /** On the OAuth endpoints: the message, as RFC 6749 §5.2 names it. */
  error_description?: string;
  code: string;
  message: string;
  details?: ErrorDetail[];
}

export function errorBody(
  status: number,
  code: string,
  message: string,
  details?: ErrorDetail[],
): ErrorBody {
  return {
    statusCode: status,
    error: STATUS_CODES[status] ?? 'Error',
    code,
    message,
    ...(details ? { details } : {}),
  };
}

/**
 * The RFC 6749 §5.2 error (and its status) for each code the OAuth endpoints
 * answer with; other codes (429, 5xx) keep their own status and shape.
 * Every refusal of a grant is `invalid_grant`, whatever the reason: the
 * client's only move is to start over, and `code` still says why.
 */
const OAUTH_ERRORS: Partial<Record<string, { error: string; status: number }>> = {
  [ErrorCode.ValidationFailed]: { error: 'invalid_request', status: HttpStatus.BAD_REQUEST },
  [ErrorCode.BadRequest]: { error: 'invalid_request', status: HttpStatus.BAD_REQUEST },
  [ErrorCode.UnsupportedMediaType]: { error: 'invalid_request', status: HttpStatus.BAD_REQUEST },
  [ErrorCode.InvalidClient]: { error: 'invalid_client', status: HttpStatus.UNAUTHORIZED },
  [ErrorCode.UnsupportedGrantType]: {
    error: 'unsupported_grant_type',
    status: HttpStatus.BAD_REQUEST,
  },
  [ErrorCode.InvalidCredentials]: { error: 'invalid_grant', status: HttpStatus.BAD_REQUEST },
  [ErrorCode.TokenInvalid]: { error: 'invalid_grant', status: HttpStatus.BAD_REQUEST },
  [ErrorCode.TokenExpired]: { error: 'invalid_grant', status: HttpStatus.BAD_REQUEST },
  [ErrorCode.SessionRevoked]: { error: 'invalid_grant', status: HttpStatus.BAD_REQUEST },
  [ErrorCode.SessionExpired]: { error: 'invalid_grant', status: HttpStatus.BAD_REQUEST },
  [ErrorCode.RefreshTokenReused]: { error: 'invalid_grant', status: HttpStatus.BAD_REQUEST },
  [ErrorCode.RefreshTokenSuperseded]: { error: 'invalid_grant', status: HttpStatus.BAD_REQUEST },
  // RFC 9449 §5 and §8 register these as token-endpoint errors of their own.
  [ErrorCode.InvalidDpopProof]: { error: 'invalid_dpop_proof', status: HttpStatus.BAD_REQUEST },
  [ErrorCode.UseDpopNonce]: { error: 'use_dpop_nonce', status: HttpStatus.BAD_REQUEST },
};

/**
 * The error as an OAuth endpoint answers it (RFC 6749 §5.2): `error` is the
 * OAuth error and `error_description` the message, while `statusCode`,
 * `code` and `message` stay, so the body is still the one error shape.
 */
export function oauthErrorBody(body: ErrorBody): ErrorBody {
  const oauth = OAUTH_ERRORS[body.code];
  if (!oauth) return body;
  return {
    ...body,
    statusCode: oauth.status,
    error: oauth.error,
    error_description: body.message,
  };
}

const CODE_BY_STATUS: Partial<Record<number, ErrorCode>> = {
  [HttpStatus.BAD_REQUEST]: ErrorCode.BadRequest,
  [HttpStatus.UNAUTHORIZED]: ErrorCode.TokenInvalid,
  [HttpStatus.NOT_FOUND]: ErrorCode.NotFound,
  [HttpStatus.METHOD_NOT_ALLOWED]: ErrorCode.MethodNotAllowed,
  [HttpStatus.PAYLOAD_TOO_LARGE]: ErrorCode.PayloadTooLarge,
  [HttpStatus.UNSUPPORTED_MEDIA_TYPE]: ErrorCode.UnsupportedMediaType,
  [HttpStatus.SERVICE_UNAVAILABLE]: ErrorCode.ServiceUnavailable,
};

export function codeForStatus(status: number): ErrorCode {
  return CODE_BY_STATUS[status] ?? (status >= 500 ? ErrorCode.InternalError : ErrorCode.BadRequest);
}

/**
 * RFC 6750 §3: every 401 but a client's names the Bearer scheme; a request that carried a
 * bad token also gets `error="invalid_token"`. Quotes are stripped from the
 * description so the header stays well-formed.
 */
export function wwwAuthenticate(code: string, message: string): string {
  // RFC 6749 §5.2: a failed client authentication names the scheme clients use, Basic.
  if (code === ErrorCode.InvalidClient) return 'Basic realm="lineage"';
  if (code === ErrorCode.TokenMissing || code === ErrorCode.InvalidCredentials) {
    return 'Bearer realm="lineage"';
  }
  // A quoted-string holds printable ASCII only (RFC 9110 §5.6.4): quotes,
  // backslashes and anything else a header cannot carry are dropped.
  const description = message.replace(/[^\x20-\x7e]|["\\]/g, '');
  // RFC 9449 §7.1, §9: a request to a resource that failed for its DPoP
  // proof is challenged under the DPoP scheme, with the error as is.
  if (code === ErrorCode.InvalidDpopProof || code === ErrorCode.UseDpopNonce) {
    return `DPoP realm="lineage", error="${code}", error_description="${description}"`;
  }
  return `Bearer realm="lineage", error="invalid_token", error_description="${description}"`;
}
