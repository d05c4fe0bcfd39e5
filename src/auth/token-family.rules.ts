/**
 * The refresh-token family state machine, as a pure function so every
 * transition is unit-tested without a database (RFC 9700 §4.14.2).
 *
 *   presented token        family          outcome
 *   ---------------------  --------------  -------------------------------------
 *   any                    revoked         refuse (session_revoked)
 *   any                    past expiry     refuse (session_expired)
 *   unused                 live            rotate: mark used, issue its child
 *   used, child unused,    live            reissue the same child (multi-tab,
 *     used ≤ grace ago                       lost response, concurrent refresh)
 *   used, otherwise        live            reuse: revoke the whole family
 */
export type RotationDecision =
  | { kind: 'rotate' }
  | { kind: 'reissue' }
  | { kind: 'reuse' }
  | { kind: 'revoked' }
  | { kind: 'expired' };

export interface PresentedTokenState {
  expiresAt: Date;
  usedAt: Date | null;
  /** True when the token's child exists and is still the family's current (unused) token. */
  childIsCurrent: boolean;
  familyRevokedAt: Date | null;
  familyExpiresAt: Date;
}

export function decideRotation(
  state: PresentedTokenState,
  now: Date,
  graceSeconds: number,
): RotationDecision {
  if (state.familyRevokedAt) return { kind: 'revoked' };
  if (state.familyExpiresAt <= now || state.expiresAt <= now) return { kind: 'expired' };
  if (!state.usedAt) return { kind: 'rotate' };
  const sinceUse = now.getTime() - state.usedAt.getTime();
  if (state.childIsCurrent && sinceUse <= graceSeconds * 1000) return { kind: 'reissue' };
  return { kind: 'reuse' };
}
