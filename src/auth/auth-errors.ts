import { HttpStatus } from '@nestjs/common';
import {
  AppError,
  ErrorCode,
  ForbiddenError,
  SessionEndedError,
  UnauthorizedError,
} from '../common/errors.js';

/**
 * Every error the auth feature answers with, each with its stable code and
 * its one message. A SessionEndedError tells the transport that the session
 * is over for good (the refresh cookie is then cleared); the others leave
 * the client's tokens as they are.
 */
export const AuthErrors = {
  /** One message and status for an unknown user and a wrong password (no enumeration). */
  invalidCredentials: () =>
    new UnauthorizedError(ErrorCode.InvalidCredentials, 'Invalid username or password'),
  invalidPassword: (message: string) => new ForbiddenError(ErrorCode.InvalidPassword, message),

  sessionRevoked: () => new SessionEndedError(ErrorCode.SessionRevoked, 'Session has been revoked'),
  sessionExpired: () => new SessionEndedError(ErrorCode.SessionExpired, 'Session has expired'),
  refreshTokenReused: () =>
    new SessionEndedError(
      ErrorCode.RefreshTokenReused,
      'Refresh token has already been used; the session has been revoked',
    ),
  /** A refresh token that fails verification can never refresh: the session is over for this client. */
  refreshTokenInvalid: () =>
    new SessionEndedError(ErrorCode.TokenInvalid, 'Refresh token is invalid'),
  /** Not a SessionEndedError: the session goes on for the client it belongs to. */
  refreshTokenOfAnotherClient: () =>
    new UnauthorizedError(ErrorCode.TokenInvalid, 'Refresh token was issued to another client'),
  /** Not a SessionEndedError: the session goes on, and a cookie is kept. */
  refreshTokenSuperseded: () =>
    new AppError(
      HttpStatus.CONFLICT,
      ErrorCode.RefreshTokenSuperseded,
      'A newer refresh token of this session has already been used; present the newest one',
    ),

  accessTokenMissing: () =>
    new UnauthorizedError(ErrorCode.TokenMissing, 'Missing bearer access token'),
  accessTokenInvalid: () =>
    new UnauthorizedError(ErrorCode.TokenInvalid, 'Access token is invalid'),
  /** RFC 6750 §3.1 `invalid_token`, with its own code so a client knows to refresh. */
  accessTokenExpired: () =>
    new UnauthorizedError(ErrorCode.TokenExpired, 'Access token has expired'),
  malformedBearer: () =>
    new UnauthorizedError(
      ErrorCode.TokenInvalid,
      'Malformed Authorization header: expected "Bearer" or "DPoP" and exactly one token',
    ),

  /** A write that concurrent requests kept invalidating: rare enough to ask for a retry. */
  retryConcurrent: (what: string) =>
    new AppError(
      HttpStatus.SERVICE_UNAVAILABLE,
      ErrorCode.ServiceUnavailable,
      `${what}; retry`,
      undefined,
      1,
    ),
} as const;
