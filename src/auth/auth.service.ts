import { randomUUID, timingSafeEqual } from 'node:crypto';
import { HttpStatus, Injectable, Logger } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import type { EntityManager } from 'typeorm';
import { AuditService, type NewAuthEvent } from '../audit/audit.service.js';
import type { ClientInfo } from '../common/client-info.js';
import { Clock } from '../common/clock.js';
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
import type { RevocationReason } from '../common/revocation-reasons.js';
import type { Principal } from '../common/principal.js';
import type { PresentedRefreshToken } from './http/refresh-token.strategy.js';
import {
  type LiveSession,
  type Rotated,
  type Rotation,
  type RotationState,
  SessionRepository,
} from './sessions/session.repository.js';
import { SessionRevocations } from './sessions/session-revocations.js';
import { decideRotation } from './sessions/rotation.rules.js';
import type { RefreshTokenClaims } from './tokens/token-claims.js';
import {
  generationJti,
  hashToken,
  newTokenSalt,
  toEpochSeconds,
  TokenService,
} from './tokens/token.service.js';

const INVALID_CREDENTIALS = 'Invalid username or password';
// Attempts at proving a password while it keeps changing under the proof.
const PASSWORD_PROOF_ATTEMPTS = 3;

// Runs of one transaction that a deadlock or serialization failure aborted.
const TRANSACTION_ATTEMPTS = 3;
// Rounds of one refresh while concurrent requests keep moving its session.
const ROTATION_ATTEMPTS = 3;

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
    private readonly sessions: SessionRepository,
    private readonly audit: AuditService,
    private readonly revocations: SessionRevocations,
    private readonly metrics: MetricsService,
    private readonly clock: Clock,
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
   * Rotates a refresh token by the rule of rotation.rules.ts (RFC 9700
   * §4.14.2). The common case is one UPDATE in autocommit
   * (SessionRepository.rotate). When it matches nothing, the row is read and
   * the rule decides. That read takes no lock: a session's state only moves
   * forward (its generation grows, an ended session stays ended), so a
   * verdict of reuse, supersession or refusal stays true, and the two
   * verdicts that hand out a token (rotate, re-issue) are re-checked by the
   * conditional write that makes them so, and retried when the row moved.
   */
  async refresh(presented: PresentedRefreshToken, client: ClientInfo): Promise<TokenResponseDto> {
    const { claims, token } = presented;
    for (let attempt = 1; attempt <= ROTATION_ATTEMPTS; attempt += 1) {
      const now = this.clock.now();
      const lifetime = this.tokens.refreshLifetime(now);
      const rotation: Rotation = {
        sessionId: claims.sid,
        userId: claims.sub,
        generation: claims.gen ?? 0,
        issuedAt: lifetime.issuedAt,
        slidingExpiresAt: lifetime.expiresAt,
        now,
      };
      if (claims.gen !== null) {
        const rotated = await this.sessions.rotate(rotation, Buffer.from(claims.jti, 'base64url'));
        if (rotated) return this.rotatedResponse(rotation, rotated, now);
      }
      const state = await this.sessions.findForRotation(claims.sid);
      // A token we signed whose row is gone: its account was deleted, or its
      // session cleaned up after it ended.
      if (!state) return this.refused('revoked');
      const decision = decideRotation(
        state,
        this.presentedGeneration(state, claims, token),
        now,
        this.auth.refreshReuseGrace,
      );
      switch (decision.kind) {
        case 'rotate': {
          // A v1 token (generation 0 of a session from before the upgrade).
          // A v2 token only gets here when the row moved between the two
          // statements: the loop tries again.
          const rotated =
            claims.gen === null
              ? await this.sessions.rotateLegacy(rotation, hashToken(token))
              : null;
          if (rotated) return this.rotatedResponse(rotation, rotated, now);
          break;
        }
        case 'reissue': {
          const response = await this.reissue(claims, state, client, now);
          if (response) return response;
          break;
        }
        case 'superseded':
          await this.audit.record(
            [{ type: 'refresh_superseded', userId: claims.sub, sessionId: claims.sid }],
            client,
            now,
          );
          return this.refused('superseded');
        case 'reuse': {
          const revoked = await this.transaction(async (manager, ended) => {
            // Session row first, then the audit rows (see lockAllForUser).
            const ids = await this.endSessions(
              manager,
              claims.sub,
              [claims.sid],
              'reuse_detected',
              client,
              now,
              ended,
            );
            if (ids.length > 0) {
              await this.audit.record(
                [
                  {
                    type: 'reuse_detected',
                    userId: claims.sub,
                    sessionId: claims.sid,
                    reason: decision.reason,
                  },
                ],
                client,
                now,
                manager,
              );
            }
            return ids.length > 0;
          });
          // Ended meanwhile by another request: the next round says how.
          if (!revoked) break;
          this.logger.warn(
            `Refresh token reuse detected (${decision.reason}); session ${claims.sid} revoked`,
          );
          return this.refused('reuse_detected');
        }
        default:
          return this.refused(decision.kind);
      }
    }
    // The session kept moving under every attempt: rare enough to ask for a retry.
    throw new AppError(
      HttpStatus.SERVICE_UNAVAILABLE,
      ErrorCode.ServiceUnavailable,
      'The session was refreshed concurrently; retry',
      undefined,
      1,
    );
  }

  /**
   * The presented token's generation in `state`'s session, or `'foreign'` if
   * it is signed by us but was never issued for it (another subject, or a jti
   * that is not the digest of the session's salt and that generation: the
   * refresh key alone cannot make a token a session accepts).
   */
  private presentedGeneration(
    state: RotationState,
    claims: RefreshTokenClaims,
    token: string,
  ): number | 'foreign' {
    if (state.userId !== claims.sub) return 'foreign';
    if (claims.gen !== null) {
      const expected = Buffer.from(generationJti(state.tokenSalt, claims.gen), 'base64url');
      return timingSafeEqual(expected, Buffer.from(claims.jti, 'base64url'))
        ? claims.gen
        : 'foreign';
    }
    // A v1 token: the session's generation 0, the token that one was rotated
    // from, or one rotated away before the upgrade (older still).
    if (state.legacyTokenId === null) return 'foreign';
    const hash = hashToken(token);
    if (state.legacyTokenHash && timingSafeEqual(hash, state.legacyTokenHash)) return 0;
    if (state.legacyParentHash && timingSafeEqual(hash, state.legacyParentHash)) return -1;
    return -Infinity;
  }

  /**
   * Answers the parent of the newest token with that token, byte for byte,
   * and a new access token; recorded, with the client it went to. Null when
   * the session moved on (rotated or ended) before the re-issue took hold.
   */
  private async reissue(
    claims: RefreshTokenClaims,
    state: RotationState,
    client: ClientInfo,
    now: Date,
  ): Promise<TokenResponseDto | null> {
    const generation = state.generation;
    const refreshToken =
      generation === 0 && state.legacyTokenId !== null
        ? this.tokens.signLegacyRefreshToken({
            userId: claims.sub,
            sessionId: claims.sid,
            jti: state.legacyTokenId,
            issuedAt: state.rotatedAt,
            expiresAt: state.expiresAt,
          })
        : this.tokens.signRefreshToken({
            userId: claims.sub,
            sessionId: claims.sid,
            generation,
            jti: generationJti(state.tokenSalt, generation),
            issuedAt: state.rotatedAt,
            expiresAt: state.expiresAt,
          });
    const sameClient = client.ip === state.ip && client.userAgent === state.userAgent;
    const reissued = await this.transaction(async (manager) => {
      if (!(await this.sessions.touchGeneration(manager, claims.sid, generation, now))) {
        return false;
      }
      await this.audit.record(
        [
          {
            type: 'refresh_reissued',
            userId: claims.sub,
            sessionId: claims.sid,
            reason: sameClient ? 'same_client' : 'other_client',
          },
        ],
        client,
        now,
        manager,
      );
      return true;
    });
    if (!reissued) return null;
    this.metrics.refresh('reissued');
    return this.tokenResponse(claims.sub, claims.sid, refreshToken, state.expiresAt, now);
  }

  private rotatedResponse(rotation: Rotation, rotated: Rotated, now: Date): TokenResponseDto {
    const refreshToken = this.tokens.signRefreshToken({
      userId: rotation.userId,
      sessionId: rotation.sessionId,
      generation: rotated.generation,
      jti: rotated.jti.toString('base64url'),
      issuedAt: rotation.issuedAt,
      expiresAt: rotated.expiresAt,
    });
    this.metrics.refresh('rotated');
    return this.tokenResponse(
      rotation.userId,
      rotation.sessionId,
      refreshToken,
      rotated.expiresAt,
      now,
    );
  }

  /** Counts a refused refresh and throws its error. */
  private refused(
    outcome: 'superseded' | 'reuse_detected' | 'revoked' | 'expired' | 'invalid',
  ): never {
    this.metrics.refresh(outcome);
    switch (outcome) {
      case 'superseded':
        // Not a SessionEndedError: the session goes on, and a cookie is kept.
        throw new AppError(
          HttpStatus.CONFLICT,
          ErrorCode.RefreshTokenSuperseded,
          'A newer refresh token of this session has already been used; present the newest one',
        );
      case 'reuse_detected':
        throw new SessionEndedError(
          ErrorCode.RefreshTokenReused,
          'Refresh token has already been used; the session has been revoked',
        );
      case 'revoked':
        throw sessionRevoked();
      case 'expired':
        throw new SessionEndedError(ErrorCode.SessionExpired, 'Session has expired');
      case 'invalid':
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
    const sessionIds = [principal.sessionId];
    const other = refreshToken
      ? this.tokens.verifyRefreshTokenIgnoringExpiry(refreshToken)
      : undefined;
    if (other && other.sub === principal.userId && other.sid !== principal.sessionId) {
      sessionIds.push(other.sid);
    }
    const now = new Date();
    await this.transaction(async (manager, ended) => {
      // The lock order of every user-level write: user row, then sessions,
      // then audit rows (whose foreign key takes KEY SHARE on the user row).
      // Writing the audit row first could deadlock with account deletion.
      // A deleted account has no session left to end.
      if (!(await this.users.lockForUpdate(manager, principal.userId))) return;
      await this.endSessions(manager, principal.userId, sessionIds, 'logout', client, now, ended);
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
      const revoked = await this.sessions.revokeAllForUser(
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
    return this.sessions.listLive(principal.userId, new Date());
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
        const revoked = await this.sessions.revokeAllForUser(
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
        ended.add(await this.sessions.lockAllForUser(manager, principal.userId));
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
   * (user row, sessions, audit rows) makes that rare. If it keeps failing the
   * error surfaces as a 503 with Retry-After (see pg-errors.ts).
   */
  private async transaction<T>(
    work: (manager: EntityManager, ended: EndedSessions) => Promise<T>,
  ): Promise<T> {
    for (let attempt = 1; ; attempt += 1) {
      const ended = new EndedSessions();
      try {
        const result = await this.sessions.transaction((manager) => work(manager, ended));
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
    const evicted = await this.sessions.evictLeastRecentlyUsed(
      manager,
      userId,
      this.auth.maxSessionsPerUser - 1,
      now,
    );
    ended.add(evicted, 'evicted');
    const sessionId = randomUUID();
    const absoluteExpiresAt = this.tokens.absoluteExpiry(now);
    const first = this.tokens.refreshLifetime(now, absoluteExpiresAt);
    const tokenSalt = newTokenSalt();
    await this.sessions.create(manager, {
      userId,
      sessionId,
      now,
      tokenSalt,
      first,
      absoluteExpiresAt,
      userAgent: client.userAgent,
      ip: client.ip,
    });
    const refreshToken = this.tokens.signRefreshToken({
      userId,
      sessionId,
      generation: 0,
      jti: generationJti(tokenSalt, 0),
      ...first,
    });
    await this.audit.record(
      [...this.revocationEvents(userId, evicted, 'evicted'), { type: event, userId, sessionId }],
      client,
      now,
      manager,
    );
    return this.tokenResponse(userId, sessionId, refreshToken, first.expiresAt, now);
  }

  /** Revokes sessions and records one `session_revoked` event for each that this call ended. */
  private async endSessions(
    manager: EntityManager,
    userId: string,
    sessionIds: string[],
    reason: RevocationReason,
    client: ClientInfo,
    now: Date,
    ended: EndedSessions,
  ): Promise<string[]> {
    const revoked = await this.sessions.revoke(userId, sessionIds, reason, now, manager);
    ended.add(revoked, reason);
    await this.audit.record(this.revocationEvents(userId, revoked, reason), client, now, manager);
    return revoked;
  }

  private revocationEvents(
    userId: string,
    sessionIds: string[],
    reason: RevocationReason,
  ): NewAuthEvent[] {
    return sessionIds.map((sessionId) => ({ type: 'session_revoked', userId, sessionId, reason }));
  }

  private tokenResponse(
    userId: string,
    sessionId: string,
    refreshToken: string,
    refreshExpiresAt: Date,
    now: Date,
  ): TokenResponseDto {
    const access = this.tokens.signAccessToken(userId, sessionId, now, refreshExpiresAt);
    return {
      access_token: access.token,
      token_type: 'Bearer',
      expires_in: access.claims.exp - access.claims.iat,
      refresh_token: refreshToken,
      refresh_expires_in: Math.max(0, toEpochSeconds(refreshExpiresAt) - access.claims.iat),
    };
  }
}
