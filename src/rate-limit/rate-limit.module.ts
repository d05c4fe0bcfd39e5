import { Global, Inject, Module, type OnApplicationShutdown } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import {
  getStorageToken,
  InjectThrottlerStorage,
  ThrottlerModule,
  type ThrottlerModuleOptions,
} from '@nestjs/throttler';
import type { FastifyRequest } from 'fastify';
import { clientIp } from '../common/client-info.js';
import type { AppConfig } from '../config/configuration.js';
import { rateLimitAddress } from './client-address.js';
import { FailedAttemptsInterceptor } from './failed-attempts.interceptor.js';
import {
  type FailureCounters,
  MemoryFailureCounters,
  RedisFailureCounters,
} from './failure-counters.js';
import { FAILURE_COUNTERS, routeOf, type ThrottlerKind } from './rate-limit.kinds.js';
import { RateLimitStorage } from './rate-limit.storage.js';

/** One budget per window, counted per client address. */
function throttlers(config: AppConfig['rateLimit']): ThrottlerModuleOptions {
  const ttl = config.window * 1000;
  const named: Record<
    ThrottlerKind,
    { limit: number; key: (route: string, address: string) => string }
  > = {
    // Each route has its own budget: logins do not spend registrations.
    ip: { limit: config.perIp, key: (route, address) => `ip:${route}:${address}` },
    refresh: { limit: config.refreshPerIp, key: (_route, address) => `refresh:${address}` },
  };
  return {
    throttlers: Object.entries(named).map(([name, { limit, key }]) => ({
      name,
      ttl,
      limit,
      generateKey: (context, address) => key(routeOf(context), address),
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
        throttlers(config.get('rateLimit', { infer: true })),
    }),
  ],
  providers: [
    {
      provide: FAILURE_COUNTERS,
      inject: [getStorageToken()],
      useFactory: (storage: RateLimitStorage): FailureCounters =>
        storage.redis ? new RedisFailureCounters(storage.redis) : new MemoryFailureCounters(),
    },
    FailedAttemptsInterceptor,
  ],
  exports: [FAILURE_COUNTERS, FailedAttemptsInterceptor],
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
