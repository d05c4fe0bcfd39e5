import { type KeyState, type KeyStatus, type KeyTimes, keyStatuses, verifies } from './key-set.js';

const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);
const MINUTE = 60_000;
const RETAIN_MS = 20 * MINUTE;

function at(offsetMs: number): Date {
  return new Date(T0 + offsetMs);
}

function key(
  kid: string,
  activeFromOffset: number,
  options: { createdOffset?: number; revokedOffset?: number } = {},
): KeyTimes {
  return {
    kid,
    createdAt: at(options.createdOffset ?? activeFromOffset),
    activeFrom: at(activeFromOffset),
    revokedAt: options.revokedOffset === undefined ? null : at(options.revokedOffset),
  };
}

function byKid(statuses: KeyStatus[]): Record<string, KeyStatus> {
  return Object.fromEntries(statuses.map((status) => [status.key.kid, status]));
}

function states(statuses: KeyStatus[]): Record<string, KeyState> {
  return Object.fromEntries(statuses.map((status) => [status.key.kid, status.state]));
}

describe('keyStatuses', () => {
  it('makes a single active key current, with no end', () => {
    const a = key('a', 0);
    expect(keyStatuses([a], at(5 * MINUTE), RETAIN_MS)).toEqual([
      { key: a, state: 'current', supersededAt: null, verifiesUntil: null },
    ]);
  });

  it('makes a key current from the very instant of its activeFrom', () => {
    expect(states(keyStatuses([key('a', 0)], at(0), RETAIN_MS))).toEqual({ a: 'current' });
    expect(states(keyStatuses([key('a', 0)], at(-1), RETAIN_MS))).toEqual({ a: 'pending' });
  });

  it('keeps the old key current while a newer key is pending', () => {
    const a = key('a', 0);
    const b = key('b', 10 * MINUTE, { createdOffset: 5 * MINUTE });
    const result = byKid(keyStatuses([a, b], at(7 * MINUTE), RETAIN_MS));
    expect(result.a).toEqual({ key: a, state: 'current', supersededAt: null, verifiesUntil: null });
    expect(result.b).toEqual({ key: b, state: 'pending', supersededAt: null, verifiesUntil: null });
  });

  it('retires the old key once the new one is active, until supersededAt + retainMs', () => {
    const a = key('a', 0);
    const b = key('b', 10 * MINUTE, { createdOffset: 5 * MINUTE });
    const result = byKid(keyStatuses([a, b], at(10 * MINUTE), RETAIN_MS));
    expect(result.b.state).toBe('current');
    expect(result.a.state).toBe('retiring');
    expect(result.a.supersededAt).toEqual(b.activeFrom);
    expect(result.a.verifiesUntil).toEqual(new Date(b.activeFrom.getTime() + RETAIN_MS));
  });

  it('expires the old key exactly at verifiesUntil, not a millisecond before', () => {
    const a = key('a', 0);
    const b = key('b', 10 * MINUTE);
    const end = 10 * MINUTE + RETAIN_MS;

    const before = byKid(keyStatuses([a, b], at(end - 1), RETAIN_MS)).a;
    expect(before.state).toBe('retiring');

    const atEnd = byKid(keyStatuses([a, b], at(end), RETAIN_MS)).a;
    expect(atEnd.state).toBe('expired');
    expect(atEnd.supersededAt).toEqual(b.activeFrom);
    expect(atEnd.verifiesUntil).toEqual(at(end));

    expect(byKid(keyStatuses([a, b], at(end + 60 * MINUTE), RETAIN_MS)).a.state).toBe('expired');
    expect(byKid(keyStatuses([a, b], at(end), RETAIN_MS)).b.state).toBe('current');
  });

  it('measures the retirement window with the retainMs it is given', () => {
    const a = key('a', 0);
    const b = key('b', 10 * MINUTE);
    expect(byKid(keyStatuses([a, b], at(10 * MINUTE), 0)).a.state).toBe('expired');
    const long = byKid(keyStatuses([a, b], at(10 * MINUTE + RETAIN_MS), 2 * RETAIN_MS)).a;
    expect(long.state).toBe('retiring');
    expect(long.verifiesUntil).toEqual(at(10 * MINUTE + 2 * RETAIN_MS));
  });

  it.each([
    ['pending', { activeFromOffset: 30 * MINUTE, revokedOffset: 1 * MINUTE }],
    ['current', { activeFromOffset: 0, revokedOffset: 1 * MINUTE }],
    ['revoked in the future', { activeFromOffset: 0, revokedOffset: 60 * MINUTE }],
  ])('marks a revoked key revoked whatever its times (%s)', (_label, times) => {
    const revoked = key('r', times.activeFromOffset, { revokedOffset: times.revokedOffset });
    expect(keyStatuses([revoked], at(5 * MINUTE), RETAIN_MS)).toEqual([
      { key: revoked, state: 'revoked', supersededAt: null, verifiesUntil: null },
    ]);
  });

  it('marks a superseded key revoked, not retiring or expired, once revoked', () => {
    const a = key('a', 0, { revokedOffset: 12 * MINUTE });
    const b = key('b', 10 * MINUTE);
    for (const now of [11 * MINUTE, 10 * MINUTE + RETAIN_MS + 1]) {
      const result = byKid(keyStatuses([a, b], at(now), RETAIN_MS));
      expect(result.a).toEqual({
        key: a,
        state: 'revoked',
        supersededAt: null,
        verifiesUntil: null,
      });
      expect(result.b.state).toBe('current');
    }
  });

  it('keeps a key retired when the key that took over from it is revoked: nothing is current', () => {
    const a = key('a', 0);
    const b = key('b', 10 * MINUTE, { revokedOffset: 15 * MINUTE });
    for (const now of [16 * MINUTE, 10 * MINUTE + 2 * RETAIN_MS]) {
      const statuses = keyStatuses([a, b], at(now), RETAIN_MS);
      const result = byKid(statuses);
      expect(result.a.supersededAt).toEqual(b.activeFrom);
      expect(result.a.state).toBe(now < 10 * MINUTE + RETAIN_MS ? 'retiring' : 'expired');
      expect(result.b.state).toBe('revoked');
      // The store creates a new key when it finds none current.
      expect(statuses.some((status) => status.state === 'current')).toBe(false);
    }
  });

  it('counts a key revoked at the very instant it activated as having taken over', () => {
    const a = key('a', 0);
    const b = key('b', 10 * MINUTE, { revokedOffset: 10 * MINUTE });
    expect(states(keyStatuses([a, b], at(11 * MINUTE), RETAIN_MS))).toEqual({
      a: 'retiring',
      b: 'revoked',
    });
  });

  it('lets the next key take over after a revoked current key', () => {
    const a = key('a', 0);
    const b = key('b', 10 * MINUTE, { revokedOffset: 15 * MINUTE });
    const c = key('c', 15 * MINUTE);
    const result = byKid(keyStatuses([a, b, c], at(16 * MINUTE), RETAIN_MS));
    expect(result.a.supersededAt).toEqual(b.activeFrom);
    expect(result.a.state).toBe('retiring');
    expect(result.b.state).toBe('revoked');
    expect(result.c.state).toBe('current');
  });

  it("does not end the predecessor's signing when a pending key is revoked before activation", () => {
    const a = key('a', 0);
    const b = key('b', 10 * MINUTE, { createdOffset: 2 * MINUTE, revokedOffset: 5 * MINUTE });
    for (const now of [6 * MINUTE, 10 * MINUTE, 10 * MINUTE + RETAIN_MS]) {
      const result = byKid(keyStatuses([a, b], at(now), RETAIN_MS));
      expect(result.a).toEqual({
        key: a,
        state: 'current',
        supersededAt: null,
        verifiesUntil: null,
      });
      expect(result.b.state).toBe('revoked');
    }
  });

  it('skips a revoked middle key: the older one is superseded by the next live key', () => {
    const a = key('a', 0);
    const b = key('b', 10 * MINUTE, { revokedOffset: 5 * MINUTE });
    const c = key('c', 20 * MINUTE);
    const result = byKid(keyStatuses([a, b, c], at(25 * MINUTE), RETAIN_MS));
    expect(result.a.state).toBe('retiring');
    expect(result.a.supersededAt).toEqual(c.activeFrom);
    expect(result.a.verifiesUntil).toEqual(at(20 * MINUTE + RETAIN_MS));
    expect(result.b.state).toBe('revoked');
    expect(result.c.state).toBe('current');
  });

  describe('three generations A → B → C', () => {
    const a = key('A', 0);
    const b = key('B', 30 * MINUTE, { createdOffset: 25 * MINUTE });
    const c = key('C', 60 * MINUTE, { createdOffset: 55 * MINUTE });

    it.each<[number, Record<string, KeyState>]>([
      [10 * MINUTE, { A: 'current' }],
      [26 * MINUTE, { A: 'current', B: 'pending' }],
      [30 * MINUTE, { A: 'retiring', B: 'current' }],
      [49 * MINUTE, { A: 'retiring', B: 'current' }],
      [50 * MINUTE, { A: 'expired', B: 'current' }],
      [56 * MINUTE, { A: 'expired', B: 'current', C: 'pending' }],
      [60 * MINUTE, { A: 'expired', B: 'retiring', C: 'current' }],
      [79 * MINUTE, { A: 'expired', B: 'retiring', C: 'current' }],
      [80 * MINUTE, { A: 'expired', B: 'expired', C: 'current' }],
    ])('at T0 + %p ms: %p', (now, expected) => {
      const present = [a, b, c].filter((k) => k.createdAt.getTime() <= T0 + now);
      expect(states(keyStatuses(present, at(now), RETAIN_MS))).toEqual(expected);
    });

    it('gives each superseded key the activeFrom of its own successor', () => {
      const result = byKid(keyStatuses([a, b, c], at(65 * MINUTE), RETAIN_MS));
      expect(result.A.supersededAt).toEqual(b.activeFrom);
      expect(result.A.verifiesUntil).toEqual(at(30 * MINUTE + RETAIN_MS));
      expect(result.B.supersededAt).toEqual(c.activeFrom);
      expect(result.B.verifiesUntil).toEqual(at(60 * MINUTE + RETAIN_MS));
      expect(result.C.supersededAt).toBeNull();
      expect(result.C.verifiesUntil).toBeNull();
    });

    it('returns the keys ordered by activeFrom whatever the input order', () => {
      const result = keyStatuses([c, a, b], at(65 * MINUTE), RETAIN_MS);
      expect(result.map((status) => status.key.kid)).toEqual(['A', 'B', 'C']);
    });
  });

  describe('ties on activeFrom', () => {
    function shuffled<T>(items: readonly T[], seed: number): T[] {
      // Deterministic Fisher–Yates with a small LCG, so a failure can be replayed.
      const result = [...items];
      let state = seed;
      for (let i = result.length - 1; i > 0; i--) {
        state = (state * 1_103_515_245 + 12_345) % 2_147_483_648;
        const j = state % (i + 1);
        [result[i], result[j]] = [result[j], result[i]];
      }
      return result;
    }

    function permutations<T>(items: readonly T[]): T[][] {
      if (items.length <= 1) return [[...items]];
      return items.flatMap((item, index) =>
        permutations([...items.slice(0, index), ...items.slice(index + 1)]).map((rest) => [
          item,
          ...rest,
        ]),
      );
    }

    it('breaks a tie on activeFrom by createdAt: the later-created key is current', () => {
      const early = key('z-early', 10 * MINUTE, { createdOffset: 1 * MINUTE });
      const late = key('a-late', 10 * MINUTE, { createdOffset: 2 * MINUTE });
      for (const input of permutations([early, late])) {
        const result = byKid(keyStatuses(input, at(15 * MINUTE), RETAIN_MS));
        expect(result['a-late'].state).toBe('current');
        expect(result['z-early'].state).toBe('retiring');
        expect(result['z-early'].supersededAt).toEqual(at(10 * MINUTE));
      }
    });

    it('breaks a tie on activeFrom and createdAt by kid: the greatest kid is current', () => {
      const keys = ['k2', 'k0', 'k3', 'k1'].map((kid) => key(kid, 10 * MINUTE));
      for (const input of permutations(keys)) {
        const result = keyStatuses(input, at(15 * MINUTE), RETAIN_MS);
        expect(result.map((status) => [status.key.kid, status.state])).toEqual([
          ['k0', 'retiring'],
          ['k1', 'retiring'],
          ['k2', 'retiring'],
          ['k3', 'current'],
        ]);
      }
    });

    it('gives the same answer for any shuffle of a mixed key set', () => {
      const keys = [
        key('a', 0),
        key('b', 10 * MINUTE, { createdOffset: 3 * MINUTE }),
        key('c', 10 * MINUTE, { createdOffset: 3 * MINUTE }),
        key('d', 10 * MINUTE, { createdOffset: 4 * MINUTE, revokedOffset: 5 * MINUTE }),
        key('e', 10 * MINUTE, { createdOffset: 2 * MINUTE }),
        key('f', 40 * MINUTE, { createdOffset: 12 * MINUTE }),
        key('g', 40 * MINUTE, { createdOffset: 12 * MINUTE }),
      ];
      const now = at(20 * MINUTE);
      const summary = (input: KeyTimes[]) =>
        keyStatuses(input, now, RETAIN_MS).map((status) => ({
          kid: status.key.kid,
          state: status.state,
          supersededAt: status.supersededAt?.getTime() ?? null,
          verifiesUntil: status.verifiesUntil?.getTime() ?? null,
        }));
      const expected = summary(keys);
      expect(expected.find((status) => status.state === 'current')?.kid).toBe('c');
      expect(expected.map((status) => status.kid)).toEqual(['a', 'e', 'b', 'c', 'd', 'f', 'g']);
      for (let seed = 1; seed <= 50; seed++) {
        expect(summary(shuffled(keys, seed))).toEqual(expected);
      }
    });
  });

  it('does not mutate the input array or the keys in it', () => {
    const c = key('c', 20 * MINUTE);
    const a = key('a', 0);
    const b = key('b', 10 * MINUTE, { revokedOffset: 15 * MINUTE });
    const input = [c, a, b];
    const snapshot = structuredClone(input);
    keyStatuses(input, at(25 * MINUTE), RETAIN_MS);
    expect(input).toEqual(snapshot);
    expect(input[0]).toBe(c);
    expect(input[1]).toBe(a);
    expect(input[2]).toBe(b);
  });

  it('returns the very key objects it was given', () => {
    const a = { ...key('a', 0), extra: 'kept' };
    const [status] = keyStatuses([a], at(0), RETAIN_MS);
    expect(status.key).toBe(a);
    expect(status.key.extra).toBe('kept');
  });

  it('returns nothing for no keys', () => {
    expect(keyStatuses([], at(0), RETAIN_MS)).toEqual([]);
  });
});

describe('verifies', () => {
  it.each<[KeyState, boolean]>([
    ['pending', true],
    ['current', true],
    ['retiring', true],
    ['expired', false],
    ['revoked', false],
  ])('%p → %p', (state, expected) => {
    expect(verifies(state)).toBe(expected);
  });
});
