import { jest } from '@jest/globals';
import { setTimeout as sleep } from 'node:timers/promises';
import { Clock } from '../../src/common/clock.js';
import type { TestApp } from './test-app.js';

/**
 * Time in the e2e suites. The session rules (rotation, reuse grace, idle and
 * absolute expiry on refresh) judge by the injected Clock, so a test moves
 * that instead of sleeping (moveClock). What the JWT libraries check (a
 * token's `exp`) and the remembered verified access tokens judge by the real
 * clock; only waiting for one of those uses waitForWallClock.
 */

/**
 * Makes the app's Clock read the real time plus `seconds` (called again, it
 * moves from the real time anew). Undo with restoreClock.
 */
export function moveClock(t: TestApp, seconds: number): void {
  jest
    .spyOn(t.app.get(Clock), 'now')
    .mockImplementation(() => new Date(Date.now() + seconds * 1000));
}

/** Makes the app's Clock read `instant` until restoreClock. */
export function setClock(t: TestApp, instant: Date): void {
  jest.spyOn(t.app.get(Clock), 'now').mockReturnValue(instant);
}

/** Puts the app's Clock back on the real time (harmless when it was not moved). */
export function restoreClock(t: TestApp): void {
  // spyOn returns the spy already in place, if any; restoring a fresh one is a no-op.
  jest.spyOn(t.app.get(Clock), 'now').mockRestore();
}

/**
 * Waits until the wall clock is past `epochSeconds` (a JWT NumericDate) by
 * `marginMs`: jsonwebtoken counts a token expired once floor(now) >= exp
 * (RFC 7519 §4.1.4), against the real time, which no test can move.
 */
export async function waitForWallClock(epochSeconds: number, marginMs = 50): Promise<void> {
  const wait = epochSeconds * 1000 + marginMs - Date.now();
  if (wait > 0) await sleep(wait);
}

/**
 * Polls `probe` until it returns something other than undefined or false,
 * and returns that: for what happens asynchronously (a notification
 * delivered, a timer fired, a connection re-established). Bounded by
 * `timeoutMs`, after which it throws naming `what`; a guard against waiting
 * forever, not a timing assertion.
 */
export async function eventually<T>(
  what: string,
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  { timeoutMs = 10_000, intervalMs = 20 }: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() >= deadline) throw new Error(`not within ${timeoutMs} ms: ${what}`);
    await sleep(intervalMs);
  }
}
