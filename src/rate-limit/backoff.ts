import type { BackoffPolicy } from '../config/configuration.js';

/**
 * Failures are forgotten this long after the last one (or at once on a
 * success). It is also how long the account stays refused once it reaches
 * `maxFailures`, and it keeps the counters' memory bounded.
 */
export const FAILURE_MEMORY_MS = 24 * 3_600_000;

/**
 * The wait after each consecutive failure, precomputed: `delaysMs[n - 1]` is
 * how long an account waits after its n-th. Following NIST SP 800-63B §5.2.2
 * (rate limiting): consecutive failures on one account are capped at
 * `maxFailures` (at most 100), and the wait grows as the account approaches
 * it, so an attacker cannot get there quickly while its owner, who needs one
 * attempt, waits at most `maxDelay` until the cap is reached (OWASP ASVS
 * V2.2.1: prefer soft lockouts that do not let anyone lock an owner out for long).
 * Both stores read this one table, so they cannot drift from each other.
 */
export class BackoffSchedule {
  readonly delaysMs: readonly number[];

  constructor(policy: BackoffPolicy) {
    const delays: number[] = [];
    for (let n = 1; n <= policy.maxFailures; n += 1) {
      if (n === policy.maxFailures) delays.push(FAILURE_MEMORY_MS);
      else if (n <= policy.freeFailures) delays.push(0);
      else {
        const doubled = policy.firstDelay * 2 ** (n - policy.freeFailures - 1);
        delays.push(Math.min(doubled, policy.maxDelay) * 1000);
      }
    }
    this.delaysMs = delays;
  }

  /** The wait after the n-th consecutive failure (0 for none); past the table, the full memory. */
  delayAfter(failures: number): number {
    if (failures <= 0) return 0;
    return this.delaysMs[failures - 1] ?? FAILURE_MEMORY_MS;
  }
}
