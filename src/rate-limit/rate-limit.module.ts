import { Global, Inject, Module, type OnApplicationShutdown } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import {
  getStorageToken,
  InjectThrottlerStorage,
  ThrottlerModule,
  type ThrottlerModuleOptions,
  type ThrottlerOptions,
} from '@nestjs/throttler';
import type { FastifyRequest } from 'fastify';
import { clientIp } from '../common/client-info.js';
import type { AppConfig, RateLimitConfig } from '../config/configuration.js';
import { rateLimitAddress } from './client-address.js';
import { FailedAttemptsInterceptor } from './failed-attempts.interceptor.js';
import {
  type FailureCounters,
  MemoryFailureCounters,
  RedisFailureCounters,
} from './failure-counters.js';
import {
  bucketOf,
  FAILURE_COUNTERS,
  rateLimitRule,
  SHARED_REDIS,
  type ThrottlerKind,
} from './rate-limit.kinds.js';
import { RateLimitStorage } from './rate-limit.storage.js';

/** The `ip` and `refresh` throttlers: a budget per window, counted per client address. */
function throttlerOptions(config: RateLimitConfig): ThrottlerModuleOptions {
  const ttl = config.window * 1000;
  // The request over a budget blocks the address for a window: its Retry-After.
  const window = { ttl, blockDuration: ttl };
  const named: Record<ThrottlerKind, Omit<ThrottlerOptions, 'name'>> = {
    // Each route has its own budget: logins do not spend registrations.
    ip: {
      ...window,
      limit: config.perIp,
      generateKey: (context, address) => `ip:${bucketOf(context)}:${address}`,
    },
    refresh: {
      ...window,
      limit: config.refreshPerIp,
      generateKey: (_context, address) => `refresh:${address}`,
    },
  };
  return {
    // Only the throttlers the request's rule names count it (see RateLimited).
    throttlers: Object.entries(named).map(([name, options]) => ({
      name,
      ...options,
      skipIf: (context) => !rateLimitRule(context).kinds.includes(name as ThrottlerKind),
    })),
    // What Fastify reports, which believes X-Forwarded-For only from
    // TRUST_PROXY, counted as rateLimitAddress says (an IPv6 client by its
    // /64). Unusable forwarded addresses share one counter rather than each
    // getting a fresh one.
    getTracker: (request) => rateLimitAddress(clientIp(request as FastifyRequest) ?? 'unknown'),
    // Retry-After comes with the 429 from the exception filter; nothing else is added.
    setHeaders: false,
    storage: new RateLimitStorage(config.redisUrl),
  };
}

/**
 * The counters behind @RateLimited(): Redis when REDIS_URL is set, memory
 * otherwise, for both the throttlers and the failure counters, over one connection.
 */
@Global()
@Module({
  imports: [
    ThrottlerModule.forRootAsync({
      inject: [ConfigService],
      useFactory: (config: ConfigService<AppConfig, true>) =>
        throttlerOptions(config.get('rateLimit', { infer: true })),
    }),
  ],
  providers: [
    {
      provide: FAILURE_COUNTERS,
      inject: [getStorageToken()],
      useFactory: (storage: RateLimitStorage): FailureCounters =>
        storage.redis ? new RedisFailureCounters(storage.redis) : new MemoryFailureCounters(),
    },
    {
      provide: SHARED_REDIS,
      inject: [getStorageToken()],
      useFactory: (storage: RateLimitStorage) => storage.redis,
    },
    FailedAttemptsInterceptor,
  ],
  exports: [FAILURE_COUNTERS, SHARED_REDIS, FailedAttemptsInterceptor],
})
export class RateLimitModule implements OnApplicationShutdown {
  constructor(
    @InjectThrottlerStorage() private readonly storage: RateLimitStorage,
    @Inject(FAILURE_COUNTERS) private readonly counters: FailureCounters,
  ) {}

  async onApplicationShutdown(): Promise<void> {
    await this.counters.close();
    await this.storage.close();
  }
}
