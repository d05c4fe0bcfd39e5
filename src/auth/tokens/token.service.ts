import { createHash, createSecretKey, type KeyObject, randomBytes, randomUUID } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { JwtService } from '@nestjs/jwt';
import type { AppConfig, AuthConfig } from '../../config/configuration.js';
import { SigningKeys } from '../signing-keys/signing-keys.service.js';
import {
  ACCESS_TOKEN_ALG,
  ACCESS_TOKEN_TYP,
  type DecodedJwt,
  keyIdOf,
  readClaims,
  readRefreshClaims,
  REFRESH_TOKEN_ALG,
  REFRESH_TOKEN_TYP,
  type RefreshTokenClaims,
  type SessionBinding,
  type TokenClaims,
} from './token-claims.js';
import type { TokenResponseDto } from '../dto/token-response.dto.js';

export interface SignedToken {
  token: string;
  claims: TokenClaims;
}

/** The refresh token of one generation of a session (see Session). */
export interface RefreshTokenSpec {
  userId: string;
  sessionId: string;
  generation: number;
  /** generationJti(session's salt, generation) */
  jti: string;
  issuedAt: Date;
  expiresAt: Date;
  /** The session's OAuth client and DPoP key, if it has them. */
  binding: SessionBinding;
}

/** A session without an OAuth client or a DPoP key. */
export const UNBOUND: SessionBinding = Object.freeze({ clientId: null, keyThumbprint: null });

/** The claims a binding adds to a token, last and only when set. */
function bindingClaims({ clientId, keyThumbprint }: SessionBinding) {
  return {
    ...(clientId === null ? {} : { client_id: clientId }),
    ...(keyThumbprint === null ? {} : { cnf: { jkt: keyThumbprint } }),
  };
}

/** A v1 refresh token (from before token store v2): a UUID jti and no generation. */
export interface LegacyRefreshTokenSpec {
  userId: string;
  sessionId: string;
  jti: string;
  issuedAt: Date;
  expiresAt: Date;
}

export interface RefreshLifetime {
  /** Whole seconds, like the token's `iat`. */
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
 *   a key from a string secret on every call, which costs far more than the
 *   HMAC itself (`npm run bench:jwt`).
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
  signAccessToken(
    userId: string,
    sessionId: string,
    now: Date,
    sessionEnd: Date,
    binding: SessionBinding = UNBOUND,
  ): SignedToken {
    const iat = toEpochSeconds(now);
    const claims: TokenClaims = {
      sub: userId,
      sid: sessionId,
      jti: randomUUID(),
      iat,
      exp: Math.min(iat + this.auth.accessTokenTtl, toEpochSeconds(sessionEnd)),
      iss: this.auth.issuer,
      aud: this.auth.audience,
      ...bindingClaims(binding),
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
   * same header and claims, in this order), which is how a parent presented
   * again gets back the very token it was answered with, without it being stored.
   */
  signRefreshToken(spec: RefreshTokenSpec): string {
    return this.refreshJwt.sign({
      sub: spec.userId,
      sid: spec.sessionId,
      gen: spec.generation,
      jti: spec.jti,
      iat: toEpochSeconds(spec.issuedAt),
      exp: toEpochSeconds(spec.expiresAt),
      iss: this.auth.issuer,
      aud: this.auth.audience,
      // Last, and only when set: a session without a client or a key keeps
      // the bytes its tokens had before either was recorded.
      ...bindingClaims(spec.binding),
    });
  }

  /** The v1 token a session held at the upgrade, byte for byte (claims in v1's order). */
  signLegacyRefreshToken(spec: LegacyRefreshTokenSpec): string {
    return this.refreshJwt.sign({
      sub: spec.userId,
      sid: spec.sessionId,
      jti: spec.jti,
      iat: toEpochSeconds(spec.issuedAt),
      exp: toEpochSeconds(spec.expiresAt),
      iss: this.auth.issuer,
      aud: this.auth.audience,
    });
  }

  /**
   * Identifies a refresh token for logout and revocation only: signature,
   * algorithm, issuer, audience and `typ` are checked, expiry is not (an
   * expired token of a live session still names the session its owner wants ended).
   */
  verifyRefreshTokenIgnoringExpiry(token: string): RefreshTokenClaims | undefined {
    return this.verifyIgnoringExpiry(this.refreshJwt, token, readRefreshClaims, {
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
  verifyAccessTokenForRevocation(token: string): Promise<TokenClaims | undefined> {
    return this.verifyAccessToken(token, this.auth.revokeExpiredAccessGrace);
  }

  /**
   * Verifies an access token completely, its expiry against `now`, for
   * RFC 7662 introspection. Whether its session is still live is the
   * caller's question (SessionLiveness), as it is the access guard's.
   */
  verifyAccessTokenAt(token: string, now: Date): Promise<TokenClaims | undefined> {
    return this.verifyAccessToken(token, 0, now);
  }

  /** With the published key its `kid` names, expiry within `expiryGrace` seconds of `now`. */
  private async verifyAccessToken(
    token: string,
    expiryGrace: number,
    now?: Date,
  ): Promise<TokenClaims | undefined> {
    const kid = keyIdOf(token);
    const publicKey = kid ? await this.signingKeys.resolveVerificationKey(kid) : undefined;
    if (!publicKey) return undefined;
    return this.verifyIgnoringExpiry(this.accessJwt, token, accessClaims, {
      algorithms: [ACCESS_TOKEN_ALG],
      publicKey,
      expiryGrace,
      now,
    });
  }

  /** Verifies everything but expiry, or expiry too within `expiryGrace` seconds when given. */
  private verifyIgnoringExpiry<T extends TokenClaims>(
    jwt: JwtService,
    token: string,
    read: (decoded: DecodedJwt) => T | undefined,
    options: { algorithms: [string]; publicKey?: KeyObject; expiryGrace?: number; now?: Date },
  ): T | undefined {
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
        ...(options.now ? { clockTimestamp: toEpochSeconds(options.now) } : {}),
      });
      return read(decoded);
    } catch {
      return undefined;
    }
  }

  /**
   * The lifetime of a refresh token issued now: REFRESH_TOKEN_TTL (the
   * inactivity timeout), but never past the session's absolute end (here
   * when given, else in the rotation's UPDATE).
   */
  refreshLifetime(now: Date, notAfter?: Date): RefreshLifetime {
    const issuedAt = new Date(toEpochSeconds(now) * 1000);
    const sliding = issuedAt.getTime() + this.auth.refreshTokenTtl * 1000;
    return {
      issuedAt,
      expiresAt: new Date(notAfter ? Math.min(sliding, notAfter.getTime()) : sliding),
    };
  }

  /** When a session started now must end at the latest (whole seconds, like JWT times). */
  absoluteExpiry(now: Date): Date {
    return new Date((toEpochSeconds(now) + this.auth.sessionMaxAge) * 1000);
  }

  /**
   * The RFC 6749 §5.1 response; the access token never outlives the
   * session's refresh token, and names the session's binding.
   */
  response(
    userId: string,
    sessionId: string,
    refreshToken: string,
    refreshExpiresAt: Date,
    now: Date,
    binding: SessionBinding = UNBOUND,
  ): TokenResponseDto {
    const access = this.signAccessToken(userId, sessionId, now, refreshExpiresAt, binding);
    return {
      access_token: access.token,
      // RFC 9449 §5: a token bound to a DPoP key is of type DPoP.
      token_type: binding.keyThumbprint === null ? 'Bearer' : 'DPoP',
      expires_in: access.claims.exp - access.claims.iat,
      refresh_token: refreshToken,
      refresh_expires_in: Math.max(0, toEpochSeconds(refreshExpiresAt) - access.claims.iat),
    };
  }
}

const accessClaims = (decoded: DecodedJwt) => readClaims(decoded, ACCESS_TOKEN_TYP);

/** The digest by which a v1 refresh token is known (only it was ever stored). */
export function hashToken(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/** Random, per session, kept in the database only: the half of a refresh token the key lacks. */
export function newTokenSalt(): Buffer {
  return randomBytes(32);
}

/**
 * The jti of a session's token of `generation`: SHA-256(salt ‖ generation as
 * a 32-bit big-endian integer), base64url. The database computes the same
 * digest in the rotation's WHERE clause (`sha256(token_salt || int4send(g))`).
 */
export function generationJti(salt: Buffer, generation: number): string {
  const g = Buffer.alloc(4);
  g.writeInt32BE(generation);
  return createHash('sha256').update(salt).update(g).digest('base64url');
}
