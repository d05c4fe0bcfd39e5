import { randomUUID, timingSafeEqual } from 'node:crypto';
import { Injectable, Logger } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import type { EntityManager } from 'typeorm';
import { AuditService, type NewAuthEvent } from '../../audit/audit.service.js';
import type { ClientInfo } from '../../common/client-info.js';
import { Clock } from '../../common/clock.js';
import { type AppError, NotFoundError } from '../../common/errors.js';
import type { RevocationReason } from '../../common/revocation-reasons.js';
import type { AppConfig, AuthConfig } from '../../config/configuration.js';
import { Transactions } from '../../database/transactions.js';
import type { AuthEventType } from '../../audit/auth-event.entity.js';
import { MetricsService, type RefreshOutcome } from '../../observability/metrics.service.js';
import { AuthErrors } from '../auth-errors.js';
import type { TokenResponseDto } from '../dto/token-response.dto.js';
import type { RefreshTokenClaims } from '../tokens/token-claims.js';
import {
  generationJti,
  hashToken,
  newTokenSalt,
  toEpochSeconds,
  TokenService,
} from '../tokens/token.service.js';
import { decideRotation, type RotationDecision } from './rotation.rules.js';
import {
  type LiveSession,
  type Rotated,
  type Rotation,
  type RotationState,
  SessionRepository,
} from './session.repository.js';
import { SessionRevocations } from './session-revocations.js';

// Rounds of one refresh while concurrent requests keep moving its session.
const ROTATION_ATTEMPTS = 3;

/** What a verified refresh token brings to the rotation: its claims and its exact text. */
export interface PresentedRefreshToken {
  claims: RefreshTokenClaims;
  token: string;
}

/** The refresh outcomes that answer with an error instead of tokens. */
type Refusal = Exclude<RotationDecision['kind'], 'rotate' | 'reissue'>;

interface OutcomeEffects {
  /** Its label of `lineage_refresh_total`. */
  metric: RefreshOutcome;
  /** The audit event it records, besides the `session_revoked` of a reuse. */
  event?: AuthEventType;
}

/**
 * What each outcome of a refresh is counted as, recorded as and answered
 * with. The guard counts from the same table the refusals it decides before
 * the service sees the token (`expired`, `invalid`).
 */
export const REFRESH_OUTCOMES: Record<'rotate' | 'reissue', OutcomeEffects> &
  Record<Refusal, OutcomeEffects & { error: () => AppError }> = {
  rotate: { metric: 'rotated' },
  reissue: { metric: 'reissued', event: 'refresh_reissued' },
  superseded: {
    metric: 'superseded',
    event: 'refresh_superseded',
    error: AuthErrors.refreshTokenSuperseded,
  },
  reuse: {
    metric: 'reuse_detected',
    event: 'reuse_detected',
    error: AuthErrors.refreshTokenReused,
  },
  revoked: { metric: 'revoked', error: AuthErrors.sessionRevoked },
  expired: { metric: 'expired', error: AuthErrors.sessionExpired },
  invalid: { metric: 'invalid', error: AuthErrors.refreshTokenInvalid },
};

/** Sessions a transaction ended, acted on once it has committed. */
export class EndedSessions {
  readonly ids: string[] = [];
  readonly revoked = new Map<RevocationReason, number>();

  /** `reason` when they were revoked; without one they went with their account. */
  add(ids: string[], reason?: RevocationReason): void {
    this.ids.push(...ids);
    if (reason && ids.length > 0)
      this.revoked.set(reason, (this.revoked.get(reason) ?? 0) + ids.length);
  }
}

/**
 * Starts, refreshes and ends sessions. Credentials are the callers' concern
 * (AuthService, AccountService): they prove them before a transaction opens
 * and hand this service the locked user.
 */
@Injectable()
export class SessionsService {
  private readonly logger = new Logger(SessionsService.name);
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
    const { claims } = presented;
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
      const decision: RotationDecision = state
        ? decideRotation(
            state,
            presentedGeneration(state, presented),
            now,
            this.auth.refreshReuseGrace,
          )
        : { kind: 'revoked' };
      const response = await this.apply(decision, presented, state, rotation, client);
      // Null: the row moved between the read and the write; the next round decides anew.
      if (response) return response;
    }
    throw AuthErrors.retryConcurrent('The session was refreshed concurrently');
  }

  /** Carries out a rotation decision: tokens, a refusal (thrown), or null to decide again. */
  private async apply(
    decision: RotationDecision,
    { claims, token }: PresentedRefreshToken,
    state: RotationState | null,
    rotation: Rotation,
    client: ClientInfo,
  ): Promise<TokenResponseDto | null> {
    const now = rotation.now;
    switch (decision.kind) {
      case 'rotate': {
        // A v1 token (generation 0 of a session from before the upgrade). A
        // v2 token only gets here when the row moved between the statements.
        if (claims.gen !== null) return null;
        const rotated = await this.sessions.rotateLegacy(rotation, hashToken(token));
        return rotated && this.rotatedResponse(rotation, rotated, now);
      }
      case 'reissue':
        return this.reissue(claims, state!, client, now);
      case 'reuse': {
        const revoked = await this.transaction(async (manager, ended) => {
          // Session row first, then the audit rows (see lockAllForUser).
          const ids = await this.end(
            manager,
            claims.sub,
            [claims.sid],
            'reuse_detected',
            client,
            ended,
            now,
          );
          if (ids.length > 0) {
            await this.record('reuse', claims, client, now, manager, decision.reason);
          }
          return ids.length > 0;
        });
        // Ended meanwhile by another request: the next round says how.
        if (!revoked) return null;
        this.logger.warn(
          `Refresh token reuse detected (${decision.reason}); session ${claims.sid} revoked`,
        );
        return this.refuse('reuse');
      }
      case 'superseded':
        await this.record('superseded', claims, client, now);
        return this.refuse('superseded');
      default:
        return this.refuse(decision.kind);
    }
  }

  /** Counts a refused refresh and throws its error. */
  private refuse(refusal: Refusal): never {
    const { metric, error } = REFRESH_OUTCOMES[refusal];
    this.metrics.refresh(metric);
    throw error();
  }

  /** The audit event of an outcome, in `manager`'s transaction when given. */
  private record(
    outcome: keyof typeof REFRESH_OUTCOMES,
    claims: RefreshTokenClaims,
    client: ClientInfo,
    now: Date,
    manager?: EntityManager,
    reason?: string,
  ): Promise<void> {
    const type = REFRESH_OUTCOMES[outcome].event!;
    return this.audit.record(
      [{ type, userId: claims.sub, sessionId: claims.sid, reason }],
      client,
      now,
      manager,
    );
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
    const reissued = await this.transactions.run(async (manager) => {
      if (!(await this.sessions.touchGeneration(manager, claims.sid, generation, now))) {
        return false;
      }
      await this.record(
        'reissue',
        claims,
        client,
        now,
        manager,
        sameClient ? 'same_client' : 'other_client',
      );
      return true;
    });
    if (!reissued) return null;
    this.metrics.refresh(REFRESH_OUTCOMES.reissue.metric);
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
    this.metrics.refresh(REFRESH_OUTCOMES.rotate.metric);
    return this.tokenResponse(
      rotation.userId,
      rotation.sessionId,
      refreshToken,
      rotated.expiresAt,
      now,
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

  /** The RFC 6749 §5.1 response; the access token never outlives the session's refresh token. */
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

/**
 * The presented token's generation in `state`'s session, or `'foreign'` if
 * it is signed by us but was never issued for it (another subject, or a jti
 * that is not the digest of the session's salt and that generation: the
 * refresh key alone cannot make a token a session accepts).
 */
function presentedGeneration(
  state: RotationState,
  { claims, token }: PresentedRefreshToken,
): number | 'foreign' {
  if (state.userId !== claims.sub) return 'foreign';
  if (claims.gen !== null) {
    const expected = Buffer.from(generationJti(state.tokenSalt, claims.gen), 'base64url');
    return timingSafeEqual(expected, Buffer.from(claims.jti, 'base64url')) ? claims.gen : 'foreign';
  }
  // A v1 token: the session's generation 0, the token that one was rotated
  // from, or one rotated away before the upgrade (older still).
  if (state.legacyTokenId === null) return 'foreign';
  const hash = hashToken(token);
  if (state.legacyTokenHash && timingSafeEqual(hash, state.legacyTokenHash)) return 0;
  if (state.legacyParentHash && timingSafeEqual(hash, state.legacyParentHash)) return -1;
  return -Infinity;
}
