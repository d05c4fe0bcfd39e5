import { randomUUID, timingSafeEqual } from 'node:crypto';
import { HttpStatus, Injectable, Logger } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import type { EntityManager } from 'typeorm';
import { AuditService, type NewAuthEvent } from '../audit/audit.service.js';
import type { ClientInfo } from '../common/client-info.js';
import {
  AppError,
  ErrorCode,
  ForbiddenError,
  NotFoundError,
  SessionEndedError,
  UnauthorizedError,
} from '../common/errors.js';
import type { AppConfig, AuthConfig } from '../config/configuration.js';
import { isTransactionConflict, sqlState } from '../common/pg-errors.js';
import { MetricsService } from '../observability/metrics.service.js';
import { PasswordService } from '../users/password.service.js';
import { UsersService } from '../users/users.service.js';
import type { TokenResponseDto } from './dto/token-response.dto.js';
import type { RevocationReason } from './entities/token-family.entity.js';
import type { Principal } from './principal.js';
import type { PresentedRefreshToken } from './strategies/refresh-token.strategy.js';
import { type LiveSession, TokenFamilyRepository } from './token-family.repository.js';
import { SessionRevocations } from './session-revocations.js';
import { decideRotation } from './token-family.rules.js';
import { hashToken, type RefreshTokenSpec, toEpochSeconds, TokenService } from './token.service.js';

const INVALID_CREDENTIALS = 'Invalid username or password';
// Attempts at proving a password while it keeps changing under the proof.
const PASSWORD_PROOF_ATTEMPTS = 3;

// Runs of one transaction that a deadlock or serialization failure aborted.
const TRANSACTION_ATTEMPTS = 3;

/** Sessions a transaction ended, acted on once it has committed. */
class EndedSessions {
  readonly ids: string[] = [];
  readonly revoked = new Map<RevocationReason, number>();

  /** `reason` when they were revoked; without one they went with their account. */
  add(ids: string[], reason?: RevocationReason): void {
    this.ids.push(...ids);
    if (reason && ids.length > 0)
      this.revoked.set(reason, (this.revoked.get(reason) ?? 0) + ids.length);
  }
}

const sessionRevoked = () =>
  new SessionEndedError(ErrorCode.SessionRevoked, 'Session has been revoked');

export type LogoutScope = 'all' | 'others';
export type TokenTypeHint = 'access_token' | 'refresh_token';

@Injectable()
export class AuthService {
  private readonly logger = new Logger(AuthService.name);
  private readonly auth: AuthConfig;

  constructor(
    config: ConfigService<AppConfig, true>,
    private readonly users: UsersService,
    private readonly passwords: PasswordService,
    private readonly tokens: TokenService,
    private readonly families: TokenFamilyRepository,
    private readonly audit: AuditService,
    private readonly revocations: SessionRevocations,
    private readonly metrics: MetricsService,
  ) {
    this.auth = config.get('auth', { infer: true });
  }

  /** Creates the account and its first session in one transaction. */
  async register(
    username: string,
    password: string,
    client: ClientInfo,
  ): Promise<TokenResponseDto> {
    const hash = await this.passwords.hash(password);
    return this.transaction(async (manager, ended) => {
      const user = await this.users.create(manager, username, hash);
      return this.startSession(manager, user.id, hash, client, 'registered', ended);
    });
  }

  async login(username: string, password: string, client: ClientInfo): Promise<TokenResponseDto> {
    const user = await this.users.findForLogin(username);
    // One message and status for unknown user and wrong password (no enumeration).
    if (!(await this.passwords.verify(password, user?.passwordHash)) || !user) {
      // The owner sees failed attempts on their account; an unknown name is recorded without a user.
      await this.audit.record(
        [{ type: 'login_failed', userId: user?.id ?? null }],
        client,
        new Date(),
      );
      this.metrics.login('failure');
      throw new UnauthorizedError(ErrorCode.InvalidCredentials, INVALID_CREDENTIALS);
    }
    const tokens = await this.transaction((manager, ended) =>
      this.startSession(manager, user.id, user.passwordHash, client, 'login_succeeded', ended),
    ).catch((error: unknown) => {
      // The password changed, or the account went, while it was being checked.
      if (error instanceof AppError && error.code === ErrorCode.InvalidCredentials)
        this.metrics.login('failure');
      throw error;
    });
    this.metrics.login('success');
    return tokens;
  }

  /**
   * Rotates a refresh token (RFC 9700 §4.14.2). Runs under the family's row
   * lock, so N concurrent refreshes with one token produce exactly one child:
   * the first rotates, the others get that same child within the grace window.
   * Reuse outside it revokes the family, and that revocation is committed
   * before the error is returned.
   */
  async refresh(presented: PresentedRefreshToken, client: ClientInfo): Promise<TokenResponseDto> {
    const { claims, token } = presented;
    const now = new Date();
    const outcome = await this.transaction(async (manager, ended) => {
      const state = await this.families.lockForRotation(manager, claims.jti);
      // A token we signed whose row is gone: its account was deleted, or its
      // session cleaned up after it ended.
      if (!state) return { kind: 'revoked' as const };
      if (
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
        this.auth.refreshReuseGrace,
      );
      switch (decision.kind) {
        case 'rotate': {
          const child = this.tokens.newRefreshTokenSpec(
            claims.sub,
            claims.sid,
            now,
            state.familyAbsoluteExpiresAt,
          );
          const signed = this.tokens.signRefreshToken(child);
          const rotated = await this.families.rotate(
            manager,
            claims.jti,
            child,
            hashToken(signed.token),
            now,
            client,
          );
          if (!rotated)
            throw new Error('refresh token rotated concurrently despite the family lock');
          return {
            kind: 'tokens' as const,
            outcome: 'rotated' as const,
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
            outcome: 'grace_reissue' as const,
            response: this.tokenResponse(claims.sub, spec, signed.token, now),
          };
        }
        case 'reuse':
          await this.audit.record(
            [{ type: 'reuse_detected', userId: claims.sub, sessionId: claims.sid }],
            client,
            now,
            manager,
          );
          await this.endSessions(
            manager,
            claims.sub,
            [claims.sid],
            'reuse_detected',
            client,
            now,
            ended,
          );
          return decision;
        default:
          return decision;
      }
    });

    // Counted once the transaction has committed: the counters follow the database.
    switch (outcome.kind) {
      case 'tokens':
        this.metrics.refresh(outcome.outcome);
        return outcome.response;
      case 'reuse':
        this.metrics.refresh('reuse_detected');
        this.logger.warn(`Refresh token reuse detected; session ${claims.sid} revoked`);
        throw new SessionEndedError(
          ErrorCode.RefreshTokenReused,
          'Refresh token has already been used; the session has been revoked',
        );
      case 'revoked':
        this.metrics.refresh('revoked');
        throw new SessionEndedError(ErrorCode.SessionRevoked, 'Session has been revoked');
      case 'expired':
        this.metrics.refresh('expired');
        throw new SessionEndedError(ErrorCode.SessionExpired, 'Session has expired');
      case 'invalid':
        this.metrics.refresh('invalid');
        throw new SessionEndedError(ErrorCode.TokenInvalid, 'Refresh token is invalid');
    }
  }

  /**
   * Revokes the caller's session and, when given, the session of a refresh
   * token of the same user (it may already be rotated: a client may log out with the
   * refresh token it got at login). A
   * token that does not verify, or belongs to someone else, is ignored:
   * logout must not reveal anything about it, nor fail because of it.
   */
  async logout(
    principal: Principal,
    refreshToken: string | undefined,
    client: ClientInfo,
  ): Promise<void> {
    const familyIds = [principal.sessionId];
    const other = refreshToken
      ? this.tokens.verifyRefreshTokenIgnoringExpiry(refreshToken)
      : undefined;
    if (other && other.sub === principal.userId && other.sid !== principal.sessionId) {
      familyIds.push(other.sid);
    }
    const now = new Date();
    await this.transaction(async (manager, ended) => {
      // The lock order of every user-level write: user row, then families,
      // then audit rows (whose foreign key takes KEY SHARE on the user row).
      // Writing the audit row first could deadlock with account deletion.
      // A deleted account has no session left to end.
      if (!(await this.users.lockForUpdate(manager, principal.userId))) return;
      await this.endSessions(manager, principal.userId, familyIds, 'logout', client, now, ended);
      await this.audit.record(
        [{ type: 'logout', userId: principal.userId, sessionId: principal.sessionId }],
        client,
        now,
        manager,
      );
    });
  }

  /** Ends every session of the caller (`all`) or every one but the caller's (`others`). */
  async logoutAll(principal: Principal, scope: LogoutScope, client: ClientInfo): Promise<number> {
    const now = new Date();
    return this.transaction(async (manager, ended) => {
      // User row first, as in logout: the audit row below must not find the account gone.
      if (!(await this.users.lockForUpdate(manager, principal.userId))) return 0;
      const keep = scope === 'others' ? principal.sessionId : null;
      const revoked = await this.families.revokeAllForUser(
        manager,
        principal.userId,
        'logout_all',
        now,
        keep,
      );
      ended.add(revoked, 'logout_all');
      await this.audit.record(
        [
          {
            type: 'logout_all',
            userId: principal.userId,
            sessionId: principal.sessionId,
            reason: scope,
          },
          ...this.revocationEvents(principal.userId, revoked, 'logout_all'),
        ],
        client,
        now,
        manager,
      );
      return revoked.length;
    });
  }

  listSessions(principal: Principal): Promise<LiveSession[]> {
    return this.families.listLive(principal.userId, new Date());
  }

  /** Ends one of the caller's live sessions; anything else is a 404 (no probing other users' ids). */
  async revokeSession(principal: Principal, sessionId: string, client: ClientInfo): Promise<void> {
    const now = new Date();
    const revoked = await this.transaction((manager, ended) =>
      this.endSessions(manager, principal.userId, [sessionId], 'user_revoked', client, now, ended),
    );
    if (revoked.length === 0) throw new NotFoundError('No such session');
  }

  /**
   * RFC 7009 token revocation: ends the session of a refresh or access token.
   * Unknown, invalid or already revoked tokens are not an error (§2.2), so the
   * endpoint reveals nothing about a token. The hint only orders the lookup.
   * An access token expired longer ago than the grace is such a token: 200,
   * and its session goes on (see verifyAccessTokenForRevocation).
   */
  async revokeToken(
    token: string,
    hint: TokenTypeHint | undefined,
    client: ClientInfo,
  ): Promise<void> {
    const asRefresh = () => this.tokens.verifyRefreshTokenIgnoringExpiry(token);
    const asAccess = () => this.tokens.verifyAccessTokenForRevocation(token);
    const claims =
      hint === 'access_token'
        ? ((await asAccess()) ?? asRefresh())
        : (asRefresh() ?? (await asAccess()));
    if (!claims) return;
    const now = new Date();
    await this.transaction((manager, ended) =>
      this.endSessions(manager, claims.sub, [claims.sid], 'token_revoked', client, now, ended),
    );
  }

  /**
   * Changes the password and ends every other session (OWASP ASVS 3.3.3); the
   * caller's own session survives. A wrong current password changes nothing.
   */
  async changePassword(
    principal: Principal,
    currentPassword: string,
    newPassword: string,
    client: ClientInfo,
  ): Promise<void> {
    const now = new Date();
    let newHash: string | undefined;
    await this.withPasswordProven(
      principal.userId,
      currentPassword,
      'Current password is incorrect',
      async () => {
        // Hashed only once the current password is proven, and only once.
        newHash ??= await this.passwords.hash(newPassword);
      },
      async (manager, ended) => {
        await this.users.updatePasswordHash(manager, principal.userId, newHash!);
        const revoked = await this.families.revokeAllForUser(
          manager,
          principal.userId,
          'password_changed',
          now,
          principal.sessionId,
        );
        ended.add(revoked, 'password_changed');
        await this.audit.record(
          [
            { type: 'password_changed', userId: principal.userId, sessionId: principal.sessionId },
            ...this.revocationEvents(principal.userId, revoked, 'password_changed'),
          ],
          client,
          now,
          manager,
        );
      },
    );
  }

  /** Deletes the account with its sessions, todos and events, after confirming the password. */
  async deleteAccount(principal: Principal, password: string): Promise<void> {
    await this.withPasswordProven(
      principal.userId,
      password,
      'Password is incorrect',
      () => Promise.resolve(),
      async (manager, ended) => {
        // Deleted with the account: ended, but not a revocation (not counted).
        ended.add(await this.families.lockAllForUser(manager, principal.userId));
        await this.users.delete(manager, principal.userId);
      },
    );
    this.logger.log(`Account ${principal.userId} deleted`);
  }

  /**
   * Runs `work` under the user's row lock once `password` is proven. bcrypt
   * runs before the transaction opens, so no pooled connection or row lock
   * ever waits on it (a burst of guesses on one account must not stall the
   * pool). Under the lock the stored hash must still be the one the password
   * was proven against; if it changed meanwhile (a concurrent password
   * change), the password is proven again against the new hash.
   */
  private async withPasswordProven(
    userId: string,
    password: string,
    wrongPasswordMessage: string,
    afterProof: () => Promise<void>,
    work: (manager: EntityManager, ended: EndedSessions) => Promise<void>,
  ): Promise<void> {
    for (let attempt = 1; attempt <= PASSWORD_PROOF_ATTEMPTS; attempt += 1) {
      const proven = await this.users.findPasswordHash(userId);
      if (proven === null) throw sessionRevoked();
      if (!(await this.passwords.verify(password, proven))) {
        throw new ForbiddenError(ErrorCode.InvalidPassword, wrongPasswordMessage);
      }
      await afterProof();
      const done = await this.transaction(async (manager, ended) => {
        const locked = await this.users.lockForUpdate(manager, userId);
        if (!locked) throw sessionRevoked();
        if (locked.passwordHash !== proven) return false;
        await work(manager, ended);
        return true;
      });
      if (done) return;
    }
    // The password changed under every attempt: rare enough to ask for a retry.
    throw new AppError(
      HttpStatus.SERVICE_UNAVAILABLE,
      ErrorCode.ServiceUnavailable,
      'The password was changed concurrently; retry',
      undefined,
      1,
    );
  }

  /**
   * One transaction; the sessions it ended (collected in `ended`) enter this
   * instance's view of ended sessions once it has committed, before the
   * response leaves, so this instance refuses their access tokens at once.
   * They are counted then too, so the counters follow the database.
   *
   * A deadlock or serialization failure (40P01, 40001) rolled the whole
   * transaction back, so it is run again from the start; the lock order
   * (user row, families, audit rows) makes that rare. If it keeps failing the
   * error surfaces as a 503 with Retry-After (see pg-errors.ts).
   */
  private async transaction<T>(
    work: (manager: EntityManager, ended: EndedSessions) => Promise<T>,
  ): Promise<T> {
    for (let attempt = 1; ; attempt += 1) {
      const ended = new EndedSessions();
      try {
        const result = await this.families.transaction((manager) => work(manager, ended));
        this.revocations.recordEnded(ended.ids);
        for (const [reason, count] of ended.revoked) this.metrics.sessionsRevoked(reason, count);
        return result;
      } catch (error) {
        if (attempt >= TRANSACTION_ATTEMPTS || !isTransactionConflict(error)) throw error;
        this.logger.warn(`Transaction conflict (${sqlState(error)}); retrying`);
      }
    }
  }

  /**
   * Starts a session for credentials proven against `provenHash`. The proof
   * (bcrypt) ran before this transaction; under the user's row lock the hash
   * must still be that one, so a login that raced a password change or an
   * account deletion gets no session (OWASP ASVS 3.3.3).
   */
  private async startSession(
    manager: EntityManager,
    userId: string,
    provenHash: string,
    client: ClientInfo,
    event: 'registered' | 'login_succeeded',
    ended: EndedSessions,
  ): Promise<TokenResponseDto> {
    const now = new Date();
    // The row lock also makes "count live sessions, evict, insert" atomic per user.
    const locked = await this.users.lockForUpdate(manager, userId);
    if (!locked || locked.passwordHash !== provenHash) {
      throw new UnauthorizedError(ErrorCode.InvalidCredentials, INVALID_CREDENTIALS);
    }
    const evicted = await this.families.evictLeastRecentlyUsed(
      manager,
      userId,
      this.auth.maxSessionsPerUser - 1,
      now,
    );
    ended.add(evicted, 'evicted');
    const familyId = randomUUID();
    const absoluteExpiresAt = this.tokens.absoluteExpiry(now);
    const first = this.tokens.newRefreshTokenSpec(userId, familyId, now, absoluteExpiresAt);
    const signed = this.tokens.signRefreshToken(first);
    await this.families.createFamily(
      manager,
      { userId, familyId, now, absoluteExpiresAt, userAgent: client.userAgent, ip: client.ip },
      first,
      hashToken(signed.token),
    );
    await this.audit.record(
      [
        ...this.revocationEvents(userId, evicted, 'evicted'),
        { type: event, userId, sessionId: familyId },
      ],
      client,
      now,
      manager,
    );
    return this.tokenResponse(userId, first, signed.token, now);
  }

  /** Revokes families and records one `session_revoked` event for each that this call ended. */
  private async endSessions(
    manager: EntityManager,
    userId: string,
    familyIds: string[],
    reason: RevocationReason,
    client: ClientInfo,
    now: Date,
    ended: EndedSessions,
  ): Promise<string[]> {
    const revoked = await this.families.revoke(userId, familyIds, reason, now, manager);
    ended.add(revoked, reason);
    await this.audit.record(this.revocationEvents(userId, revoked, reason), client, now, manager);
    return revoked;
  }

  private revocationEvents(
    userId: string,
    familyIds: string[],
    reason: RevocationReason,
  ): NewAuthEvent[] {
    return familyIds.map((sessionId) => ({ type: 'session_revoked', userId, sessionId, reason }));
  }

  private tokenResponse(
    userId: string,
    refresh: RefreshTokenSpec,
    refreshToken: string,
    now: Date,
  ): TokenResponseDto {
    const access = this.tokens.signAccessToken(userId, refresh.familyId, now, refresh.expiresAt);
    return {
      access_token: access.token,
      token_type: 'Bearer',
      expires_in: access.claims.exp - access.claims.iat,
      refresh_token: refreshToken,
      refresh_expires_in: Math.max(0, toEpochSeconds(refresh.expiresAt) - access.claims.iat),
    };
  }
}
