import { Injectable } from '@nestjs/common';
import { PassportStrategy } from '@nestjs/passport';
import { ExtractJwt, Strategy } from 'passport-jwt';
import { ErrorCode, UnauthorizedError } from '../../common/errors.js';
import type { Principal } from '../principal.js';
import { SessionService } from '../session.service.js';
import {
  ACCESS_TOKEN_TYP,
  asPassportKey,
  type DecodedJwt,
  JWT_ALGORITHM,
  readClaims,
} from '../token-claims.js';
import { TokenService } from '../token.service.js';

export const ACCESS_STRATEGY = 'jwt';

/**
 * Verifies the bearer access token (RFC 6750 §2.1: Authorization header only),
 * pinning algorithm, issuer, audience and `typ` (RFC 8725 §3.1, §3.11), then
 * checks the session is still live so logout takes effect at once.
 */
@Injectable()
export class AccessTokenStrategy extends PassportStrategy(Strategy, ACCESS_STRATEGY) {
  constructor(
    tokens: TokenService,
    private readonly sessions: SessionService,
  ) {
    super({
      jwtFromRequest: ExtractJwt.fromAuthHeaderAsBearerToken(),
      secretOrKey: asPassportKey(tokens.accessKey),
      algorithms: [JWT_ALGORITHM],
      issuer: tokens.issuer,
      audience: tokens.audience,
      jsonWebTokenOptions: { complete: true },
    });
  }

  async validate(decoded: DecodedJwt): Promise<Principal> {
    const claims = readClaims(decoded, ACCESS_TOKEN_TYP);
    if (!claims) throw new UnauthorizedError(ErrorCode.TokenInvalid, 'Access token is invalid');
    await this.sessions.assertActive(claims.sid, claims.sub);
    return { userId: claims.sub, sessionId: claims.sid };
  }
}
