/**
 * Opt-in retries of requests the server did not process, or that are safe to
 * repeat. Off unless `retry` is given: a retry changes how long a call takes,
 * which only the application can judge.
 */
export interface RetryOptions {
  /** Attempts in all, the first one included: `3` is one try and up to two retries. */
  attempts: number;
  /** The first backoff in ms, doubled on each further retry (with jitter). Default 250. */
  baseDelay?: number;
  /** The longest backoff in ms. Default 5000. */
  maxDelay?: number;
  /**
   * The longest `Retry-After` waited for, in seconds. A server asking for more
   * gets no retry: the error is thrown at once, with its `retryAfter`, for the
   * application to show or schedule. Default 30.
   */
  maxRetryAfter?: number;
}

export interface RetryPolicy {
  attempts: number;
  baseDelay: number;
  maxDelay: number;
  maxRetryAfter: number;
}

export function retryPolicy(options: RetryOptions | undefined): RetryPolicy | undefined {
  if (options === undefined) return undefined;
  const attempts = Math.floor(options.attempts);
  if (!(attempts >= 1)) throw new RangeError('retry.attempts must be at least 1');
  return {
    attempts,
    baseDelay: options.baseDelay ?? 250,
    maxDelay: options.maxDelay ?? 5_000,
    maxRetryAfter: options.maxRetryAfter ?? 30,
  };
}

/** Why an attempt failed: an answer the server sent, or none at all. */
export type AttemptFailure =
  { kind: 'status'; status: number; retryAfter?: number } | { kind: 'network' };

/**
 * `429 Too Many Requests` (RFC 6585 §4) and `503 Service Unavailable` (RFC
 * 9110 §15.6.4) say the request was refused before it was acted on: this API
 * answers 503 only before a write starts or after rolling it back, and a
 * proxy answers it when it could not reach the API. Every method can be
 * retried after them. Other statuses are answers, not outages.
 */
export const NOT_PROCESSED_STATUSES: ReadonlySet<number> = new Set([429, 503]);

/**
 * "Equal jitter" exponential backoff: half the capped exponential delay,
 * plus a random part of the other half, so clients that failed together do
 * not retry together and none retries at once.
 */
export function backoff(policy: RetryPolicy, retry: number, random: () => number): number {
  const ceiling = Math.min(policy.maxDelay, policy.baseDelay * 2 ** (retry - 1));
  return ceiling / 2 + random() * (ceiling / 2);
}

/**
 * The delay in ms before attempt `attempt + 1`, or undefined for no retry.
 *
 * - A 429 or 503 is retried whatever the method (nothing was done), after its
 *   `Retry-After` when it has one (never earlier: the server said when it
 *   will take the request), and not at all when that is over
 *   `maxRetryAfter`; otherwise after a backoff.
 * - No answer (a network failure) is retried only for an `idempotent` call:
 *   the request may have been processed and its response lost, and repeating
 *   a non-idempotent write (a new todo, a password change) could do it twice.
 */
export function retryDelay(
  policy: RetryPolicy | undefined,
  attempt: number,
  failure: AttemptFailure,
  idempotent: boolean,
  random: () => number = Math.random,
): number | undefined {
  if (policy === undefined || attempt >= policy.attempts) return undefined;
  if (failure.kind === 'network') return idempotent ? backoff(policy, attempt, random) : undefined;
  if (!NOT_PROCESSED_STATUSES.has(failure.status)) return undefined;
  if (failure.retryAfter === undefined) return backoff(policy, attempt, random);
  if (failure.retryAfter > policy.maxRetryAfter) return undefined;
  // A little jitter on top, never below what the server asked for.
  return failure.retryAfter * 1000 + random() * Math.min(policy.baseDelay, 1000);
}
