import { BackoffSchedule, FAILURE_MEMORY_MS } from './backoff.js';
import { MemoryFailureCounters } from './failure-counters.js';

describe('MemoryFailureCounters', () => {
  const schedule = new BackoffSchedule({
    freeFailures: 2,
    firstDelay: 10,
    maxDelay: 40,
    maxFailures: 6,
  });
  let store: MemoryFailureCounters;
  const t0 = 1_000_000;

  beforeEach(() => {
    store = new MemoryFailureCounters();
  });

  afterEach(async () => {
    await store.close();
  });

  it('counts the free attempts without a wait, then makes the key wait longer after each (NIST SP 800-63B §5.2.2)', async () => {
    expect(await store.beginAttempt('k', schedule, t0)).toBe(0);
    expect(await store.beginAttempt('k', schedule, t0)).toBe(0);
    // The third attempt is let through; its start sets the first wait.
    expect(await store.beginAttempt('k', schedule, t0)).toBe(0);
    expect(await store.beginAttempt('k', schedule, t0 + 1)).toBe(10);
    expect(await store.beginAttempt('k', schedule, t0 + 9_500)).toBe(1);
    // Refused attempts are not counted: the next one is only the fourth.
    expect(await store.beginAttempt('k', schedule, t0 + 10_000)).toBe(0);
    expect(await store.beginAttempt('k', schedule, t0 + 10_001)).toBe(20);
    expect(await store.beginAttempt('k', schedule, t0 + 30_000)).toBe(0);
    expect(await store.beginAttempt('k', schedule, t0 + 30_001)).toBe(40);
  });

  it('refuses the key for the whole memory once it reaches the outer bound, then forgets', async () => {
    let now = t0;
    for (let n = 1; n <= 6; n += 1) {
      expect(await store.beginAttempt('k', schedule, now)).toBe(0);
      now += 60_000;
    }
    const last = now - 60_000;
    expect(await store.beginAttempt('k', schedule, last + 1)).toBe(FAILURE_MEMORY_MS / 1000);
    expect(await store.beginAttempt('k', schedule, last + FAILURE_MEMORY_MS - 1)).toBe(1);
    expect(await store.beginAttempt('k', schedule, last + FAILURE_MEMORY_MS)).toBe(0);
    expect(await store.beginAttempt('k', schedule, last + FAILURE_MEMORY_MS + 1)).toBe(0);
  });

  it('forgets every failure on a success', async () => {
    for (let n = 0; n < 3; n += 1) await store.beginAttempt('k', schedule, t0);
    expect(await store.beginAttempt('k', schedule, t0 + 1)).toBe(10);
    await store.clearFailures('k');
    expect(await store.beginAttempt('k', schedule, t0 + 2)).toBe(0);
    expect(await store.beginAttempt('k', schedule, t0 + 3)).toBe(0);
  });

  it('gives back an attempt that checked no password, and the wait it set', async () => {
    await store.beginAttempt('k', schedule, t0);
    await store.beginAttempt('k', schedule, t0);
    await store.beginAttempt('k', schedule, t0);
    await store.cancelAttempt('k', schedule, t0 + 1);
    expect(await store.beginAttempt('k', schedule, t0 + 2)).toBe(0);
    expect(await store.beginAttempt('k', schedule, t0 + 3)).toBe(10);
  });

  it('keeps keys apart', async () => {
    for (let n = 0; n < 3; n += 1) await store.beginAttempt('a', schedule, t0);
    expect(await store.beginAttempt('a', schedule, t0 + 1)).toBe(10);
    expect(await store.beginAttempt('b', schedule, t0 + 1)).toBe(0);
  });
});
