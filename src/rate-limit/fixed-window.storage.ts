import type { ThrottlerStorage } from '@nestjs/throttler';

type ThrottlerStorageRecord = Awaited<ReturnType<ThrottlerStorage['increment']>>;

interface Window {
  hits: number;
  /** Epoch ms. */
  endsAt: number;
  blockedUntil: number;
}

// How often windows that ended are dropped, so the map holds only live keys.
const SWEEP_INTERVAL_MS = 60_000;

/**
 * The throttlers' storage in this instance's memory: a counter per key and
 * window, and a block once the count passes the limit, the same rule as the
 * Redis storage's script (@nest-lab/throttler-storage-redis), so a limit
 * behaves alike with and without REDIS_URL. @nestjs/throttler's own memory
 * storage keeps one timestamp per hit and scans them on every request, which
 * grows with the limit; this costs the same whatever the limit.
 */
export class FixedWindowStorage implements ThrottlerStorage {
  private readonly windows = new Map<string, Window>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(private readonly now: () => number = Date.now) {
    this.sweeper = setInterval(() => this.sweep(), SWEEP_INTERVAL_MS);
    this.sweeper.unref();
  }

  increment(
    key: string,
    ttl: number,
    limit: number,
    blockDuration: number,
  ): Promise<ThrottlerStorageRecord> {
    const now = this.now();
    let window = this.windows.get(key);
    if (!window || window.endsAt <= now) {
      window = { hits: 0, endsAt: now + ttl, blockedUntil: window?.blockedUntil ?? 0 };
      this.windows.set(key, window);
    }
    window.hits += 1;
    let isBlocked = window.blockedUntil > now;
    if (!isBlocked && window.hits > limit) {
      window.blockedUntil = now + blockDuration;
      isBlocked = true;
    }
    return Promise.resolve({
      totalHits: window.hits,
      timeToExpire: Math.ceil((window.endsAt - now) / 1000),
      isBlocked,
      timeToBlockExpire: isBlocked ? Math.ceil((window.blockedUntil - now) / 1000) : 0,
    });
  }

  /** Forgets windows that ended and blocks that lapsed. */
  sweep(): void {
    const now = this.now();
    for (const [key, window] of this.windows) {
      if (window.endsAt <= now && window.blockedUntil <= now) this.windows.delete(key);
    }
  }

  get size(): number {
    return this.windows.size;
  }

  close(): void {
    clearInterval(this.sweeper);
  }
}
