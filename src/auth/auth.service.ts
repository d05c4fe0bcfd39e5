import { randomUUID, timingSafeEqual } from 'node:crypto';
import { Injectable, Logger } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import type { EntityManager } from 'typeorm';
import { ErrorCode, UnauthorizedError } from '../common/errors.js';
import type { AppConfig } from '../config/configuration.js';
import { PasswordService } from '../users/password.service.js';
import { UsersService } from '../users/users.service.js';
import type { TokenResponseDto } from './dto/token-response.dto.js';
import type { Principal } from './principal.js';
import type { PresentedRefreshToken } from './strategies/refresh-token.strategy.js';
import { TokenFamilyRepository } from './token-family.repository.js';
import { decideRotation } from './token-family.rules.js';
import { hashToken, type RefreshTokenSpec, toEpochSeconds, TokenService } from './token.service.js';

/** Where a session was started from; kept on the family for the user's own inspection. */
export interface ClientInfo {
  userAgent: string | null;
  ip: string | null;
}

const INVALID_CREDENTIALS = 'Invalid username or password';

@Injectable()
export class AuthService {
  private readonly logger = new Logger(AuthService.name);
  private readonly reuseGraceSeconds: number;

  constructor(
    config: ConfigService<AppConfig, true>,
    private readonly users: UsersService,
    private readonly passwords: PasswordService,
    private readonly tokens: TokenService,
    private readonly families: TokenFamilyRepository,
  ) {
    this.reuseGraceSeconds = config.get('auth', { infer: true }).refreshReuseGrace;
  }

  /** Creates the account and its first session in one transaction. */
  async register(
    username: string,
    password: string,
    client: ClientInfo,
  ): Promise<TokenResponseDto> {
    const hash = await this.passwords.hash(password);
    return this.families.transaction(async (manager) => {
      const user = await this.users.create(manager, username, hash);
      return this.startSession(manager, user.id, client);
    });
  }

  async login(username: string, password: string, client: ClientInfo): Promise<TokenResponseDto> {
    const user = await this.users.findForLogin(username);
    // One message and status for unknown user and wrong password (no enumeration).
    if (!(await this.passwords.verify(password, user?.passwordHash)) || !user) {
      throw new UnauthorizedError(ErrorCode.InvalidCredentials, INVALID_CREDENTIALS);
    }
    return this.families.transaction((manager) => this.startSession(manager, user.id, client));
  }

  /**
   * Rotates a refresh token (RFC 9700 §4.14.2). Runs under the family's row
   * lock, so N concurrent refreshes with one token produce exactly one child:
   * the first rotates, the others get that same child within the grace window.
   * Reuse outside it revokes the family, and that revocation is committed
   * before the error is returned.
   */
  async refresh(presented: PresentedRefreshToken): Promise<TokenResponseDto> {
    const { claims, token } = presented;
    const now = new Date();
    const outcome = await this.families.transaction(async (manager) => {
      const state = await this.families.lockForRotation(manager, claims.jti);
      if (
        !state ||
        state.familyId !== claims.sid ||
        state.userId !== claims.sub ||
        !timingSafeEqual(state.tokenHash, hashToken(token))
      ) {
        return { kind: 'invalid' as const };
      }
      const decision = decideRotation(
        {
          expiresAt: state.expiresAt,
          usedAt: state.usedAt,
          childIsCurrent: state.child !== null && state.child.usedAt === null,
          familyRevokedAt: state.familyRevokedAt,
          familyExpiresAt: state.familyExpiresAt,
        },
        now,
        this.reuseGraceSeconds,
      );
      switch (decision.kind) {
        case 'rotate': {
          const child = this.tokens.newRefreshTokenSpec(claims.sub, claims.sid, now);
          const signed = this.tokens.signRefreshToken(child);
          const rotated = await this.families.rotate(
            manager,
            claims.jti,
            child,
            hashToken(signed.token),
            now,
          );
          if (!rotated)
            throw new Error('refresh token rotated concurrently despite the family lock');
          return {
            kind: 'tokens' as const,
            response: this.tokenResponse(claims.sub, child, signed.token, now),
          };
        }
        case 'reissue': {
          // state.child is non-null here: `childIsCurrent` required it.
          const child = state.child!;
          const spec: RefreshTokenSpec = {
            id: child.id,
            userId: claims.sub,
            familyId: claims.sid,
            issuedAt: child.issuedAt,
            expiresAt: child.expiresAt,
          };
          await this.families.touch(manager, claims.sid, now);
          const signed = this.tokens.signRefreshToken(spec);
          return {
            kind: 'tokens' as const,
            response: this.tokenResponse(claims.sub, spec, signed.token, now),
          };
        }
        case 'reuse':
          await this.families.revoke(claims.sub, [claims.sid], 'reuse_detected', now, manager);
          return decision;
        default:
          return decision;
      }
    });

    switch (outcome.kind) {
      case 'tokens':
        return outcome.response;
      case 'reuse':
        this.logger.warn(`Refresh token reuse detected; session ${claims.sid} revoked`);
        throw new UnauthorizedError(
          ErrorCode.RefreshTokenReused,
          'Refresh token has already been used; the session has been revoked',
        );
      case 'revoked':
        throw new UnauthorizedError(ErrorCode.SessionRevoked, 'Session has been revoked');
      case 'expired':
        throw new UnauthorizedError(ErrorCode.SessionExpired, 'Session has expired');
      case 'invalid':
        throw new UnauthorizedError(ErrorCode.TokenInvalid, 'Refresh token is invalid');
    }
  }

  /**
   * Revokes the caller's session and, when given, the session of a refresh
   * token of the same user (it may already be rotated, as in seed 000). A
   * token that does not verify, or belongs to someone else, is ignored:
   * logout must not reveal anything about it, nor fail because of it.
   */
  async logout(principal: Principal, refreshToken?: string): Promise<void> {
    const familyIds = [principal.sessionId];
    const other = refreshToken
      ? this.tokens.verifyRefreshTokenIgnoringExpiry(refreshToken)
      : undefined;
    if (other && other.sub === principal.userId && other.sid !== principal.sessionId) {
      familyIds.push(other.sid);
    }
    await this.families.revoke(principal.userId, familyIds, 'logout', new Date());
  }

  private async startSession(manager: EntityManager, userId: string, client: ClientInfo) {
    const now = new Date();
    const familyId = randomUUID();
    const first = this.tokens.newRefreshTokenSpec(userId, familyId, now);
    const signed = this.tokens.signRefreshToken(first);
    await this.families.createFamily(
      manager,
      { userId, familyId, now, userAgent: client.userAgent, ip: client.ip },
      first,
      hashToken(signed.token),
    );
    return this.tokenResponse(userId, first, signed.token, now);
  }

  private tokenResponse(
    userId: string,
    refresh: RefreshTokenSpec,
    refreshToken: string,
    now: Date,
  ): TokenResponseDto {
    const access = this.tokens.signAccessToken(userId, refresh.familyId, now);
    return {
      access_token: access.token,
      token_type: 'Bearer',
      expires_in: access.claims.exp - access.claims.iat,
      refresh_token: refreshToken,
      refresh_expires_in: Math.max(0, toEpochSeconds(refresh.expiresAt) - access.claims.iat),
    };
  }
}
