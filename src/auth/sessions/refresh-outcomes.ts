import type { AuthEventType } from '../../audit/auth-event.entity.js';
import type { AppError } from '../../common/errors.js';
import type { RefreshOutcome } from '../../observability/metrics.service.js';
import { AuthErrors } from '../auth-errors.js';
import type { RefreshTokenClaims } from '../tokens/token-claims.js';
import type { RotationDecision } from './rotation.rules.js';

/** What a verified refresh token brings to the rotation: its claims and its exact text. */
export interface PresentedRefreshToken {
  claims: RefreshTokenClaims;
  token: string;
}

/** The refresh outcomes that answer with an error instead of tokens. */
export type Refusal = Exclude<RotationDecision['kind'], 'rotate' | 'reissue'>;

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
export const OUTCOME_EFFECTS: Record<'rotate' | 'reissue', OutcomeEffects> &
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
