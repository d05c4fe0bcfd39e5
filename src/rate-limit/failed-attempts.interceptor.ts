import { createHash } from 'node:crypto';
import {
  type CallHandler,
  type ExecutionContext,
  Inject,
  Injectable,
  type NestInterceptor,
} from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import type { FastifyRequest } from 'fastify';
import { catchError, mergeMap, type Observable } from 'rxjs';
import { clientIp } from '../common/client-info.js';
import { AppError, ErrorCode, RateLimitedError } from '../common/errors.js';
import type { AppConfig } from '../config/configuration.js';
import { MetricsService } from '../observability/metrics.service.js';
import { usernameKey } from '../common/username.js';
import { BackoffSchedule } from './backoff.js';
import { rateLimitAddress } from './client-address.js';
import type { FailureCounters } from './failure-counters.js';
import {
  FAILURE_COUNTERS,
  type FailureKind,
  isFailureKind,
  rateLimitRule,
} from './rate-limit.kinds.js';

/** The answer that means "wrong password", per kind: only it stays counted. */
const FAILURE_CODES: Record<FailureKind, ErrorCode> = {
  account: ErrorCode.InvalidCredentials,
  password: ErrorCode.InvalidPassword,
};

/**
 * Per-account throttling of password checks (OWASP ASVS V2.2.1, NIST SP
 * 800-63B §5.2.2): consecutive failures on one account, from any address,
 * make it wait longer and longer (see BackoffSchedule); a success clears them,
 * so the owner's own logins never count against them.
 *
 * An interceptor rather than a guard because it must see the outcome. While
 * an account is waiting every attempt is refused with 429 and Retry-After
 * before any password is checked, the right one too: otherwise the answer
 * during the wait would tell a guesser when it had found the password.
 */
@Injectable()
export class FailedAttemptsInterceptor implements NestInterceptor {
  private readonly schedule: BackoffSchedule;

  constructor(
    config: ConfigService<AppConfig, true>,
    @Inject(FAILURE_COUNTERS) private readonly store: FailureCounters,
    private readonly metrics: MetricsService,
  ) {
    this.schedule = new BackoffSchedule(config.get('rateLimit', { infer: true }).account);
  }

  async intercept(context: ExecutionContext, next: CallHandler): Promise<Observable<unknown>> {
    const kind = rateLimitRule(context).kinds.find(isFailureKind);
    if (!kind) return next.handle();
    const key = failureKey(kind, context.switchToHttp().getRequest<FastifyRequest>());
    const wait = await this.store.beginAttempt(key, this.schedule);
    if (wait > 0) {
      // Only login is under `account`: its refusals are login outcomes.
      if (kind === 'account') this.metrics.login('rate_limited');
      throw new RateLimitedError(wait);
    }
    return next.handle().pipe(
      mergeMap(async (value: unknown) => {
        await this.store.clearFailures(key);
        return value;
      }),
      catchError(async (error: unknown) => {
        const wrongPassword = error instanceof AppError && error.code === FAILURE_CODES[kind];
        if (!wrongPassword) await this.store.cancelAttempt(key, this.schedule);
        throw error;
      }),
    );
  }
}

function failureKey(kind: FailureKind, request: FastifyRequest): string {
  const fallback = `ip:${rateLimitAddress(clientIp(request) ?? 'unknown')}`;
  if (kind === 'password') {
    // The authenticated caller (the global access guard ran first): the
    // counter follows the account, not the token or the address.
    const userId = (request as FastifyRequest & { user?: { userId?: unknown } }).user?.userId;
    return `password:${typeof userId === 'string' ? userId : fallback}`;
  }
  const username = (request.body as { username?: unknown } | undefined)?.username;
  // Normalized as accounts are, so case or width variants share one counter;
  // hashed, so the store never holds usernames. An unknown username is
  // counted exactly like an existing one, so the limiter reveals nothing.
  const account = typeof username === 'string' ? usernameKey(username.slice(0, 64)) : fallback;
  return `login:${createHash('sha256').update(account).digest('base64url')}`;
}
