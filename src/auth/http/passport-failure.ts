import { inspect } from 'node:util';
import { AppError } from '../../common/errors.js';
import { AuthErrors } from '../auth-errors.js';

/**
 * Turns what passport-jwt reports into our typed errors. An expired token gets
 * its own code so a client knows to refresh rather than log in again
 * (RFC 6750 §3.1 `invalid_token`, with our own stable code).
 */
export function passportFailure(
  err: unknown,
  info: unknown,
  kind: 'Access' | 'Refresh',
  presented = true,
): Error {
  if (err instanceof AppError) return err;
  if (err instanceof Error) return err;
  // Anything else passport reports is unexpected (a 500); keep what it was for the log.
  if (err) {
    return new Error(`Passport reported a non-Error failure: ${inspect(err)}`, { cause: err });
  }
  // What our own key provider reported (passport-jwt passes it on as `info`).
  if (info instanceof AppError) return info;
  const name = (info as { name?: string } | undefined)?.name;
  if (name === 'TokenExpiredError') {
    // A refresh token expires with its session (inactivity timeout or
    // SESSION_MAX_AGE): the client must log in again, not retry.
    return kind === 'Refresh' ? AuthErrors.sessionExpired() : AuthErrors.accessTokenExpired();
  }
  if (name === 'JsonWebTokenError' || name === 'NotBeforeError') return invalid(kind);
  // Anything else about a presented token is a bad token: jsonwebtoken lets
  // some malformed inputs through as plain errors (an ES256 signature of the
  // wrong length is a TypeError from its JOSE-to-DER conversion).
  if (kind === 'Access' && !presented) {
    return AuthErrors.accessTokenMissing();
  }
  return invalid(kind);
}

const invalid = (kind: 'Access' | 'Refresh') =>
  kind === 'Refresh' ? AuthErrors.refreshTokenInvalid() : AuthErrors.accessTokenInvalid();
