import type { Redis } from 'ioredis';
import { type BackoffSchedule, FAILURE_MEMORY_MS } from './backoff.js';

/**
 * Consecutive-failure counters with a growing wait (see BackoffSchedule), for
 * the `account` and `password` limits.
 *
 * These are not @nestjs/throttler throttlers, because its storage contract
 * (`increment(key, ttl, limit, blockDuration)`) cannot carry them without
 * losing behaviour: the wait depends on the count the same call produces
 * (one fixed block duration per call cannot follow the schedule), a success
 * must clear the count and an attempt that checked no password must be given
 * back (the contract has no reset or decrement), and counting a refused
 * attempt would let a guesser keep an owner waiting forever. They do share the
 * throttler storage's Redis connection (see RateLimitStorage).
 *
 * A failure counter counts each attempt when it starts, not when its failure
 * is known: the check "is this key waiting" and the count are one atomic step,
 * so N parallel guesses cannot all pass the check before the first of them is
 * counted; the schedule holds exactly, however many arrive at once. A success
 * then clears the counter, and an attempt that checked no password is given back.
 */
export interface FailureCounters {
  /** Counts an attempt and returns 0; while the key is waiting, counts nothing and returns the seconds left. */
  beginAttempt(key: string, schedule: BackoffSchedule): Promise<number>;
  /** The attempt succeeded: the key's failures are forgotten. */
  clearFailures(key: string): Promise<void>;
  /**
   * The attempt ended without a verdict on the password (malformed body,
   * outage): it is uncounted, and the wait shortened to what the remaining count sets.
   */
  cancelAttempt(key: string, schedule: BackoffSchedule): Promise<void>;
  close(): Promise<void>;
}

interface FailureCount {
  count: number;
  waitUntil: number;
  forgetAt: number;
}

const seconds = (ms: number) => Math.max(1, Math.ceil(ms / 1000));

/** Counters in this process's memory: limits hold per instance. */
export class MemoryFailureCounters implements FailureCounters {
  private readonly failures = new Map<string, FailureCount>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(sweepMs = 60_000) {
    // Forgotten counters are dropped in the background, so memory stays
    // bounded by the keys that failed within FAILURE_MEMORY_MS.
    this.sweeper = setInterval(() => this.sweep(Date.now()), sweepMs);
    this.sweeper.unref();
  }

  beginAttempt(key: string, schedule: BackoffSchedule, now = Date.now()): Promise<number> {
    let entry = this.failures.get(key);
    if (entry && entry.forgetAt <= now) entry = undefined;
    if (entry && entry.waitUntil > now) return Promise.resolve(seconds(entry.waitUntil - now));
    entry ??= { count: 0, waitUntil: 0, forgetAt: 0 };
    entry.count += 1;
    entry.waitUntil = now + schedule.delayAfter(entry.count);
    entry.forgetAt = now + FAILURE_MEMORY_MS;
    this.failures.set(key, entry);
    return Promise.resolve(0);
  }

  clearFailures(key: string): Promise<void> {
    this.failures.delete(key);
    return Promise.resolve();
  }

  cancelAttempt(key: string, schedule: BackoffSchedule, now = Date.now()): Promise<void> {
    const entry = this.failures.get(key);
    if (entry && entry.count > 0) {
      entry.count -= 1;
      entry.waitUntil = Math.min(entry.waitUntil, now + schedule.delayAfter(entry.count));
    }
    return Promise.resolve();
  }

  private sweep(now: number): void {
    for (const [key, entry] of this.failures) if (entry.forgetAt <= now) this.failures.delete(key);
  }

  close(): Promise<void> {
    clearInterval(this.sweeper);
    return Promise.resolve();
  }
}

// A failure counter is one hash {n, until} (one key, so it also works on a
// cluster). Check and count in one atomic step on Redis's own clock, so every
// instance sees one count and one wait. ARGV[1] is the memory in ms, ARGV[n + 1]
// the wait after the n-th failure. Returns 0 (counted) or the ms left to wait.
const BEGIN_ATTEMPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local waitUntil = tonumber(redis.call('HGET', KEYS[1], 'until') or '0')
if waitUntil > now then return waitUntil - now end
local n = redis.call('HINCRBY', KEYS[1], 'n', 1)
redis.call('HSET', KEYS[1], 'until', now + tonumber(ARGV[n + 1] or ARGV[1]))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 0
`;

// Uncounts one attempt; the wait is cut to what the remaining count sets
// (ARGV[n + 1], or none at 0), never lengthened.
const CANCEL_ATTEMPT = `
local n = tonumber(redis.call('HGET', KEYS[1], 'n') or '0')
if n <= 0 then return 0 end
n = redis.call('HINCRBY', KEYS[1], 'n', -1)
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local delay = 0
if n > 0 then delay = tonumber(ARGV[n + 1] or ARGV[1]) end
local waitUntil = tonumber(redis.call('HGET', KEYS[1], 'until') or '0')
if now + delay < waitUntil then redis.call('HSET', KEYS[1], 'until', now + delay) end
return 0
`;

const FAILURES_PREFIX = 'lineage:rl:failures:';

/**
 * Counters in Redis, shared by every instance, so a limit holds however many
 * instances serve the traffic. While Redis is unreachable the counters fall
 * back to this instance's memory (limits then hold per instance) instead of
 * failing logins: an outage of the limiter must not become an outage of
 * authentication. The connection is the throttler storage's, which owns it.
 */
export class RedisFailureCounters implements FailureCounters {
  private readonly fallback = new MemoryFailureCounters();

  constructor(private readonly redis: Redis) {}

  async beginAttempt(key: string, schedule: BackoffSchedule): Promise<number> {
    try {
      const msLeft = (await this.redis.eval(
        BEGIN_ATTEMPT,
        1,
        `${FAILURES_PREFIX}${key}`,
        FAILURE_MEMORY_MS,
        ...schedule.delaysMs,
      )) as number;
      return msLeft > 0 ? seconds(msLeft) : 0;
    } catch {
      return this.fallback.beginAttempt(key, schedule);
    }
  }

  async clearFailures(key: string): Promise<void> {
    try {
      await this.redis.del(`${FAILURES_PREFIX}${key}`);
    } catch {
      // Redis is away: the attempt was counted in memory, where it is cleared.
    }
    await this.fallback.clearFailures(key);
  }

  async cancelAttempt(key: string, schedule: BackoffSchedule): Promise<void> {
    try {
      await this.redis.eval(
        CANCEL_ATTEMPT,
        1,
        `${FAILURES_PREFIX}${key}`,
        FAILURE_MEMORY_MS,
        ...schedule.delaysMs,
      );
    } catch {
      await this.fallback.cancelAttempt(key, schedule);
    }
  }

  close(): Promise<void> {
    return this.fallback.close();
  }
}
