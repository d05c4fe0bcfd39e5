import { createHash } from 'node:crypto';
import { Logger } from '@nestjs/common';
import type { Redis } from 'ioredis';

/**
 * The `jti` values of accepted DPoP proofs (RFC 9449 §11.1), each kept as
 * long as a proof carrying it could still pass the `iat` check: a replay of
 * a proof is refused for as long as the proof itself is acceptable, and no
 * longer remembered after. Keyed by key thumbprint and jti, so one client's
 * identifiers cannot collide with another's.
 *
 * With REDIS_URL the cache is shared, so a proof accepted by one instance is
 * refused by every other. While Redis is unreachable each instance falls
 * back to its own memory, as the rate limits do: a replay to the same
 * instance is still refused, one to another instance within the proof's
 * lifetime is not. Refusing every proof instead would make a cache outage an
 * outage of every DPoP-bound session.
 */
export class DpopReplayCache {
  private readonly logger = new Logger(DpopReplayCache.name);
  private readonly memory = new Map<string, number>();
  private degraded = false;

  constructor(
    private readonly redis: Redis | null,
    /** Bound on the memory fallback: past it, new proofs are refused (see claim). */
    private readonly maxEntries = MAX_MEMORY_ENTRIES,
  ) {}

  /**
   * Records `jti` for `ttlMs`; false when it was already recorded (a
   * replay), or when the memory cache is full of live entries: refusing a
   * proof then is safe (the client signs another), forgetting one is not.
   */
  async claim(jkt: string, jti: string, ttlMs: number, nowMs = Date.now()): Promise<boolean> {
    const key = createHash('sha256').update(jkt).update('\0').update(jti).digest('base64url');
    if (this.redis) {
      try {
        const set = await this.redis.set(`${KEY_PREFIX}${key}`, '1', 'PX', ttlMs, 'NX');
        if (this.degraded) this.logger.log('Redis is back: DPoP replay cache shared again');
        this.degraded = false;
        return set === 'OK';
      } catch (error) {
        if (!this.degraded) {
          this.logger.warn(
            `Redis unavailable (${(error as Error).message}); DPoP replays checked per instance`,
          );
        }
        this.degraded = true;
      }
    }
    return this.claimInMemory(key, nowMs + ttlMs, nowMs);
  }

  private claimInMemory(key: string, expiresAt: number, nowMs: number): boolean {
    this.sweep(nowMs);
    if (this.memory.has(key)) return false;
    if (this.memory.size >= this.maxEntries) return false;
    this.memory.set(key, expiresAt);
    return true;
  }

  /**
   * Drops expired entries from the oldest on. Every entry lives equally
   * long, so insertion order is expiry order: the sweep stops at the first
   * live one, and costs nothing per claim but the entries it drops.
   */
  private sweep(nowMs: number): void {
    for (const [key, expiresAt] of this.memory) {
      if (expiresAt > nowMs) break;
      this.memory.delete(key);
    }
  }

  get size(): number {
    return this.memory.size;
  }
}

const KEY_PREFIX = 'lineage:dpop:jti:';
/** Proofs accepted within one proof lifetime on one instance while it counts alone. */
const MAX_MEMORY_ENTRIES = 100_000;
