import { Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { AuditService } from '../audit/audit.service.js';
import type { ClientInfo } from '../common/client-info.js';
import { Clock } from '../common/clock.js';
import { AppError, ErrorCode } from '../common/errors.js';
import type { Principal } from '../common/principal.js';
import { MetricsService } from '../observability/metrics.service.js';
import { PasswordService } from '../users/password.service.js';
import { UsersService } from '../users/users.service.js';
import { AuthErrors } from './auth-errors.js';
import type { TokenResponseDto } from './dto/token-response.dto.js';
import { DpopBinding } from './dpop/dpop-binding.service.js';
import type { DpopOutcome } from './dpop/dpop-proofs.service.js';
import type { EndedSessions } from './sessions/ended-sessions.js';
import { SessionsService } from './sessions/sessions.service.js';
import { TokenService } from './tokens/token.service.js';

export type LogoutScope = 'all' | 'others';

/**
 * Credentials in, sessions out: register, log in, log out and revoke.
 *
 * bcrypt always runs before a transaction opens, so no pooled connection or
 * row lock ever waits on it. Every user-level write takes its locks in one
 * order: the user row, then sessions, then audit rows (whose foreign key
 * takes KEY SHARE on the user row); writing an audit row first could
 * deadlock with account deletion.
 */
@Injectable()
export class AuthService {
  constructor(
    private readonly users: UsersService,
    private readonly passwords: PasswordService,
    private readonly tokens: TokenService,
    private readonly sessions: SessionsService,
    private readonly audit: AuditService,
    private readonly metrics: MetricsService,
    private readonly dpop: DpopBinding,
    private readonly clock: Clock,
  ) {}

  /**
   * Creates the account and its first session in one transaction. A valid
   * DPoP `proof` binds the session to its key (see DpopBinding); a refused
   * one is refused before any bcrypt work.
   */
  async register(
    username: string,
    password: string,
    client: ClientInfo,
    proof: DpopOutcome,
  ): Promise<TokenResponseDto> {
    client = this.withKey(client, proof);
    const hash = await this.passwords.hash(password);
    return this.sessions.transaction(async (manager, ended) => {
      const user = await this.users.create(manager, username, hash);
      return this.startSession(manager, user.id, hash, client, 'registered', ended);
    });
  }

  /** Starts a session, bound to the key of a valid DPoP `proof` (as register). */
  async login(
    username: string,
    password: string,
    client: ClientInfo,
    proof: DpopOutcome,
  ): Promise<TokenResponseDto> {
    client = this.withKey(client, proof);
    const user = await this.users.findForLogin(username);
    if (!(await this.passwords.verify(password, user?.passwordHash)) || !user) {
      // The owner sees failed attempts on their account; an unknown name is recorded without a user.
      await this.audit.record(
        [{ type: 'login_failed', userId: user?.id ?? null }],
        client,
        this.clock.now(),
      );
      this.metrics.login('failure');
      throw AuthErrors.invalidCredentials();
    }
    const tokens = await this.sessions
      .transaction((manager, ended) =>
        this.startSession(manager, user.id, user.passwordHash, client, 'login_succeeded', ended),
      )
      .catch((error: unknown) => {
        // The password changed, or the account went, while it was being checked.
        if (error instanceof AppError && error.code === ErrorCode.InvalidCredentials)
          this.metrics.login('failure');
        throw error;
      });
    this.metrics.login('success');
    return tokens;
  }

  private withKey(client: ClientInfo, proof: DpopOutcome): ClientInfo {
    const keyThumbprint = this.dpop.keyForNewSession(proof);
    return keyThumbprint === undefined ? client : { ...client, keyThumbprint };
  }

  /**
   * Starts a session for credentials proven against `provenHash`. Under the
   * user's row lock the hash must still be that one, so a login that raced a
   * password change or an account deletion gets no session (OWASP ASVS 3.3.3).
   */
  private async startSession(
    manager: EntityManager,
    userId: string,
    provenHash: string,
    client: ClientInfo,
    event: 'registered' | 'login_succeeded',
    ended: EndedSessions,
  ): Promise<TokenResponseDto> {
    const locked = await this.users.lockForUpdate(manager, userId);
    if (!locked || locked.passwordHash !== provenHash) throw AuthErrors.invalidCredentials();
    return this.sessions.start(manager, userId, client, event, ended);
  }

  /**
   * Revokes the caller's session and, when given, the session of a refresh
   * token of the same user (it may already be rotated: a client may log out
   * with the refresh token it got at login). A token that does not verify,
   * or belongs to someone else, is ignored: logout must not reveal anything
   * about it, nor fail because of it.
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
    const now = this.clock.now();
    await this.sessions.transaction(async (manager, ended) => {
      // A deleted account has no session left to end.
      if (!(await this.users.lockForUpdate(manager, principal.userId))) return;
      await this.sessions.end(manager, principal.userId, sessionIds, 'logout', client, ended, now);
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
    const now = this.clock.now();
    return this.sessions.transaction(async (manager, ended) => {
      // User row first, as in logout: the audit row below must not find the account gone.
      if (!(await this.users.lockForUpdate(manager, principal.userId))) return 0;
      const keep = scope === 'others' ? principal.sessionId : null;
      const revoked = await this.sessions.endAll(
        manager,
        principal.userId,
        'logout_all',
        keep,
        ended,
        now,
      );
      await this.audit.record(
        [
          {
            type: 'logout_all',
            userId: principal.userId,
            sessionId: principal.sessionId,
            reason: scope,
          },
          ...this.sessions.revocationEvents(principal.userId, revoked, 'logout_all'),
        ],
        client,
        now,
        manager,
      );
      return revoked.length;
    });
  }

  /**
   * RFC 7009 token revocation: ends the session of a refresh or access token.
   * Unknown, invalid or already revoked tokens are not an error (§2.2), so the
   * endpoint reveals nothing about a token. The hint only orders the lookup.
   * An access token expired longer ago than the grace is such a token: 200,
   * and its session goes on (see verifyAccessTokenForRevocation). A token of
   * a DPoP-bound session is revoked only with a proof of its key: holding
   * the token is not enough there (RFC 9449 binds its use to the key).
   */
  async revokeToken(
    token: string,
    hint: string | undefined,
    client: ClientInfo,
    proof: DpopOutcome,
  ): Promise<void> {
    const asRefresh = () => this.tokens.verifyRefreshTokenIgnoringExpiry(token);
    const asAccess = () => this.tokens.verifyAccessTokenForRevocation(token);
    const claims =
      hint === 'access_token'
        ? ((await asAccess()) ?? asRefresh())
        : (asRefresh() ?? (await asAccess()));
    if (!claims) return;
    this.dpop.checkRevocation(claims, proof);
    await this.sessions.transaction((manager, ended) =>
      this.sessions.end(manager, claims.sub, [claims.sid], 'token_revoked', client, ended),
    );
  }
}
