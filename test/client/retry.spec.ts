import { parseRetryAfter } from '../../client/src/errors.js';
import { backoff, retryDelay, retryPolicy } from '../../client/src/retry.js';

describe('retry policy', () => {
  const policy = retryPolicy({ attempts: 3, baseDelay: 100, maxDelay: 1000, maxRetryAfter: 10 });
  const half = () => 0.5;

  it('is off without options, and refuses fewer than one attempt', () => {
    expect(retryPolicy(undefined)).toBeUndefined();
    expect(retryDelay(undefined, 1, { kind: 'status', status: 503 }, true)).toBeUndefined();
    expect(() => retryPolicy({ attempts: 0 })).toThrow(RangeError);
  });

  it('retries 429 and 503 for any method, waiting at least Retry-After', () => {
    expect(retryDelay(policy, 1, { kind: 'status', status: 429, retryAfter: 2 }, false, half)).toBe(
      2050,
    );
    expect(
      retryDelay(policy, 1, { kind: 'status', status: 503, retryAfter: 0 }, false, () => 0),
    ).toBe(0);
    // No Retry-After: the backoff.
    expect(retryDelay(policy, 2, { kind: 'status', status: 503 }, false, half)).toBe(150);
  });

  it('does not wait for a Retry-After over the cap, nor past the last attempt', () => {
    expect(
      retryDelay(policy, 1, { kind: 'status', status: 429, retryAfter: 11 }, true),
    ).toBeUndefined();
    expect(retryDelay(policy, 3, { kind: 'status', status: 503 }, true)).toBeUndefined();
  });

  it('never retries other statuses', () => {
    for (const status of [400, 401, 404, 409, 500, 502, 504]) {
      expect(retryDelay(policy, 1, { kind: 'status', status }, true)).toBeUndefined();
    }
  });

  it('retries a network failure only for an idempotent call', () => {
    expect(retryDelay(policy, 1, { kind: 'network' }, true, half)).toBe(75);
    expect(retryDelay(policy, 1, { kind: 'network' }, false, half)).toBeUndefined();
  });

  it('backs off exponentially with equal jitter, capped', () => {
    const p = retryPolicy({ attempts: 10, baseDelay: 100, maxDelay: 1000 })!;
    expect([1, 2, 3, 4, 5].map((n) => backoff(p, n, () => 0))).toEqual([50, 100, 200, 400, 500]);
    expect([1, 2, 3, 4, 5].map((n) => backoff(p, n, () => 1))).toEqual([100, 200, 400, 800, 1000]);
  });
});

describe('parseRetryAfter (RFC 9110 §10.2.3)', () => {
  const now = Date.parse('2026-01-01T00:00:00Z');

  it('reads delay-seconds and HTTP dates', () => {
    expect(parseRetryAfter('7', now)).toBe(7);
    expect(parseRetryAfter(' 0 ', now)).toBe(0);
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:30 GMT', now)).toBe(30);
    expect(parseRetryAfter('Wed, 31 Dec 2025 23:00:00 GMT', now)).toBe(0);
  });

  it('ignores an absent or unreadable value', () => {
    expect(parseRetryAfter(null, now)).toBeUndefined();
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter('-1', now)).toBeUndefined();
  });
});
