/**
 * The rotation rule (RFC 9700 §4.14.2) as a pure function, so every row of
 * the table is unit-tested without a database.
 *
 * A session's refresh tokens are numbered: `generation` G is the newest one
 * issued. A token is consumed when its child is first used, not when it is
 * first presented. A presented token of generation p is therefore:
 *
 *   session / token         G - p   outcome
 *   ----------------------  ------  ----------------------------------------------
 *   revoked                 any     refuse: session_revoked
 *   past either lifetime    any     refuse: session_expired
 *   not ours                any     refuse: token_invalid (future generation,
 *                                   another user, a jti this session never issued)
 *   the newest token        0       rotate: generation G + 1 is issued
 *   parent of the newest    1       reissue: the byte-identical token G, with no
 *                                   time limit (its child is unused: a lost
 *                                   response, a retry or a second tab)
 *   its child was used      2       within REFRESH_REUSE_GRACE of that use:
 *                                   refuse without ending the session
 *                                   (refresh_token_superseded); after it: reuse
 *   older                   ≥ 3     reuse, whenever presented
 *
 * Reuse revokes the session. Two holders of one token that both keep
 * refreshing stay on the same token (each re-issue hands the other the token
 * it already has, granting nothing new); the first one to fall behind by two
 * generations is detected. Every re-issue is recorded, with the client it went
 * to, because one to another client may be the thief.
 *
 * Inside the grace the request gets no token: the racing client that sent it
 * holds (cookie jar, shared storage) or will receive the newer one, so it
 * loses nothing by retrying with it, while a replay of a stolen parent seconds
 * after its child was used gains nothing. Ending the session there would log
 * out two racing tabs; answering with a token would let every replay inside
 * the window through (the hole of a grace that grants, which the ≥ 3 row also
 * closes: a grace never reaches back more than one used token).
 */
export type RotationDecision =
  | { kind: 'rotate' }
  | { kind: 'reissue' }
  | { kind: 'superseded' }
  | { kind: 'reuse'; reason: ReuseReason }
  | { kind: 'revoked' }
  | { kind: 'expired' }
  | { kind: 'invalid' };

/** Which row of the table made a presentation reuse; recorded on the event. */
export type ReuseReason = 'child_used' | 'older_generation';

export interface SessionRotationState {
  /** The newest generation issued. */
  generation: number;
  /** When that generation was issued, i.e. when its parent's child was used. */
  rotatedAt: Date;
  expiresAt: Date;
  revokedAt: Date | null;
}

/**
 * `presented` is the presented token's generation, or `'foreign'` when it is
 * signed by us but was not issued for this session (another user, a jti that
 * does not match). A v1 token from before the upgrade that is neither the
 * session's generation 0 nor its parent is `-Infinity`: an older token.
 */
export function decideRotation(
  session: SessionRotationState,
  presented: number | 'foreign',
  now: Date,
  graceSeconds: number,
): RotationDecision {
  if (session.revokedAt) return { kind: 'revoked' };
  if (session.expiresAt <= now) return { kind: 'expired' };
  if (presented === 'foreign' || presented > session.generation) return { kind: 'invalid' };
  const behind = session.generation - presented;
  if (behind === 0) return { kind: 'rotate' };
  if (behind === 1) return { kind: 'reissue' };
  if (behind === 2) {
    const sinceChildUsed = now.getTime() - session.rotatedAt.getTime();
    return sinceChildUsed <= graceSeconds * 1000
      ? { kind: 'superseded' }
      : { kind: 'reuse', reason: 'child_used' };
  }
  return { kind: 'reuse', reason: 'older_generation' };
}
