import { decideRotation, type PresentedTokenState } from './token-family.rules.js';

const now = new Date('2026-01-01T12:00:00Z');
const seconds = (n: number) => new Date(now.getTime() + n * 1000);
const live: PresentedTokenState = {
  expiresAt: seconds(3600),
  usedAt: null,
  childIsCurrent: false,
  familyRevokedAt: null,
  familyExpiresAt: seconds(3600),
};

describe('decideRotation', () => {
  it('rotates an unused token of a live family', () => {
    expect(decideRotation(live, now, 10).kind).toBe('rotate');
  });

  it('re-issues the current child when its parent is presented within the grace window', () => {
    const state = { ...live, usedAt: seconds(-10), childIsCurrent: true };
    expect(decideRotation(state, now, 10).kind).toBe('reissue');
  });

  it('treats the same presentation just after the grace window as reuse', () => {
    const state = { ...live, usedAt: seconds(-11), childIsCurrent: true };
    expect(decideRotation(state, now, 10).kind).toBe('reuse');
  });

  it('treats a used token whose child was rotated again as reuse, even within grace', () => {
    const state = { ...live, usedAt: seconds(-1), childIsCurrent: false };
    expect(decideRotation(state, now, 10).kind).toBe('reuse');
  });

  it('has no grace at all when the window is 0', () => {
    const state = { ...live, usedAt: seconds(-0.001), childIsCurrent: true };
    expect(decideRotation(state, now, 0).kind).toBe('reuse');
  });

  it('refuses any token of a revoked family, before anything else', () => {
    expect(decideRotation({ ...live, familyRevokedAt: seconds(-5) }, now, 10).kind).toBe('revoked');
    const usedInRevoked = { ...live, familyRevokedAt: seconds(-5), usedAt: seconds(-60) };
    expect(decideRotation(usedInRevoked, now, 10).kind).toBe('revoked');
  });

  it('refuses an expired token or family', () => {
    expect(decideRotation({ ...live, expiresAt: now }, now, 10).kind).toBe('expired');
    expect(decideRotation({ ...live, familyExpiresAt: seconds(-1) }, now, 10).kind).toBe('expired');
  });
});
