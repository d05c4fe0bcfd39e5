import { Injectable } from '@nestjs/common';
import { PassportStrategy } from '@nestjs/passport';
import { Strategy } from 'passport-jwt';
import { AuthErrors } from '../auth-errors.js';
import type { Principal } from '../../common/principal.js';
import { SessionLiveness } from '../sessions/session-liveness.service.js';
import { SigningKeys } from '../signing-keys/signing-keys.service.js';
import {
  ACCESS_TOKEN_ALG,
  ACCESS_TOKEN_TYP,
  asPassportKey,
  type DecodedJwt,
  keyIdOf,
  readClaims,
} from '../tokens/token-claims.js';
import { TokenService } from '../tokens/token.service.js';
import { VerifiedAccessTokens } from '../tokens/verified-access-tokens.js';

export const ACCESS_STRATEGY = 'jwt';

/**
 * RFC 6750 §2.1 and RFC 9449 §7.1: `credentials = ("Bearer" / "DPoP") 1*SP
 * token68`, exactly one token, the scheme name case-insensitive (RFC 9110
 * §11.1). passport-jwt's own extractor takes the first whitespace-separated
 * word after the scheme and ignores the rest, so `Bearer <token> <anything>` passed.
 */
const CREDENTIALS = /^(Bearer|DPoP) +([A-Za-z0-9\-._~+/]+=*)$/i;
/** Either scheme with something after it: a credential was meant, well-formed or not. */
const ATTEMPT = /^(Bearer|DPoP)\s+\S/i;

export type AccessScheme = 'bearer' | 'dpop';

/**
 * What the Authorization header holds: one well-formed access token and its
 * scheme; none (no header, another scheme, or a scheme alone); or a malformed one.
 */
export type AccessCredential = { scheme: AccessScheme; token: string } | 'absent' | 'malformed';

export function accessCredential(request: unknown): AccessCredential {
  const header = (request as { headers?: Record<string, unknown> }).headers?.authorization;
  if (typeof header !== 'string') return 'absent';
  const match = CREDENTIALS.exec(header);
  if (match) return { scheme: match[1].toLowerCase() as AccessScheme, token: match[2] };
  return ATTEMPT.test(header) ? 'malformed' : 'absent';
}

/** Where an access token is read from: the Authorization header only (RFC 6750 §2.1, RFC 9449 §7.1). */
export function accessToken(request: unknown): string | null {
  const credential = accessCredential(request);
  return typeof credential === 'object' ? credential.token : null;
}

/**
 * Verifies the access token (RFC 6750 §2.1: Authorization header only)
 * with the published key its `kid` names, through the same key set the JWKS
 * serves; pins the algorithm to ES256 (so neither `none` nor an HMAC keyed
 * with our public key can pass), issuer, audience and `typ` (RFC 8725 §3.1,
 * §3.10, §3.11), then checks the session is still live so logout takes
 * effect at once. The DPoP proof a bound token needs is the guard's check.
 */
@Injectable()
export class AccessTokenStrategy extends PassportStrategy(Strategy, ACCESS_STRATEGY) {
  constructor(
    tokens: TokenService,
    keys: SigningKeys,
    private readonly sessions: SessionLiveness,
    private readonly verified: VerifiedAccessTokens,
  ) {
    super({
      jwtFromRequest: accessToken,
      passReqToCallback: true,
      secretOrKeyProvider: (
        _request: unknown,
        rawJwtToken: string,
        done: (error: Error | null, key?: Buffer) => void,
      ) => {
        const kid = keyIdOf(rawJwtToken);
        if (!kid) {
          done(AuthErrors.accessTokenInvalid());
          return;
        }
        keys.resolveVerificationKey(kid).then(
          (key) => (key ? done(null, asPassportKey(key)) : done(AuthErrors.accessTokenInvalid())),
          (error: unknown) => done(error instanceof Error ? error : new Error(String(error))),
        );
      },
      algorithms: [ACCESS_TOKEN_ALG],
      issuer: tokens.issuer,
      audience: tokens.audience,
      jsonWebTokenOptions: { complete: true },
    });
    // A token whose key left the set must not pass on an earlier verification either.
    keys.onKeysWithdrawn(() => verified.clear());
  }

  async validate(request: unknown, decoded: DecodedJwt): Promise<Principal> {
    const claims = readClaims(decoded, ACCESS_TOKEN_TYP);
    if (!claims) throw AuthErrors.accessTokenInvalid();
    await this.sessions.assertActive(claims.sid, claims.sub);
    const principal: Principal = { userId: claims.sub, sessionId: claims.sid };
    if (claims.cnf) principal.keyThumbprint = claims.cnf.jkt;
    // Fully verified: the guard may skip verification for this exact token
    // until it expires (the session check still runs every time).
    const token = accessToken(request);
    if (token) this.verified.remember(token, principal, claims.exp);
    return principal;
  }
}
