import { Global, Inject, Module, type OnApplicationShutdown } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import type { AppConfig } from '../config/configuration.js';
import { FailedAttemptsInterceptor } from './failed-attempts.interceptor.js';
import { RateLimitGuard } from './rate-limit.guard.js';
import { RATE_LIMIT_STORE } from './rate-limit.kinds.js';
import {
  MemoryRateLimitStore,
  type RateLimitStore,
  RedisRateLimitStore,
} from './rate-limit.store.js';

/** The counters behind @RateLimited(): Redis when REDIS_URL is set, memory otherwise. */
@Global()
@Module({
  providers: [
    {
      provide: RATE_LIMIT_STORE,
      inject: [ConfigService],
      useFactory: (config: ConfigService<AppConfig, true>): RateLimitStore => {
        const url = config.get('rateLimit', { infer: true }).redisUrl;
        return url ? new RedisRateLimitStore(url) : new MemoryRateLimitStore();
      },
    },
    RateLimitGuard,
    FailedAttemptsInterceptor,
  ],
  exports: [RATE_LIMIT_STORE, RateLimitGuard, FailedAttemptsInterceptor],
})
export class RateLimitModule implements OnApplicationShutdown {
  constructor(@Inject(RATE_LIMIT_STORE) private readonly store: RateLimitStore) {}

  async onApplicationShutdown(): Promise<void> {
    await this.store.close();
  }
}
