import { HttpStatus } from '@nestjs/common';

/** Stable, machine-readable error codes; clients may switch on them. */
export const ErrorCode = {
  ValidationFailed: 'validation_failed',
  InvalidCredentials: 'invalid_credentials',
  InvalidPassword: 'invalid_password',
  UsernameTaken: 'username_taken',
  TokenMissing: 'token_missing',
  TokenInvalid: 'token_invalid',
  TokenExpired: 'token_expired',
  SessionRevoked: 'session_revoked',
  SessionExpired: 'session_expired',
  RefreshTokenReused: 'refresh_token_reused',
  RefreshTokenSuperseded: 'refresh_token_superseded',
  NotFound: 'not_found',
  MethodNotAllowed: 'method_not_allowed',
  PayloadTooLarge: 'payload_too_large',
  UnsupportedMediaType: 'unsupported_media_type',
  BadRequest: 'bad_request',
  CookieDuplicated: 'cookie_duplicated',
  ServiceUnavailable: 'service_unavailable',
  RateLimited: 'rate_limited',
  /** RFC 6749 §5.2: the client (or resource server) failed to authenticate. */
  InvalidClient: 'invalid_client',
  /** RFC 6749 §5.2: the token endpoint does not support the grant_type sent. */
  UnsupportedGrantType: 'unsupported_grant_type',
  /** RFC 9449 §5, §7.1: the DPoP proof is missing, invalid, or of another key than the token's. */
  InvalidDpopProof: 'invalid_dpop_proof',
  /** RFC 9449 §8, §9: the proof must carry the nonce sent in `DPoP-Nonce`. */
  UseDpopNonce: 'use_dpop_nonce',
  InternalError: 'internal_error',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export interface ErrorDetail {
  field: string;
  messages: string[];
}

/**
 * A domain error with its HTTP status and stable code. Services throw these;
 * the global filter turns them into the one JSON error shape.
 */
export class AppError extends Error {
  constructor(
    readonly status: HttpStatus,
    readonly code: ErrorCode,
    message: string,
    readonly details?: ErrorDetail[],
    /** Seconds for a Retry-After header (429, 503). */
    readonly retryAfter?: number,
  ) {
    super(message);
    this.name = 'AppError';
  }
}

export class UnauthorizedError extends AppError {
  constructor(code: ErrorCode, message: string) {
    super(HttpStatus.UNAUTHORIZED, code, message);
  }
}

/**
 * A 401 that says the presented session is over for good: revoked, expired,
 * its refresh token reused, or a refresh token that is not one of ours. It
 * carries that fact so the transport can drop what it holds for the session
 * (the refresh cookie) in one place, and only then: a 5xx or a 429 says nothing
 * about the session, and a client that keeps its token can retry with it.
 */
export class SessionEndedError extends UnauthorizedError {
  constructor(
    code:
      | typeof ErrorCode.SessionRevoked
      | typeof ErrorCode.SessionExpired
      | typeof ErrorCode.RefreshTokenReused
      | typeof ErrorCode.TokenInvalid,
    message: string,
  ) {
    super(code, message);
  }
}

export class NotFoundError extends AppError {
  constructor(message = 'Resource not found') {
    super(HttpStatus.NOT_FOUND, ErrorCode.NotFound, message);
  }
}

export class RateLimitedError extends AppError {
  constructor(retryAfter: number) {
    super(
      HttpStatus.TOO_MANY_REQUESTS,
      ErrorCode.RateLimited,
      `Too many attempts; retry in ${retryAfter} s`,
      undefined,
      retryAfter,
    );
  }
}

export class ForbiddenError extends AppError {
  constructor(code: ErrorCode, message: string) {
    super(HttpStatus.FORBIDDEN, code, message);
  }
}

export class ConflictError extends AppError {
  constructor(code: ErrorCode, message: string) {
    super(HttpStatus.CONFLICT, code, message);
  }
}

export class ValidationError extends AppError {
  constructor(message: string, details?: ErrorDetail[]) {
    super(HttpStatus.BAD_REQUEST, ErrorCode.ValidationFailed, message, details);
  }
}
