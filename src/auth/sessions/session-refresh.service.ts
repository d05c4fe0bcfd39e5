import { timingSafeEqual } from 'node:crypto';
import { Injectable, Logger } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import type { EntityManager } from 'typeorm';
import { AuditService } from '../../audit/audit.service.js';
import type { ClientInfo } from '../../common/client-info.js';
import { Clock } from '../../common/clock.js';
import type { AppConfig, AuthConfig } from '../../config/configuration.js';
import { Transactions } from '../../database/transactions.js';
import { MetricsService } from '../../observability/metrics.service.js';
import { AuthErrors } from '../auth-errors.js';
import { DpopBinding } from '../dpop/dpop-binding.service.js';
import type { DpopOutcome } from '../dpop/dpop-proofs.service.js';
import type { TokenResponseDto } from '../dto/token-response.dto.js';
import { bindingOf, type RefreshTokenClaims } from '../tokens/token-claims.js';
import { generationJti, hashToken, TokenService } from '../tokens/token.service.js';
import { type PresentedRefreshToken, OUTCOME_EFFECTS, type Refusal } from './refresh-outcomes.js';
import { decideRotation, type RotationDecision } from './rotation.rules.js';
import {
  type Rotated,
  type Rotation,
  type RotationState,
  SessionRepository,
} from './session.repository.js';
import { SessionsService } from './sessions.service.js';

// Rounds of one refresh while concurrent requests keep moving its session.
const ROTATION_ATTEMPTS = 3;

/** Refreshes sessions: the rotation of RFC 9700 §4.14.2, by the rule of rotation.rules.ts. */
@Injectable()
export class SessionRefresh {
  private readonly logger = new Logger(SessionRefresh.name);
  private readonly auth: AuthConfig;

  constructor(
    config: ConfigService<AppConfig, true>,
    private readonly transactions: Transactions,
    private readonly tokens: TokenService,
    private readonly store: SessionRepository,
    private readonly sessions: SessionsService,
    private readonly audit: AuditService,
    private readonly metrics: MetricsService,
    private readonly dpop: DpopBinding,
    private readonly clock: Clock,
  ) {
    this.auth = config.get('auth', { infer: true });
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
   *
   * A DPoP-bound session's token refreshes only with a proof of its key,
   * checked first: without the key a replayed token never reaches the rule,
   * so it can neither rotate the session nor end it as reuse.
   */
  async refresh(
    presented: PresentedRefreshToken,
    client: ClientInfo,
    proof: DpopOutcome,
  ): Promise<TokenResponseDto> {
    const { claims } = presented;
    await this.dpop.checkRefresh(claims, proof, client);
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
        const rotated = await this.store.rotate(rotation, Buffer.from(claims.jti, 'base64url'));
        if (rotated) return this.rotatedResponse(rotation, rotated, claims, now);
      }
      const state = await this.store.findForRotation(claims.sid);
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
        const rotated = await this.store.rotateLegacy(rotation, hashToken(token));
        return rotated && this.rotatedResponse(rotation, rotated, claims, now);
      }
      case 'reissue':
        return this.reissue(claims, state!, client, now);
      case 'reuse': {
        const revoked = await this.sessions.transaction(async (manager, ended) => {
          // Session row first, then the audit rows (see lockAllForUser).
          const ids = await this.sessions.end(
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
    const { metric, error } = OUTCOME_EFFECTS[refusal];
    this.metrics.refresh(metric);
    throw error();
  }

  /** The audit event of an outcome, in `manager`'s transaction when given. */
  private record(
    outcome: keyof typeof OUTCOME_EFFECTS,
    claims: RefreshTokenClaims,
    client: ClientInfo,
    now: Date,
    manager?: EntityManager,
    reason?: string,
  ): Promise<void> {
    const type = OUTCOME_EFFECTS[outcome].event!;
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
            binding: bindingOf(claims),
          });
    const sameClient = client.ip === state.ip && client.userAgent === state.userAgent;
    const reissued = await this.transactions.run(async (manager) => {
      if (!(await this.store.touchGeneration(manager, claims.sid, generation, now))) {
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
    this.metrics.refresh(OUTCOME_EFFECTS.reissue.metric);
    return this.tokens.response(
      claims.sub,
      claims.sid,
      refreshToken,
      state.expiresAt,
      now,
      bindingOf(claims),
    );
  }

  private rotatedResponse(
    rotation: Rotation,
    rotated: Rotated,
    claims: RefreshTokenClaims,
    now: Date,
  ): TokenResponseDto {
    const binding = bindingOf(claims);
    const refreshToken = this.tokens.signRefreshToken({
      userId: rotation.userId,
      sessionId: rotation.sessionId,
      generation: rotated.generation,
      jti: rotated.jti.toString('base64url'),
      issuedAt: rotation.issuedAt,
      expiresAt: rotated.expiresAt,
      binding,
    });
    this.metrics.refresh(OUTCOME_EFFECTS.rotate.metric);
    return this.tokens.response(
      rotation.userId,
      rotation.sessionId,
      refreshToken,
      rotated.expiresAt,
      now,
      binding,
    );
  }
}

/**
 * The presented token's generation in `state`'s session, or `'foreign'` if
 * it is signed by us but was never issued for it (another subject, or a jti
 * that is not the digest of the session's salt and that generation: the
 * refresh key alone cannot make a token a session accepts).
 */
export function presentedGeneration(
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
