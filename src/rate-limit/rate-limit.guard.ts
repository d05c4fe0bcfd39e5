import {
  applyDecorators,
  type ExecutionContext,
  Injectable,
  SetMetadata,
  UseGuards,
  UseInterceptors,
} from '@nestjs/common';
import { ApiTooManyRequestsResponse } from '@nestjs/swagger';
import type { FastifyRequest } from 'fastify';
import { ThrottlerGuard, type ThrottlerLimitDetail } from '@nestjs/throttler';
import { ErrorResponseDto } from '../common/error-response.dto.js';
import { RateLimitedError } from '../common/errors.js';
import { FailedAttemptsInterceptor } from './failed-attempts.interceptor.js';
import {
  isFailureKind,
  RATE_LIMITS,
  type RateLimitKind,
  type RateLimitMetadata,
  type RateLimitRule,
  THROTTLER_KINDS,
} from './rate-limit.kinds.js';

/**
 * Brute-force and credential-stuffing limits per client address (OWASP ASVS
 * 2.2.1, API Top 10 API4:2023): @nestjs/throttler's guard over the `ip` and
 * `refresh` throttlers (see RateLimitModule for their budgets, tracker and
 * keys). Over a limit it answers as every other error does: 429
 * `rate_limited` through the one exception filter, which sends Retry-After
 * (RFC 6585 §4); the throttler's own X-RateLimit-* headers are off. The
 * per-account limits are FailedAttemptsInterceptor's.
 */
@Injectable()
export class RateLimitGuard extends ThrottlerGuard {
  protected override throwThrottlingException(
    _context: ExecutionContext,
    detail: ThrottlerLimitDetail,
  ): Promise<void> {
    throw new RateLimitedError(Math.max(1, detail.timeToBlockExpire));
  }
}

/**
 * Puts a route under the named limits (see RateLimitKind). The per-address
 * limits run as a guard, so a throttled request costs no further work; the
 * per-account ones after every guard, so the caller is known. Only routes
 * with this decorator are throttled: the guard is not global.
 */
export function RateLimited(...kinds: RateLimitKind[]) {
  return rateLimitDecorators({ kinds }, kinds);
}

/**
 * RateLimited by a rule: one that names its `ip` bucket (shared by routes
 * that do the same thing), or, for one URL that serves several operations
 * (the OAuth token endpoint's grants), a function that picks each request's
 * rule, among `kinds`.
 */
export function RateLimitedBy(
  kinds: readonly RateLimitKind[],
  rule: RateLimitRule | ((request: FastifyRequest) => RateLimitRule),
) {
  return rateLimitDecorators(rule as RateLimitMetadata, kinds);
}

function rateLimitDecorators(metadata: RateLimitMetadata, kinds: readonly RateLimitKind[]) {
  return applyDecorators(
    SetMetadata(RATE_LIMITS, metadata),
    // Each throttler skips the requests whose rule does not name it (RateLimitModule).
    ...(THROTTLER_KINDS.some((kind) => kinds.includes(kind)) ? [UseGuards(RateLimitGuard)] : []),
    // Only where a failure is counted: refresh, a hot path, gets no interceptor layer.
    ...(kinds.some(isFailureKind) ? [UseInterceptors(FailedAttemptsInterceptor)] : []),
    ApiTooManyRequestsResponse({
      type: ErrorResponseDto,
      description: 'Too many attempts (`rate_limited`); retry after `Retry-After` seconds',
      headers: { 'Retry-After': { schema: { type: 'integer' } } },
    }),
  );
}
