import {
  applyDecorators,
  type ExecutionContext,
  Injectable,
  SetMetadata,
  UseGuards,
  UseInterceptors,
} from '@nestjs/common';
import { ApiTooManyRequestsResponse } from '@nestjs/swagger';
import { SkipThrottle, ThrottlerGuard, type ThrottlerLimitDetail } from '@nestjs/throttler';
import { ErrorResponseDto } from '../common/error-response.dto.js';
import { RateLimitedError } from '../common/errors.js';
import { FailedAttemptsInterceptor } from './failed-attempts.interceptor.js';
import {
  isFailureKind,
  RATE_LIMITS,
  type RateLimitKind,
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
  const throttled = THROTTLER_KINDS.filter((kind) => kinds.includes(kind));
  return applyDecorators(
    SetMetadata(RATE_LIMITS, kinds),
    // The throttler guard applies every registered throttler unless a route skips it.
    ...(throttled.length > 0
      ? [
          SkipThrottle(
            Object.fromEntries(THROTTLER_KINDS.map((kind) => [kind, !throttled.includes(kind)])),
          ),
          UseGuards(RateLimitGuard),
        ]
      : []),
    // Only where a failure is counted: refresh, a hot path, gets no interceptor layer.
    ...(kinds.some(isFailureKind) ? [UseInterceptors(FailedAttemptsInterceptor)] : []),
    ApiTooManyRequestsResponse({
      type: ErrorResponseDto,
      description: 'Too many attempts (`rate_limited`); retry after `Retry-After` seconds',
      headers: { 'Retry-After': { schema: { type: 'integer' } } },
    }),
  );
}
