import { randomUUID } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import type { EntityManager } from 'typeorm';
import { AuditService, type NewAuthEvent } from '../../audit/audit.service.js';
import type { ClientInfo } from '../../common/client-info.js';
import { Clock } from '../../common/clock.js';
import { NotFoundError } from '../../common/errors.js';
import type { RevocationReason } from '../../common/revocation-reasons.js';
import type { AppConfig, AuthConfig } from '../../config/configuration.js';
import { Transactions } from '../../database/transactions.js';
import { MetricsService } from '../../observability/metrics.service.js';
import type { TokenResponseDto } from '../dto/token-response.dto.js';
import type { SessionBinding } from '../tokens/token-claims.js';
import { generationJti, newTokenSalt, TokenService } from '../tokens/token.service.js';
import { EndedSessions } from './ended-sessions.js';
import { type LiveSession, SessionRepository } from './session.repository.js';
import { SessionRevocations } from './session-revocations.js';

/**
 * Starts and ends sessions, in the caller's transaction or its own; the
 * refresh is SessionRefresh's. Credentials are the callers' concern
 * (AuthService, AccountService): they prove them before a transaction opens
 * and hand this service the locked user.
 */
@Injectable()
export class SessionsService {
  private readonly auth: AuthConfig;

  constructor(
    config: ConfigService<AppConfig, true>,
    private readonly transactions: Transactions,
    private readonly tokens: TokenService,
    private readonly sessions: SessionRepository,
    private readonly revocations: SessionRevocations,
    private readonly audit: AuditService,
    private readonly metrics: MetricsService,
    private readonly clock: Clock,
  ) {
    this.auth = config.get('auth', { infer: true });
  }

  /**
   * One transaction (see Transactions); the sessions it ended, collected in
   * `ended`, enter this instance's view of ended sessions once it has
   * committed, before the response leaves, so this instance refuses their
   * access tokens at once. They are counted then too, so the counters follow
   * the database. A retried run starts with an empty `ended`.
   */
  async transaction<T>(
    work: (manager: EntityManager, ended: EndedSessions) => Promise<T>,
  ): Promise<T> {
    let ended = new EndedSessions();
    const result = await this.transactions.run((manager) => {
      ended = new EndedSessions();
      return work(manager, ended);
    });
    this.revocations.recordEnded(ended.ids);
    for (const [reason, count] of ended.revoked) this.metrics.sessionsRevoked(reason, count);
    return result;
  }

  /**
   * Starts a session for `userId`, whose row the caller holds locked: the
   * lock makes "count live sessions, evict, insert" atomic per user. At most
   * MAX_SESSIONS_PER_USER stay live: the least recently used one goes.
   */
  async start(
    manager: EntityManager,
    userId: string,
    client: ClientInfo,
    event: 'registered' | 'login_succeeded',
    ended: EndedSessions,
  ): Promise<TokenResponseDto> {
    const now = this.clock.now();
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
    const binding: SessionBinding = {
      clientId: client.clientId ?? null,
      keyThumbprint: client.keyThumbprint ?? null,
    };
    await this.sessions.create(manager, {
      userId,
      sessionId,
      now,
      tokenSalt,
      first,
      absoluteExpiresAt,
      userAgent: client.userAgent,
      ip: client.ip,
      binding,
    });
    const refreshToken = this.tokens.signRefreshToken({
      userId,
      sessionId,
      generation: 0,
      jti: generationJti(tokenSalt, 0),
      ...first,
      binding,
    });
    await this.audit.record(
      [...this.revocationEvents(userId, evicted, 'evicted'), { type: event, userId, sessionId }],
      client,
      now,
      manager,
    );
    return this.tokens.response(
      userId,
      sessionId,
      refreshToken,
      first.expiresAt,
      now,
      binding,
    );
  }

  /**
   * Revokes the user's sessions among `sessionIds` that are still live, with
   * one `session_revoked` event for each that this call ended; returns those.
   */
  async end(
    manager: EntityManager,
    userId: string,
    sessionIds: string[],
    reason: RevocationReason,
    client: ClientInfo,
    ended: EndedSessions,
    now = this.clock.now(),
  ): Promise<string[]> {
    const revoked = await this.sessions.revoke(userId, sessionIds, reason, now, manager);
    ended.add(revoked, reason);
    await this.audit.record(this.revocationEvents(userId, revoked, reason), client, now, manager);
    return revoked;
  }

  /**
   * Revokes every live session of the user but `keep`; the caller records
   * the returned ids' events with its own (revocationEvents), in one insert.
   */
  async endAll(
    manager: EntityManager,
    userId: string,
    reason: RevocationReason,
    keep: string | null,
    ended: EndedSessions,
    now: Date,
  ): Promise<string[]> {
    const revoked = await this.sessions.revokeAllForUser(manager, userId, reason, now, keep);
    ended.add(revoked, reason);
    return revoked;
  }

  /** Every session of the user, locked, before the account goes: ended, but not revoked. */
  async lockAllForDeletion(
    manager: EntityManager,
    userId: string,
    ended: EndedSessions,
  ): Promise<void> {
    ended.add(await this.sessions.lockAllForUser(manager, userId));
  }

  /** Ends one of the user's live sessions; anything else is a 404 (no probing other users' ids). */
  async endOwn(userId: string, sessionId: string, client: ClientInfo): Promise<void> {
    const revoked = await this.transaction((manager, ended) =>
      this.end(manager, userId, [sessionId], 'user_revoked', client, ended),
    );
    if (revoked.length === 0) throw new NotFoundError('No such session');
  }

  list(userId: string): Promise<LiveSession[]> {
    return this.sessions.listLive(userId, this.clock.now());
  }

  revocationEvents(userId: string, sessionIds: string[], reason: RevocationReason): NewAuthEvent[] {
    return sessionIds.map((sessionId) => ({ type: 'session_revoked', userId, sessionId, reason }));
  }
}
