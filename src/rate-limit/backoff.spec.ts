import { BackoffSchedule, FAILURE_MEMORY_MS } from './backoff.js';

describe('BackoffSchedule', () => {
  const schedule = new BackoffSchedule({
    freeFailures: 5,
    firstDelay: 1,
    maxDelay: 900,
    maxFailures: 100,
  });

  it('costs nothing for the free failures, then doubles from the first delay (NIST SP 800-63B §5.2.2)', () => {
    expect([1, 2, 3, 4, 5].map((n) => schedule.delayAfter(n))).toEqual([0, 0, 0, 0, 0]);
    expect([6, 7, 8, 9, 10].map((n) => schedule.delayAfter(n))).toEqual([
      1000, 2000, 4000, 8000, 16000,
    ]);
  });

  it('caps a single wait at the maximum delay', () => {
    expect(schedule.delayAfter(15)).toBe(512_000);
    expect(schedule.delayAfter(16)).toBe(900_000);
    expect(schedule.delayAfter(99)).toBe(900_000);
  });

  it('refuses the account until the failures are forgotten once it reaches the outer bound of 100', () => {
    expect(schedule.delayAfter(100)).toBe(FAILURE_MEMORY_MS);
    expect(schedule.delayAfter(101)).toBe(FAILURE_MEMORY_MS);
    // Reaching it takes most of a day with these defaults, so the owner is not locked out by a burst.
    const total = schedule.delaysMs.slice(0, 99).reduce((sum, ms) => sum + ms, 0);
    expect(total).toBeGreaterThan(20 * 3_600_000);
  });

  it('has no delay for no failures', () => {
    expect(schedule.delayAfter(0)).toBe(0);
  });

  it('starts waiting at once with no free failures', () => {
    const strict = new BackoffSchedule({
      freeFailures: 0,
      firstDelay: 2,
      maxDelay: 5,
      maxFailures: 4,
    });
    expect(strict.delaysMs).toEqual([2000, 4000, 5000, FAILURE_MEMORY_MS]);
  });
});
