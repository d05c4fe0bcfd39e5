import { Injectable } from '@nestjs/common';
import { PassportStrategy } from '@nestjs/passport';
import { ExtractJwt, Strategy } from 'passport-jwt';
import { ErrorCode, UnauthorizedError } from '../../common/errors.js';
import {
  asPassportKey,
  type DecodedJwt,
  JWT_ALGORITHM,
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

export const extractRefreshToken = ExtractJwt.fromBodyField('refresh_token');

/**
 * Verifies a refresh token from the request body with the refresh key and
 * `typ`, so an access token can never be used to refresh (RFC 8725 §3.11).
 * Whether the token is still current is decided by the rotation transaction.
 */
@Injectable()
export class RefreshTokenStrategy extends PassportStrategy(Strategy, REFRESH_STRATEGY) {
  constructor(tokens: TokenService) {
    super({
      jwtFromRequest: extractRefreshToken,
      secretOrKey: asPassportKey(tokens.refreshKey),
      algorithms: [JWT_ALGORITHM],
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
      throw new UnauthorizedError(ErrorCode.TokenInvalid, 'Refresh token is invalid');
    }
    return { claims, token };
  }
}
