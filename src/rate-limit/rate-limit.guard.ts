import { createHash } from 'node:crypto';
import {
  applyDecorators,
  type CanActivate,
  type ExecutionContext,
  Inject,
  Injectable,
  SetMetadata,
  UseGuards,
} from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { ApiTooManyRequestsResponse } from '@nestjs/swagger';
import type { FastifyRequest } from 'fastify';
import { clientIp } from '../common/client-info.js';
import { ErrorResponseDto } from '../common/error-response.dto.js';
import { RateLimitedError } from '../common/errors.js';
import type { AppConfig, RateLimitConfig } from '../config/configuration.js';
import { MetricsService } from '../observability/metrics.service.js';
import { usernameKey } from '../users/username.js';
import type { RateLimitStore } from './rate-limit.store.js';

/**
 * The limits a route can be put under:
 * - `ip`: per client address (register, login, password change, account deletion);
 * - `refresh`: per client address, a larger budget (clients refresh often);
 * - `account`: login attempts per username whatever the address, so a
 *   rotating or spoofed X-Forwarded-For cannot reset an account's counter.
 */
export type RateLimitKind = 'ip' | 'refresh' | 'account';
const RATE_LIMITS = 'lineage:rate-limits';
export const RATE_LIMIT_STORE = Symbol('RATE_LIMIT_STORE');

const HOUR_MS = 3_600_000;

interface Limit {
  key: string;
  max: number;
  windowMs: number;
}

/**
 * Brute-force and credential-stuffing limits (OWASP ASVS 2.2.1, API Top 10
 * API4:2023). The client address is what Fastify reports, which believes
 * X-Forwarded-For only from TRUST_PROXY. Over the limit: 429 with Retry-After.
 */
@Injectable()
export class RateLimitGuard implements CanActivate {
  private readonly limits: RateLimitConfig;

  constructor(
    config: ConfigService<AppConfig, true>,
    @Inject(RATE_LIMIT_STORE) private readonly store: RateLimitStore,
    private readonly metrics: MetricsService,
  ) {
    this.limits = config.get('rateLimit', { infer: true });
  }

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const kinds =
      (Reflect.getMetadata(RATE_LIMITS, context.getHandler()) as RateLimitKind[] | undefined) ?? [];
    const request = context.switchToHttp().getRequest<FastifyRequest>();
    // Unusable forwarded addresses share one counter rather than each getting a fresh one.
    const ip = clientIp(request) ?? 'unknown';
    const route = `${context.getClass().name}.${context.getHandler().name}`;
    for (const kind of kinds) {
      const limit = this.limitFor(kind, route, ip, request);
      const hit = await this.store.hit(limit.key, limit.windowMs);
      if (hit.count > limit.max) {
        // Only login is under the per-account limit: its refusals are login outcomes.
        if (kinds.includes('account')) this.metrics.login('rate_limited');
        throw new RateLimitedError(hit.resetSeconds);
      }
    }
    return true;
  }

  private limitFor(kind: RateLimitKind, route: string, ip: string, request: FastifyRequest): Limit {
    const window = this.limits.window * 1000;
    switch (kind) {
      case 'ip':
        return { key: `ip:${route}:${ip}`, max: this.limits.perIp, windowMs: window };
      case 'refresh':
        return { key: `refresh:${ip}`, max: this.limits.refreshPerIp, windowMs: window };
      case 'account': {
        const username = (request.body as { username?: unknown } | undefined)?.username;
        // Normalized as accounts are, so case or width variants share one counter;
        // hashed, so the store never holds usernames.
        const account =
          typeof username === 'string' ? usernameKey(username.slice(0, 64)) : `ip:${ip}`;
        const digest = createHash('sha256').update(account).digest('base64url');
        return {
          key: `account:${route}:${digest}`,
          max: this.limits.perAccountHourly,
          windowMs: HOUR_MS,
        };
      }
    }
  }
}

/** Puts a route under the named limits (see RateLimitKind). */
export function RateLimited(...kinds: RateLimitKind[]) {
  return applyDecorators(
    SetMetadata(RATE_LIMITS, kinds),
    UseGuards(RateLimitGuard),
    ApiTooManyRequestsResponse({
      type: ErrorResponseDto,
      description: 'Too many attempts (`rate_limited`); retry after `Retry-After` seconds',
      headers: { 'Retry-After': { schema: { type: 'integer' } } },
    }),
  );
}
