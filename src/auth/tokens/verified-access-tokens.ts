import { Injectable } from '@nestjs/common';
import type { Principal } from '../../common/principal.js';

interface Entry {
  principal: Principal;
  /** The token's `exp` claim, in seconds since the epoch. */
  exp: number;
}

/** Enough for every active client of one instance; ~0.5 KB per entry. */
export const MAX_VERIFIED_TOKENS = 10_000;

/**
 * Access tokens the access strategy has fully verified (signature, algorithm,
 * issuer, audience, `typ`, claim shapes), remembered until they expire so a
 * client's next requests with the same token skip re-verification: the idea
 * of Envoy's jwt_authn `jwt_cache_config`. Passport, jsonwebtoken and the
 * signature check are a large share of the CPU of a cheap authenticated
 * request (`npm run bench` shows it), and an ES256 verification costs
 * several times an HMAC.
 *
 * - Keyed by the whole compact token: any altered byte is another key, so a
 *   forged or tampered token can only reach the strategy.
 * - Only verification is remembered. Expiry is re-checked on every hit with
 *   the rule jsonwebtoken applies, and the session check (logout, reuse
 *   detection) still runs for every request (SessionLiveness.assertActive).
 * - Bounded: when full, the oldest entries go first; an evicted token is
 *   simply verified again.
 */
@Injectable()
export class VerifiedAccessTokens {
  private readonly entries = new Map<string, Entry>();

  /** The principal of a verified, unexpired token, or undefined (verify it). */
  lookup(token: string, nowMs = Date.now()): Principal | undefined {
    const entry = this.entries.get(token);
    if (!entry) return undefined;
    // jsonwebtoken: expired once floor(now) >= exp (RFC 7519 §4.1.4).
    if (Math.floor(nowMs / 1000) >= entry.exp) {
      this.entries.delete(token);
      return undefined;
    }
    return entry.principal;
  }

  remember(token: string, principal: Principal, exp: number): void {
    if (this.entries.size >= MAX_VERIFIED_TOKENS && !this.entries.has(token)) {
      // Maps iterate in insertion order: the first key is the oldest.
      const oldest = this.entries.keys().next();
      if (!oldest.done) this.entries.delete(oldest.value);
    }
    this.entries.set(token, { principal: Object.freeze({ ...principal }), exp });
  }

  forget(token: string): void {
    this.entries.delete(token);
  }

  /** Forgets everything: a signing key left the key set (see SigningKeys). */
  clear(): void {
    this.entries.clear();
  }

  get size(): number {
    return this.entries.size;
  }
}
