import { FixedWindowStorage } from './fixed-window.storage.js';

describe('FixedWindowStorage', () => {
  let now: number;
  let storage: FixedWindowStorage;
  beforeEach(() => {
    now = 1_000_000;
    storage = new FixedWindowStorage(() => now);
  });
  afterEach(() => storage.close());

  const hit = (key = 'ip:a', limit = 3) => storage.increment(key, 60_000, limit, 60_000);

  it('counts hits within the window and blocks past the limit, for the block duration', async () => {
    expect(await hit()).toEqual({
      totalHits: 1,
      timeToExpire: 60,
      isBlocked: false,
      timeToBlockExpire: 0,
    });
    await hit();
    now += 10_000;
    expect((await hit()).isBlocked).toBe(false);
    expect(await hit()).toEqual({
      totalHits: 4,
      timeToExpire: 50,
      isBlocked: true,
      timeToBlockExpire: 60,
    });
    now += 30_000;
    expect(await hit()).toMatchObject({ isBlocked: true, timeToBlockExpire: 30 });
  });

  it('starts a new count when the window ends, and lifts the block when it lapses', async () => {
    for (let i = 0; i < 4; i++) await hit();
    now += 60_000;
    expect(await hit()).toEqual({
      totalHits: 1,
      timeToExpire: 60,
      isBlocked: false,
      timeToBlockExpire: 0,
    });
  });

  it('keeps a block that outlasts the window it began in', async () => {
    for (let i = 0; i < 4; i++) await storage.increment('k', 10_000, 3, 60_000);
    now += 20_000;
    expect(await storage.increment('k', 10_000, 3, 60_000)).toMatchObject({
      totalHits: 1,
      isBlocked: true,
      timeToBlockExpire: 40,
    });
  });

  it('counts keys apart', async () => {
    for (let i = 0; i < 4; i++) await hit('ip:a');
    expect((await hit('ip:b')).isBlocked).toBe(false);
  });

  it('costs the same whatever the limit: one counter per key, dropped once it ended', async () => {
    for (let i = 0; i < 10_000; i++) await hit('ip:a', 1_000_000);
    expect(await hit('ip:a', 1_000_000)).toMatchObject({ totalHits: 10_001 });
    await hit('ip:b');
    expect(storage.size).toBe(2);
    now += 60_000;
    storage.sweep();
    expect(storage.size).toBe(0);
  });
});
