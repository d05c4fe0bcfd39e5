import {
  applyDecorators,
  type CanActivate,
  type ExecutionContext,
  Inject,
  Injectable,
  SetMetadata,
  UseGuards,
  UseInterceptors,
} from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { ApiTooManyRequestsResponse } from '@nestjs/swagger';
import type { FastifyRequest } from 'fastify';
import { clientIp } from '../common/client-info.js';
import { ErrorResponseDto } from '../common/error-response.dto.js';
import { RateLimitedError } from '../common/errors.js';
import type { AppConfig, RateLimitConfig } from '../config/configuration.js';
import { rateLimitAddress } from './client-address.js';
import { FailedAttemptsInterceptor } from './failed-attempts.interceptor.js';
import {
  isFailureKind,
  RATE_LIMIT_STORE,
  RATE_LIMITS,
  type RateLimitKind,
  rateLimitKinds,
  routeOf,
} from './rate-limit.kinds.js';
import type { RateLimitStore } from './rate-limit.store.js';

interface Limit {
  key: string;
  max: number;
  windowMs: number;
}

/**
 * Brute-force and credential-stuffing limits per client address (OWASP ASVS
 * 2.2.1, API Top 10 API4:2023). The client address is what Fastify reports,
 * which believes X-Forwarded-For only from TRUST_PROXY, counted as
 * rateLimitAddress says (an IPv6 client by its /64). Over the limit: 429 with
 * Retry-After. The per-account limits are FailedAttemptsInterceptor's.
 */
@Injectable()
export class RateLimitGuard implements CanActivate {
  private readonly limits: RateLimitConfig;

  constructor(
    config: ConfigService<AppConfig, true>,
    @Inject(RATE_LIMIT_STORE) private readonly store: RateLimitStore,
  ) {
    this.limits = config.get('rateLimit', { infer: true });
  }

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const request = context.switchToHttp().getRequest<FastifyRequest>();
    // Unusable forwarded addresses share one counter rather than each getting a fresh one.
    const address = rateLimitAddress(clientIp(request) ?? 'unknown');
    const route = routeOf(context);
    for (const kind of rateLimitKinds(context)) {
      const limit = this.limitFor(kind, route, address);
      if (!limit) continue;
      const hit = await this.store.hit(limit.key, limit.windowMs);
      if (hit.count > limit.max) throw new RateLimitedError(hit.resetSeconds);
    }
    return true;
  }

  private limitFor(kind: RateLimitKind, route: string, address: string): Limit | undefined {
    const window = this.limits.window * 1000;
    switch (kind) {
      case 'ip':
        return { key: `ip:${route}:${address}`, max: this.limits.perIp, windowMs: window };
      case 'refresh':
        return { key: `refresh:${address}`, max: this.limits.refreshPerIp, windowMs: window };
      case 'account':
      case 'password':
        return undefined;
    }
  }
}

/**
 * Puts a route under the named limits (see RateLimitKind). The per-address
 * limits run as a guard, so a throttled request costs no further work; the
 * per-account ones after every guard, so the caller is known.
 */
export function RateLimited(...kinds: RateLimitKind[]) {
  return applyDecorators(
    SetMetadata(RATE_LIMITS, kinds),
    UseGuards(RateLimitGuard),
    // Only where a failure is counted: refresh, a hot path, gets no interceptor layer.
    ...(kinds.some(isFailureKind) ? [UseInterceptors(FailedAttemptsInterceptor)] : []),
    ApiTooManyRequestsResponse({
      type: ErrorResponseDto,
      description: 'Too many attempts (`rate_limited`); retry after `Retry-After` seconds',
      headers: { 'Retry-After': { schema: { type: 'integer' } } },
    }),
  );
}
