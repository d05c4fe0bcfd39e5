import type { Redis } from 'ioredis';
import { DpopReplayCache } from './dpop-replay-cache.js';

describe('DpopReplayCache', () => {
  it('accepts a jti once per key while it is remembered, then forgets it', async () => {
    const cache = new DpopReplayCache(null);
    expect(await cache.claim('key-a', 'jti-1', 1000, 0)).toBe(true);
    expect(await cache.claim('key-a', 'jti-1', 1000, 999)).toBe(false);
    // Another key's identical jti is another proof.
    expect(await cache.claim('key-b', 'jti-1', 1000, 999)).toBe(true);
    // Past its time the entry is swept; the proof's own iat check refuses it by then.
    expect(await cache.claim('key-a', 'jti-1', 1000, 1000)).toBe(true);
    expect(cache.size).toBe(2);
  });

  it('keeps memory to the live entries, and refuses rather than forgets when full', async () => {
    const cache = new DpopReplayCache(null, 2);
    expect(await cache.claim('k', 'a', 100, 0)).toBe(true);
    expect(await cache.claim('k', 'b', 100, 10)).toBe(true);
    expect(await cache.claim('k', 'c', 100, 20)).toBe(false);
    expect(await cache.claim('k', 'c', 100, 100)).toBe(true);
    expect(cache.size).toBe(2);
  });

  it('asks Redis when it has one (SET NX with the lifetime)', async () => {
    const seen = new Set<string>();
    const calls: unknown[][] = [];
    const redis = {
      set: (...args: unknown[]) => {
        calls.push(args);
        const key = args[0] as string;
        if (seen.has(key)) return Promise.resolve(null);
        seen.add(key);
        return Promise.resolve('OK');
      },
    } as unknown as Redis;
    const cache = new DpopReplayCache(redis);
    expect(await cache.claim('k', 'j', 65_000)).toBe(true);
    expect(await cache.claim('k', 'j', 65_000)).toBe(false);
    expect(calls[0]).toEqual([
      expect.stringMatching(/^lineage:dpop:jti:/),
      '1',
      'PX',
      65_000,
      'NX',
    ]);
    expect(cache.size).toBe(0);
  });

  it('falls back to its own memory while Redis fails, still refusing replays to itself', async () => {
    const redis = {
      set: () => Promise.reject(new Error('Connection is closed.')),
    } as unknown as Redis;
    const cache = new DpopReplayCache(redis);
    expect(await cache.claim('k', 'j', 1000, 0)).toBe(true);
    expect(await cache.claim('k', 'j', 1000, 1)).toBe(false);
  });
});
