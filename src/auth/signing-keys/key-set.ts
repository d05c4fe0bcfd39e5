/**
 * How long verifiers may cache the JWKS (its Cache-Control max-age). A
 * rotated-in key is published at least this long, plus the instances' reload
 * interval, before it signs, so a cached copy knows it first (src/cli/keys.ts).
 */
export const JWKS_MAX_AGE_SECONDS = 300;

/** What the key set needs of a stored key to decide its state. */
export interface KeyTimes {
  kid: string;
  createdAt: Date;
  activeFrom: Date;
  revokedAt: Date | null;
}

export type KeyState = 'pending' | 'current' | 'retiring' | 'expired' | 'revoked';

export interface KeyStatus<K extends KeyTimes = KeyTimes> {
  key: K;
  state: KeyState;
  /** When a newer key took over signing; null while nothing has. */
  supersededAt: Date | null;
  /**
   * Until when tokens it signed may still be valid, so it must keep
   * verifying and stay in the JWKS; null while it signs or waits to.
   */
  verifiesUntil: Date | null;
}

/**
 * The lifecycle of signing keys at `now`, derived from their times alone so
 * every instance reaches the same answer from the same rows:
 *
 * - `pending`: created, not active yet. Already published, so verifiers that
 *   cache the JWKS know the key before any token carries it.
 * - `current`: the newest key whose `activeFrom` has passed: it signs.
 * - `retiring`: superseded by a newer active key at `supersededAt`. An
 *   instance may have kept signing with it until its next reload
 *   (`reloadMs`), and such a token lives ACCESS_TOKEN_TTL: it verifies and
 *   stays published until `supersededAt + retainMs`.
 * - `expired`: past that, nothing it signed can be valid; it leaves the JWKS.
 * - `revoked`: withdrawn early (compromise): neither signs nor verifies.
 *
 * A key that was active supersedes its predecessor for good, even if it is
 * revoked later: the predecessor stopped signing then, and bringing a retired
 * key back would undo a rotation (the store makes a new key instead). A key
 * revoked before it became active never took over and supersedes nothing.
 */
export function keyStatuses<K extends KeyTimes>(
  keys: readonly K[],
  now: Date,
  retainMs: number,
): KeyStatus<K>[] {
  const ordered = [...keys].sort(
    (a, b) =>
      a.activeFrom.getTime() - b.activeFrom.getTime() ||
      a.createdAt.getTime() - b.createdAt.getTime() ||
      (a.kid < b.kid ? -1 : a.kid > b.kid ? 1 : 0),
  );
  // Every key that has taken over signing at some point, in order.
  const tookOver = ordered.filter(
    (key) =>
      key.activeFrom.getTime() <= now.getTime() &&
      (key.revokedAt === null || key.revokedAt.getTime() >= key.activeFrom.getTime()),
  );
  const last = tookOver.at(-1);
  const current = last && last.revokedAt === null ? last : undefined;
  return ordered.map((key) => {
    if (key.revokedAt !== null) {
      return { key, state: 'revoked', supersededAt: null, verifiesUntil: null };
    }
    if (key === current) return { key, state: 'current', supersededAt: null, verifiesUntil: null };
    if (key.activeFrom.getTime() > now.getTime()) {
      return { key, state: 'pending', supersededAt: null, verifiesUntil: null };
    }
    // An active key that is not the current one: the next key to take over ended its signing.
    const successor = tookOver[tookOver.indexOf(key) + 1];
    const supersededAt = successor.activeFrom;
    const verifiesUntil = new Date(supersededAt.getTime() + retainMs);
    return {
      key,
      state: verifiesUntil.getTime() > now.getTime() ? 'retiring' : 'expired',
      supersededAt,
      verifiesUntil,
    };
  });
}

/** States whose keys verify tokens and appear in the JWKS. */
export function verifies(state: KeyState): boolean {
  return state === 'pending' || state === 'current' || state === 'retiring';
}
