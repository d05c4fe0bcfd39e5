import { Injectable } from '@nestjs/common';
import { PassportStrategy } from '@nestjs/passport';
import type { FastifyRequest } from 'fastify';
import { Strategy } from 'passport-jwt';
import { ErrorCode, SessionEndedError } from '../../common/errors.js';
import { RefreshCookie } from './refresh-cookie.js';
import {
  asPassportKey,
  type DecodedJwt,
  REFRESH_TOKEN_ALG,
  readRefreshClaims,
  type RefreshTokenClaims,
} from '../tokens/token-claims.js';
import { TokenService } from '../tokens/token.service.js';

export const REFRESH_STRATEGY = 'jwt-refresh';

/** What the refresh guard hands the controller: the verified claims and the raw token. */
export interface PresentedRefreshToken {
  claims: RefreshTokenClaims;
  token: string;
}

/**
 * Verifies a refresh token from the request body (or the cookie transport) with the refresh key and
 * `typ`, so an access token can never be used to refresh (RFC 8725 §3.11).
 * Whether the token is still current is decided by the rotation transaction.
 */
@Injectable()
export class RefreshTokenStrategy extends PassportStrategy(Strategy, REFRESH_STRATEGY) {
  constructor(
    tokens: TokenService,
    private readonly cookie: RefreshCookie,
  ) {
    super({
      jwtFromRequest: (request: FastifyRequest) => cookie.locate(request)?.token ?? null,
      secretOrKey: asPassportKey(tokens.refreshKey),
      algorithms: [REFRESH_TOKEN_ALG],
      issuer: tokens.issuer,
      audience: tokens.audience,
      jsonWebTokenOptions: { complete: true },
      passReqToCallback: true,
    });
  }

  validate(request: FastifyRequest, decoded: DecodedJwt): PresentedRefreshToken {
    const claims = readRefreshClaims(decoded);
    const token = this.cookie.locate(request)?.token;
    if (!claims || !token) {
      throw new SessionEndedError(ErrorCode.TokenInvalid, 'Refresh token is invalid');
    }
    return { claims, token };
  }
}
