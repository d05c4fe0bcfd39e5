import type { RateLimitRule } from '../rate-limit/rate-limit.kinds.js';

/**
 * The limits of each auth operation, shared by the routes that perform it:
 * a password login costs the same budget on POST /auth/login as on the
 * token endpoint, so alternating the two gains an attacker nothing.
 */
export const LOGIN_LIMITS: RateLimitRule = { kinds: ['ip', 'account'], bucket: 'login' };
export const REFRESH_LIMITS: RateLimitRule = { kinds: ['refresh'] };
