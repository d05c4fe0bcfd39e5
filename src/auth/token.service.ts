import { createHash, createSecretKey, type KeyObject, randomUUID } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { JwtService } from '@nestjs/jwt';
import type { AppConfig, AuthConfig } from '../config/configuration.js';
import {
  ACCESS_TOKEN_TYP,
  type DecodedJwt,
  JWT_ALGORITHM,
  readClaims,
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
 * Signs access and refresh tokens, each with its own key. Keys are prebuilt
 * `KeyObject`s: jsonwebtoken rebuilds a key from a string secret on every call
 * (~400 µs), a KeyObject costs ~8 µs. Each JwtService is built with exactly one
 * key and no per-call secret is ever passed, so @nestjs/jwt has no other key
 * to fall back to (RFC 8725 §3.1: one algorithm, one key per token type).
 */
@Injectable()
export class TokenService {
  readonly accessKey: KeyObject;
  readonly refreshKey: KeyObject;
  private readonly auth: AuthConfig;
  private readonly accessJwt: JwtService;
  private readonly refreshJwt: JwtService;

  constructor(config: ConfigService<AppConfig, true>) {
    this.auth = config.get('auth', { infer: true });
    this.accessKey = createSecretKey(Buffer.from(this.auth.accessSecret, 'utf8'));
    this.refreshKey = createSecretKey(Buffer.from(this.auth.refreshSecret, 'utf8'));
    this.accessJwt = new JwtService({
      secret: this.accessKey,
      signOptions: {
        algorithm: JWT_ALGORITHM,
        header: { alg: JWT_ALGORITHM, typ: ACCESS_TOKEN_TYP },
      },
    });
    this.refreshJwt = new JwtService({
      secret: this.refreshKey,
      signOptions: {
        algorithm: JWT_ALGORITHM,
        header: { alg: JWT_ALGORITHM, typ: REFRESH_TOKEN_TYP },
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
    return { token: this.accessJwt.sign(claims), claims };
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
    return this.verifyIgnoringExpiry(this.refreshJwt, token, REFRESH_TOKEN_TYP);
  }

  /** The same for an access token (RFC 7009 revocation of an access token). */
  verifyAccessTokenIgnoringExpiry(token: string): TokenClaims | undefined {
    return this.verifyIgnoringExpiry(this.accessJwt, token, ACCESS_TOKEN_TYP);
  }

  private verifyIgnoringExpiry(
    jwt: JwtService,
    token: string,
    typ: string,
  ): TokenClaims | undefined {
    try {
      const decoded = jwt.verify<DecodedJwt>(token, {
        algorithms: [JWT_ALGORITHM],
        issuer: this.auth.issuer,
        audience: this.auth.audience,
        complete: true,
        ignoreExpiration: true,
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
