import { Injectable } from '@nestjs/common';
import { PassportStrategy } from '@nestjs/passport';
import { Strategy } from 'passport-jwt';
import { AuthErrors } from '../auth-errors.js';
import type { PresentedRefreshToken } from '../sessions/refresh-outcomes.js';
import {
  asPassportKey,
  type DecodedJwt,
  REFRESH_TOKEN_ALG,
  readRefreshClaims,
} from '../tokens/token-claims.js';
import { TokenService } from '../tokens/token.service.js';
import { type RefreshRequest, presentedRefreshToken } from './refresh-cookie.js';

export const REFRESH_STRATEGY = 'jwt-refresh';

/**
 * Verifies the refresh token the guard found in the request (body or cookie
 * transport) with the refresh key and `typ`, so an access token can never be
 * used to refresh (RFC 8725 §3.11). Whether the token is still current is
 * decided by the rotation (SessionsService.refresh).
 */
@Injectable()
export class RefreshTokenStrategy extends PassportStrategy(Strategy, REFRESH_STRATEGY) {
  constructor(tokens: TokenService) {
    super({
      jwtFromRequest: (request: RefreshRequest) => presentedRefreshToken(request)?.token ?? null,
      secretOrKey: asPassportKey(tokens.refreshKey),
      algorithms: [REFRESH_TOKEN_ALG],
      issuer: tokens.issuer,
      audience: tokens.audience,
      jsonWebTokenOptions: { complete: true },
      passReqToCallback: true,
    });
  }

  validate(request: RefreshRequest, decoded: DecodedJwt): PresentedRefreshToken {
    const claims = readRefreshClaims(decoded);
    const token = presentedRefreshToken(request)?.token;
    if (!claims || !token) throw AuthErrors.refreshTokenInvalid();
    return { claims, token };
  }
}
