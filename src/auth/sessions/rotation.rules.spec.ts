import { decideRotation, type SessionRotationState } from './rotation.rules.js';

const now = new Date('2026-01-01T12:00:00Z');
const seconds = (n: number) => new Date(now.getTime() + n * 1000);
// Generation 5 was issued 60 s ago; the session lives another hour.
const live: SessionRotationState = {
  generation: 5,
  rotatedAt: seconds(-60),
  expiresAt: seconds(3600),
  revokedAt: null,
};
const decide = (presented: number | 'foreign', state = live, grace = 10) =>
  decideRotation(state, presented, now, grace);

describe('decideRotation, row by row', () => {
  it('rotates the newest token (G - p = 0)', () => {
    expect(decide(5)).toEqual({ kind: 'rotate' });
  });

  it('re-issues the newest token to its parent (G - p = 1), however long after', () => {
    expect(decide(4)).toEqual({ kind: 'reissue' });
    const longAgo = { ...live, rotatedAt: seconds(-30 * 86_400) };
    expect(decide(4, longAgo)).toEqual({ kind: 'reissue' });
  });

  it('refuses without reuse a token whose child was used within the grace (G - p = 2)', () => {
    expect(decide(3, { ...live, rotatedAt: seconds(-10) })).toEqual({ kind: 'superseded' });
  });

  it('treats the same token just after the grace as reuse of a used child', () => {
    expect(decide(3, { ...live, rotatedAt: seconds(-11) })).toEqual({
      kind: 'reuse',
      reason: 'child_used',
    });
  });

  it('has no grace at all when it is 0', () => {
    expect(decide(3, { ...live, rotatedAt: seconds(-0.001) }, 0)).toEqual({
      kind: 'reuse',
      reason: 'child_used',
    });
  });

  it('treats a token three or more generations behind as reuse, even inside the grace', () => {
    const justRotated = { ...live, rotatedAt: now };
    expect(decide(2, justRotated)).toEqual({ kind: 'reuse', reason: 'older_generation' });
    expect(decide(0, justRotated)).toEqual({ kind: 'reuse', reason: 'older_generation' });
    expect(decide(-Infinity, justRotated)).toEqual({ kind: 'reuse', reason: 'older_generation' });
  });

  it('refuses a generation this session never issued, and a token issued for another', () => {
    expect(decide(6)).toEqual({ kind: 'invalid' });
    expect(decide('foreign')).toEqual({ kind: 'invalid' });
  });

  it('refuses any token of a revoked session, before anything else', () => {
    const revoked = { ...live, revokedAt: seconds(-5) };
    for (const p of [5, 4, 3, 0, 6, 'foreign'] as const) {
      expect(decide(p, revoked)).toEqual({ kind: 'revoked' });
    }
  });

  it('refuses any token of a session past its lifetime, at the instant it ends', () => {
    const ended = { ...live, expiresAt: now };
    for (const p of [5, 4, 3, 0] as const) expect(decide(p, ended)).toEqual({ kind: 'expired' });
    expect(decide(5, { ...live, expiresAt: seconds(0.001) })).toEqual({ kind: 'rotate' });
  });
});
