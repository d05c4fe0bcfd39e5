import { MAX_VERIFIED_TOKENS, VerifiedAccessTokens } from './verified-access-tokens.js';

const principal = { userId: 'user-1', sessionId: 'session-1' };
/** exp (seconds) and the last millisecond at which the token is still valid. */
const exp = 1_800_000_000;
const lastValidMs = exp * 1000 - 1;

describe('VerifiedAccessTokens', () => {
  it('answers only for the exact token it was given', () => {
    const cache = new VerifiedAccessTokens();
    cache.remember('a.b.c', principal, exp);
    expect(cache.lookup('a.b.c', lastValidMs)).toEqual(principal);
    expect(cache.lookup('a.b.C', lastValidMs)).toBeUndefined();
    expect(cache.lookup('a.b.c ', lastValidMs)).toBeUndefined();
  });

  it('stops answering at exp, as jsonwebtoken does (expired once floor(now) >= exp), and drops the entry', () => {
    const cache = new VerifiedAccessTokens();
    cache.remember('t', principal, exp);
    expect(cache.lookup('t', lastValidMs)).toEqual(principal);
    expect(cache.lookup('t', exp * 1000)).toBeUndefined();
    expect(cache.size).toBe(0);
    // Once dropped it stays dropped, whatever the clock says next.
    expect(cache.lookup('t', lastValidMs)).toBeUndefined();
  });

  it('hands out a frozen copy: no caller can change what the next request sees', () => {
    const cache = new VerifiedAccessTokens();
    const given = { ...principal };
    cache.remember('t', given, exp);
    given.userId = 'someone-else';
    const found = cache.lookup('t', lastValidMs)!;
    expect(found.userId).toBe('user-1');
    expect(Object.isFrozen(found)).toBe(true);
  });

  it('forgets a token on request', () => {
    const cache = new VerifiedAccessTokens();
    cache.remember('t', principal, exp);
    cache.forget('t');
    expect(cache.lookup('t', lastValidMs)).toBeUndefined();
  });

  it('is bounded: when full, the oldest token goes first and the newest stays', () => {
    const cache = new VerifiedAccessTokens();
    for (let i = 0; i < MAX_VERIFIED_TOKENS; i += 1) cache.remember(`t${i}`, principal, exp);
    expect(cache.size).toBe(MAX_VERIFIED_TOKENS);
    cache.remember('newest', principal, exp);
    expect(cache.size).toBe(MAX_VERIFIED_TOKENS);
    expect(cache.lookup('t0', lastValidMs)).toBeUndefined();
    expect(cache.lookup('t1', lastValidMs)).toEqual(principal);
    expect(cache.lookup('newest', lastValidMs)).toEqual(principal);
    // Remembering a token already held evicts nothing.
    cache.remember('newest', principal, exp);
    expect(cache.lookup('t1', lastValidMs)).toEqual(principal);
  });
});
