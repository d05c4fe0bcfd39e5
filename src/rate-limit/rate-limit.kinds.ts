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

export function rateLimitKinds(context: ExecutionContext): RateLimitKind[] {
  return (
    (Reflect.getMetadata(RATE_LIMITS, context.getHandler()) as RateLimitKind[] | undefined) ?? []
  );
}

/** Where a request came from, as a label for its counters ("Controller.handler"). */
export function routeOf(context: ExecutionContext): string {
  return `${context.getClass().name}.${context.getHandler().name}`;
}
