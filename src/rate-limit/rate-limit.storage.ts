import { ThrottlerStorageRedisService } from '@nest-lab/throttler-storage-redis';
import { Logger } from '@nestjs/common';
import type { ThrottlerStorage } from '@nestjs/throttler';
import { Redis } from 'ioredis';
import { FixedWindowStorage } from './fixed-window.storage.js';

type ThrottlerStorageRecord = Awaited<ReturnType<ThrottlerStorage['increment']>>;

const KEY_PREFIX = 'lineage:rl:';

/**
 * The storage behind the `ip` and `refresh` throttlers: @nest-lab's Redis
 * storage when REDIS_URL is set, so a limit holds however many instances serve
 * the traffic; this instance's memory (FixedWindowStorage) otherwise.
 *
 * While Redis is unreachable the throttlers count in this instance's memory
 * (limits then hold per instance) instead of failing the request: an outage
 * of the limiter must not become an outage of authentication. Its connection
 * fails fast rather than queueing commands until Redis returns, and is shared
 * with the failure counters (`redis`), so an instance holds one connection.
 */
export class RateLimitStorage implements ThrottlerStorage {
  private readonly logger = new Logger(RateLimitStorage.name);
  private readonly memory = new FixedWindowStorage();
  private readonly shared: ThrottlerStorageRedisService | null = null;
  readonly redis: Redis | null = null;
  private degraded = false;

  constructor(url: string | null) {
    if (!url) return;
    this.redis = new Redis(url, {
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
    this.shared = new ThrottlerStorageRedisService(this.redis);
  }

  async increment(
    key: string,
    ttl: number,
    limit: number,
    blockDuration: number,
    throttlerName: string,
  ): Promise<ThrottlerStorageRecord> {
    if (this.shared) {
      try {
        return await this.shared.increment(
          `${KEY_PREFIX}${key}`,
          ttl,
          limit,
          blockDuration,
          throttlerName,
        );
      } catch {
        // Counted below, in memory.
      }
    }
    return this.memory.increment(key, ttl, limit, blockDuration);
  }

  async close(): Promise<void> {
    this.memory.close();
    await this.redis?.quit().catch(() => this.redis?.disconnect());
  }
}
