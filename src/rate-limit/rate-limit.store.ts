import { Logger } from '@nestjs/common';
import { Redis } from 'ioredis';

export interface RateLimitHit {
  /** Requests counted in the current window, this one included. */
  count: number;
  /** Seconds until the window (and so the block) ends. */
  resetSeconds: number;
}

/** Fixed-window counters: one window per key, started by its first hit. */
export interface RateLimitStore {
  hit(key: string, windowMs: number): Promise<RateLimitHit>;
  close(): Promise<void>;
}

/** Counters in this process's memory: limits hold per instance. */
export class MemoryRateLimitStore implements RateLimitStore {
  private readonly windows = new Map<string, { count: number; resetAt: number }>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(sweepMs = 60_000) {
    // Expired windows are dropped in the background, so memory stays bounded
    // by the keys active within one window.
    this.sweeper = setInterval(() => this.sweep(Date.now()), sweepMs);
    this.sweeper.unref();
  }

  hit(key: string, windowMs: number, now = Date.now()): Promise<RateLimitHit> {
    let window = this.windows.get(key);
    if (!window || window.resetAt <= now) {
      window = { count: 0, resetAt: now + windowMs };
      this.windows.set(key, window);
    }
    window.count += 1;
    return Promise.resolve({
      count: window.count,
      resetSeconds: Math.ceil((window.resetAt - now) / 1000),
    });
  }

  private sweep(now: number): void {
    for (const [key, window] of this.windows) if (window.resetAt <= now) this.windows.delete(key);
  }

  close(): Promise<void> {
    clearInterval(this.sweeper);
    return Promise.resolve();
  }
}

const KEY_PREFIX = 'lineage:rl:';

// INCR and the window's expiry in one atomic step, so concurrent requests on
// several instances count exactly once each. Returns [count, ms left].
const HIT = `
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return {count, redis.call('PTTL', KEYS[1])}
`;

/**
 * Counters in Redis, shared by every instance, so a limit holds however many
 * instances serve the traffic. While Redis is unreachable the counters fall
 * back to this instance's memory (limits then hold per instance) instead of
 * failing logins: an outage of the limiter must not become an outage of
 * authentication.
 */
export class RedisRateLimitStore implements RateLimitStore {
  private readonly logger = new Logger(RedisRateLimitStore.name);
  private readonly redis: Redis;
  private readonly fallback = new MemoryRateLimitStore();
  private degraded = false;

  constructor(url: string) {
    this.redis = new Redis(url, {
      // Fail fast instead of queueing requests while Redis is away.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      connectTimeout: 1000,
      commandTimeout: 1000,
    });
    this.redis.on('error', (error: Error) => {
      if (!this.degraded)
        this.logger.warn(`Redis unavailable (${error.message}); rate limits per instance`);
      this.degraded = true;
    });
    this.redis.on('ready', () => {
      this.degraded = false;
    });
  }

  async hit(key: string, windowMs: number): Promise<RateLimitHit> {
    try {
      const [count, msLeft] = (await this.redis.eval(HIT, 1, `${KEY_PREFIX}${key}`, windowMs)) as [
        number,
        number,
      ];
      return { count, resetSeconds: Math.max(1, Math.ceil(msLeft / 1000)) };
    } catch {
      return this.fallback.hit(key, windowMs);
    }
  }

  async close(): Promise<void> {
    await this.fallback.close();
    await this.redis.quit().catch(() => this.redis.disconnect());
  }
}
