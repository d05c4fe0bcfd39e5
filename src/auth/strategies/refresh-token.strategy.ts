import { Injectable } from '@nestjs/common';
import { PassportStrategy } from '@nestjs/passport';
import type { FastifyRequest } from 'fastify';
import { Strategy } from 'passport-jwt';
import { ErrorCode, SessionEndedError } from '../../common/errors.js';
import { RefreshCookie } from '../refresh-cookie.js';
import {
  asPassportKey,
  type DecodedJwt,
  REFRESH_TOKEN_ALG,
  REFRESH_TOKEN_TYP,
  readClaims,
  type TokenClaims,
} from '../token-claims.js';
import { TokenService } from '../token.service.js';

export const REFRESH_STRATEGY = 'jwt-refresh';

/** What the refresh guard hands the controller: the verified claims and the raw token. */
export interface PresentedRefreshToken {
  claims: TokenClaims;
  token: string;
}

/** Where a presented refresh token came from; a failed cookie is cleared. */
export type RefreshTokenSource = 'body' | 'cookie';

/**
 * The body's `refresh_token`, or else the `refresh_token` cookie, but only
 * when the request carries `X-Token-Transport: cookie` (the CSRF defence
 * documented on RefreshCookie).
 */
export function locateRefreshToken(
  request: unknown,
): { token: string; source: RefreshTokenSource } | null {
  const req = request as FastifyRequest;
  const fromBody = (req.body as { refresh_token?: unknown } | undefined)?.refresh_token;
  if (typeof fromBody === 'string' && fromBody.length > 0)
    return { token: fromBody, source: 'body' };
  if (fromBody !== undefined) return null;
  const fromCookie = RefreshCookie.requested(req) ? RefreshCookie.read(req) : undefined;
  return fromCookie ? { token: fromCookie, source: 'cookie' } : null;
}

export const extractRefreshToken = (request: unknown): string | null =>
  locateRefreshToken(request)?.token ?? null;

/**
 * Verifies a refresh token from the request body (or the cookie transport) with the refresh key and
 * `typ`, so an access token can never be used to refresh (RFC 8725 §3.11).
 * Whether the token is still current is decided by the rotation transaction.
 */
@Injectable()
export class RefreshTokenStrategy extends PassportStrategy(Strategy, REFRESH_STRATEGY) {
  constructor(tokens: TokenService) {
    super({
      jwtFromRequest: extractRefreshToken,
      secretOrKey: asPassportKey(tokens.refreshKey),
      algorithms: [REFRESH_TOKEN_ALG],
      issuer: tokens.issuer,
      audience: tokens.audience,
      jsonWebTokenOptions: { complete: true },
      passReqToCallback: true,
    });
  }

  validate(request: unknown, decoded: DecodedJwt): PresentedRefreshToken {
    const claims = readClaims(decoded, REFRESH_TOKEN_TYP);
    const token = extractRefreshToken(request);
    if (!claims || !token) {
      throw new SessionEndedError(ErrorCode.TokenInvalid, 'Refresh token is invalid');
    }
    return { claims, token };
  }
}
