import type { ExecutionContext } from '@nestjs/common';

/**
 * The limits a route can be put under:
 * - `ip`: per client address (register, login, revoke, password change, account deletion);
 * - `refresh`: per client address, a larger budget (clients refresh often);
 * - `account`: consecutive failed logins per username whatever the address,
 *   so a rotating or spoofed X-Forwarded-For cannot reset an account's counter;
 * - `password`: consecutive wrong passwords on password change and account
 *   deletion per user (one counter for both), whatever the address.
 *
 * `ip` and `refresh` are @nestjs/throttler throttlers of those names
 * (RateLimitGuard); `account` and `password` count failures with a growing
 * wait (FailedAttemptsInterceptor; see FailureCounters for why they are not
 * throttlers).
 */
export type RateLimitKind = 'ip' | 'refresh' | 'account' | 'password';
export type FailureKind = Extract<RateLimitKind, 'account' | 'password'>;
export type ThrottlerKind = Exclude<RateLimitKind, FailureKind>;

/** The named throttlers, each registered with ThrottlerModule (see RateLimitModule). */
export const THROTTLER_KINDS: readonly ThrottlerKind[] = ['ip', 'refresh'];

export const isFailureKind = (kind: RateLimitKind): kind is FailureKind =>
  kind === 'account' || kind === 'password';

export const RATE_LIMITS = 'lineage:rate-limits';
export const FAILURE_COUNTERS = Symbol('FAILURE_COUNTERS');
/**
 * The instance's one Redis connection (an ioredis `Redis`), or null without
 * REDIS_URL, for other state that must be shared across instances.
 */
export const SHARED_REDIS = Symbol('SHARED_REDIS');

/** The limits one request is under. */
export interface RateLimitRule {
  kinds: readonly RateLimitKind[];
  /**
   * Whose `ip` budget it spends: by default its route's own
   * ("Controller.handler"). Two routes that do the same thing name one
   * bucket, so a client cannot double its budget by alternating them.
   */
  bucket?: string;
}

/** A route's rule, or how to pick it from the request (one URL serving several operations). */
export type RateLimitMetadata = RateLimitRule | ((request: unknown) => RateLimitRule);

const NO_LIMITS: RateLimitRule = { kinds: [] };

export function rateLimitRule(context: ExecutionContext): RateLimitRule {
  const metadata = Reflect.getMetadata(RATE_LIMITS, context.getHandler()) as
    RateLimitMetadata | undefined;
  if (metadata === undefined) return NO_LIMITS;
  return typeof metadata === 'function' ? metadata(context.switchToHttp().getRequest()) : metadata;
}

/** Whose `ip` budget a request spends (see RateLimitRule.bucket). */
export function bucketOf(context: ExecutionContext): string {
  return rateLimitRule(context).bucket ?? `${context.getClass().name}.${context.getHandler().name}`;
}
