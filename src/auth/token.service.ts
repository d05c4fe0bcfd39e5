import { createHash, createSecretKey, type KeyObject, randomUUID } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { JwtService } from '@nestjs/jwt';
import type { AppConfig, AuthConfig } from '../config/configuration.js';
import { SigningKeys } from './signing-keys/signing-keys.service.js';
import {
  ACCESS_TOKEN_ALG,
  ACCESS_TOKEN_TYP,
  type DecodedJwt,
  keyIdOf,
  readClaims,
  REFRESH_TOKEN_ALG,
  REFRESH_TOKEN_TYP,
  type TokenClaims,
} from './token-claims.js';

export interface SignedToken {
  token: string;
  claims: TokenClaims;
}

export interface RefreshTokenSpec {
  id: string;
  userId: string;
  familyId: string;
  issuedAt: Date;
  expiresAt: Date;
}

export const toEpochSeconds = (date: Date): number => Math.floor(date.getTime() / 1000);

/**
 * Signs access and refresh tokens, each type with its own algorithm and keys
 * (RFC 8725 §3.1, §3.11):
 *
 * - access tokens with the current ES256 key of SigningKeys, its `kid` in
 *   the header, so any service can verify them from the published JWKS;
 * - refresh tokens with HS256 under JWT_REFRESH_SECRET: only this service
 *   ever reads them. The key is a prebuilt `KeyObject`: jsonwebtoken rebuilds
 *   a key from a string secret on every call (~400 µs), a KeyObject costs ~8 µs.
 *
 * Keys are always passed explicitly per token type: neither JwtService has a
 * module-level secret to fall back to.
 */
@Injectable()
export class TokenService {
  readonly refreshKey: KeyObject;
  private readonly auth: AuthConfig;
  private readonly accessJwt: JwtService;
  private readonly refreshJwt: JwtService;

  constructor(
    config: ConfigService<AppConfig, true>,
    private readonly signingKeys: SigningKeys,
  ) {
    this.auth = config.get('auth', { infer: true });
    this.refreshKey = createSecretKey(Buffer.from(this.auth.refreshSecret, 'utf8'));
    this.accessJwt = new JwtService({ signOptions: { algorithm: ACCESS_TOKEN_ALG } });
    this.refreshJwt = new JwtService({
      secret: this.refreshKey,
      signOptions: {
        algorithm: REFRESH_TOKEN_ALG,
        header: { alg: REFRESH_TOKEN_ALG, typ: REFRESH_TOKEN_TYP },
      },
    });
  }

  get issuer(): string {
    return this.auth.issuer;
  }

  get audience(): string {
    return this.auth.audience;
  }

  get accessTokenTtl(): number {
    return this.auth.accessTokenTtl;
  }

  /**
   * An access token never outlives its session (`sessionEnd`): the access
   * guard can then skip the expiry check of the session and only ask whether
   * it was ended early (see SessionRevocations).
   */
  signAccessToken(userId: string, familyId: string, now: Date, sessionEnd: Date): SignedToken {
    const iat = toEpochSeconds(now);
    const claims: TokenClaims = {
      sub: userId,
      sid: familyId,
      jti: randomUUID(),
      iat,
      exp: Math.min(iat + this.auth.accessTokenTtl, toEpochSeconds(sessionEnd)),
      iss: this.auth.issuer,
      aud: this.auth.audience,
    };
    const signer = this.signingKeys.signer(now.getTime());
    if (!signer) throw new Error('No signing key is available');
    const token = this.accessJwt.sign(claims, {
      privateKey: signer.privateKey,
      header: { alg: ACCESS_TOKEN_ALG, typ: ACCESS_TOKEN_TYP, kid: signer.kid },
    });
    return { token, claims };
  }

  /**
   * Deterministic: the same spec always yields the same token (HS256 over the
   * same header and claims), which is how the reuse grace window answers a
   * retried refresh with the very token it already issued, without storing it.
   */
  signRefreshToken(spec: RefreshTokenSpec): SignedToken {
    const claims: TokenClaims = {
      sub: spec.userId,
      sid: spec.familyId,
      jti: spec.id,
      iat: toEpochSeconds(spec.issuedAt),
      exp: toEpochSeconds(spec.expiresAt),
      iss: this.auth.issuer,
      aud: this.auth.audience,
    };
    return { token: this.refreshJwt.sign(claims), claims };
  }

  /**
   * Identifies a refresh token for logout and revocation only: signature,
   * algorithm, issuer, audience and `typ` are checked, expiry is not (an
   * expired token of a live session still names the session its owner wants ended).
   */
  verifyRefreshTokenIgnoringExpiry(token: string): TokenClaims | undefined {
    return this.verifyIgnoringExpiry(this.refreshJwt, token, REFRESH_TOKEN_TYP, {
      algorithms: [REFRESH_TOKEN_ALG],
    });
  }

  /**
   * Identifies an access token for RFC 7009 revocation, with the published key
   * its `kid` names, as long as that key verifies. Expiry is checked with a
   * grace of REVOKE_ACCESS_TOKEN_GRACE, which RFC 7009 §2.1 leaves to the
   * server: a client whose token lapsed a moment ago can still end its
   * session, but an old token (in a log, a backup, a browser's history) can no
   * longer end a live one. A session is then ended by its refresh token.
   */
  async verifyAccessTokenForRevocation(token: string): Promise<TokenClaims | undefined> {
    const kid = keyIdOf(token);
    const publicKey = kid ? await this.signingKeys.resolveVerificationKey(kid) : undefined;
    if (!publicKey) return undefined;
    return this.verifyIgnoringExpiry(this.accessJwt, token, ACCESS_TOKEN_TYP, {
      algorithms: [ACCESS_TOKEN_ALG],
      publicKey,
      expiryGrace: this.auth.revokeExpiredAccessGrace,
    });
  }

  /** Verifies everything but expiry, or expiry too within `expiryGrace` seconds when given. */
  private verifyIgnoringExpiry(
    jwt: JwtService,
    token: string,
    typ: string,
    options: { algorithms: [string]; publicKey?: KeyObject; expiryGrace?: number },
  ): TokenClaims | undefined {
    try {
      const decoded = jwt.verify<DecodedJwt>(token, {
        algorithms: options.algorithms as ['HS256'],
        ...(options.publicKey ? { publicKey: options.publicKey as unknown as Buffer } : {}),
        issuer: this.auth.issuer,
        audience: this.auth.audience,
        complete: true,
        ...(options.expiryGrace === undefined
          ? { ignoreExpiration: true }
          : { clockTolerance: options.expiryGrace }),
      });
      return readClaims(decoded, typ);
    } catch {
      return undefined;
    }
  }

  /**
   * The next refresh token of a family: REFRESH_TOKEN_TTL from now (the
   * inactivity timeout), but never past the session's absolute end.
   */
  newRefreshTokenSpec(
    userId: string,
    familyId: string,
    now: Date,
    notAfter: Date,
  ): RefreshTokenSpec {
    const issuedAt = new Date(toEpochSeconds(now) * 1000);
    const sliding = issuedAt.getTime() + this.auth.refreshTokenTtl * 1000;
    return {
      id: randomUUID(),
      userId,
      familyId,
      issuedAt,
      expiresAt: new Date(Math.min(sliding, notAfter.getTime())),
    };
  }

  /** When a session started now must end at the latest (whole seconds, like JWT times). */
  absoluteExpiry(now: Date): Date {
    return new Date((toEpochSeconds(now) + this.auth.sessionMaxAge) * 1000);
  }
}

/** Only this digest of a refresh token is stored (a dump must not yield usable tokens). */
export function hashToken(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}
