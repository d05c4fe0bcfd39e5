import { jest } from '@jest/globals';
import type { EndedSession } from '../sessions/session.repository.js';
import type { EndedSessionsFollower } from '../sessions/session-revocations.js';
import {
  HEARTBEAT,
  RevocationStream,
  type RevocationStreamOptions,
  sessionEndedEvent,
} from './revocation-stream.js';

const RETENTION_MS = 905_000;
const NOW = 1_767_225_600_000;

const sid = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
const row = (n: number, endedAt: number): EndedSession => ({
  sessionId: sid(n),
  endedAt: new Date(endedAt),
});

/** A source over `rows` (sorted by endedAt, id), with the follower it was given. */
function sourceOf(rows: EndedSession[]) {
  const state = {
    follower: null as EndedSessionsFollower | null,
    pages: [] as { after: EndedSession; limit: number }[],
    unfollowed: 0,
  };
  const source = {
    page: (after: EndedSession, limit: number) => {
      state.pages.push({ after, limit });
      const key = (r: EndedSession) => [r.endedAt.getTime(), r.sessionId] as const;
      const [t, id] = key(after);
      const rest = rows.filter((r) => {
        const [rt, rid] = key(r);
        return rt > t || (rt === t && rid > id);
      });
      return Promise.resolve(rest.slice(0, limit));
    },
    follow: (follower: EndedSessionsFollower) => {
      state.follower = follower;
      return () => {
        state.unfollowed += 1;
        state.follower = null;
      };
    },
  };
  return { source, state };
}

function streamOf(rows: EndedSession[] | Error, overrides: Partial<RevocationStreamOptions> = {}) {
  const { source, state } = sourceOf(rows instanceof Error ? [] : rows);
  if (rows instanceof Error) source.page = () => Promise.reject(rows);
  const abort = jest.fn();
  const stream = new RevocationStream(source, {
    since: NOW - RETENTION_MS,
    retentionMs: RETENTION_MS,
    heartbeatMs: 2_000,
    retryMs: 1_000,
    pageSize: 100,
    maxQueued: 100,
    now: () => NOW,
    abort,
    ...overrides,
  });
  return { stream, state, abort };
}

async function chunk(stream: RevocationStream): Promise<string> {
  const result = await stream.next();
  if (result.done) throw new Error('the stream ended');
  return result.value;
}

const caughtUp = `id: ${NOW}\nevent: caught-up\ndata: {}\n\n`;

describe('sessionEndedEvent', () => {
  it('names the session, when it ended, and when its last token stops verifying', () => {
    expect(sessionEndedEvent(sid(1), 1_767_225_600_123, RETENTION_MS)).toBe(
      'id: 1767225600123\nevent: session.ended\n' +
        `data: {"sid":"${sid(1)}","ended_at":1767225600,"until":1767226506}\n\n`,
    );
  });
});

describe('RevocationStream', () => {
  afterEach(() => jest.useRealTimers());

  it('opens with retry, the catch-up from `since`, then caught-up', async () => {
    const rows = [row(1, NOW - 5_000), row(2, NOW - 1_000)];
    const { stream, state } = streamOf(rows);
    expect(await chunk(stream)).toBe(
      'retry: 1000\n\n' +
        sessionEndedEvent(sid(1), NOW - 5_000, RETENTION_MS) +
        sessionEndedEvent(sid(2), NOW - 1_000, RETENTION_MS) +
        caughtUp,
    );
    expect(state.pages[0].after.endedAt.getTime()).toBe(NOW - RETENTION_MS);
  });

  it('reads the catch-up a page per pull, each after the last row of the one before', async () => {
    const rows = [1, 2, 3, 4, 5].map((n) => row(n, NOW - 10_000 + (n > 2 ? 1 : 0)));
    const { stream, state } = streamOf(rows, { pageSize: 2 });
    const chunks = [await chunk(stream), await chunk(stream), await chunk(stream)];
    expect(state.pages.map((page) => page.after.sessionId)).toEqual([
      '00000000-0000-0000-0000-000000000000',
      sid(2),
      sid(4),
    ]);
    const text = chunks.join('');
    for (const n of [1, 2, 3, 4, 5]) expect(text).toContain(sid(n));
    expect(chunks[2].endsWith(caughtUp)).toBe(true);
    expect(chunks[1]).not.toContain('caught-up');
  });

  it('follows from the start: an end learned during the catch-up comes after it', async () => {
    const { stream, state } = streamOf([row(1, NOW - 1_000)]);
    state.follower!.ended(sid(9), NOW + 5);
    expect(await chunk(stream)).toContain(sid(1));
    expect(await chunk(stream)).toBe(sessionEndedEvent(sid(9), NOW + 5, RETENTION_MS));
  });

  it('passes live ends on as they come, and a heartbeat when quiet', async () => {
    jest.useFakeTimers();
    const { stream, state } = streamOf([]);
    await chunk(stream);
    const waiting = stream.next();
    state.follower!.ended(sid(3), NOW + 10);
    state.follower!.ended(sid(4), NOW + 11);
    expect(await waiting).toEqual({
      done: false,
      value:
        sessionEndedEvent(sid(3), NOW + 10, RETENTION_MS) +
        sessionEndedEvent(sid(4), NOW + 11, RETENTION_MS),
    });
    const quiet = stream.next();
    jest.advanceTimersByTime(2_000);
    expect(await quiet).toEqual({ done: false, value: HEARTBEAT });
  });

  it('ends when the instance may miss ends, after what was queued; no longer following', async () => {
    const { stream, state } = streamOf([]);
    await chunk(stream);
    state.follower!.ended(sid(5), NOW + 1);
    state.follower!.interrupted();
    expect(state.unfollowed).toBe(1);
    expect(await chunk(stream)).toContain(sid(5));
    expect(await stream.next()).toEqual({ done: true, value: undefined });
    expect(stream.isFinished).toBe(true);
  });

  it('ends a pull that waits, at once, when the server ends it', async () => {
    const { stream } = streamOf([]);
    await chunk(stream);
    const waiting = stream.next();
    stream.end();
    expect(await waiting).toEqual({ done: true, value: undefined });
  });

  it('releases its follower at once when the consumer leaves, even mid-wait', async () => {
    const { stream, state } = streamOf([]);
    await chunk(stream);
    const waiting = stream.next();
    await stream.return();
    expect(state.unfollowed).toBe(1);
    expect(stream.isFinished).toBe(true);
    expect(await waiting).toEqual({ done: true, value: undefined });
    expect(await stream.next()).toEqual({ done: true, value: undefined });
  });

  it('drops a consumer that stopped reading once too many ends wait for it', async () => {
    const { stream, state, abort } = streamOf([], { maxQueued: 3 });
    await chunk(stream);
    const follower = state.follower!;
    for (let n = 0; n < 4; n += 1) follower.ended(sid(n), NOW + n);
    expect(abort).toHaveBeenCalledTimes(1);
    expect(state.unfollowed).toBe(1);
    expect(stream.isFinished).toBe(true);
  });

  it('fails and stops following when a page cannot be read', async () => {
    const { stream, state } = streamOf(new Error('database unavailable'));
    await expect(stream.next()).rejects.toThrow('database unavailable');
    expect(state.unfollowed).toBe(1);
    expect(stream.isFinished).toBe(true);
  });
});
