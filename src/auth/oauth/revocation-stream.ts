import type { EndedSession } from '../sessions/session.repository.js';
import type { EndedSessionsFollower } from '../sessions/session-revocations.js';

/** The event type of an ended session on the feed. */
export const SESSION_ENDED_EVENT = 'session.ended';
/** Sent once, after the catch-up: from here on the events are live. */
export const CAUGHT_UP_EVENT = 'caught-up';
/** A comment line (WHATWG HTML §9.2.6: ignored by parsers): the feed is alive but quiet. */
export const HEARTBEAT = ': ping\n\n';

const NIL_UUID = '00000000-0000-0000-0000-000000000000';
const DONE: IteratorReturnResult<undefined> = { done: true, value: undefined };

/** Where a stream reads and follows ended sessions (the repository and SessionRevocations). */
export interface EndedSessionsSource {
  /** Ended sessions after `after` in (endedAt, id) order, at most `limit`. */
  page(after: EndedSession, limit: number): Promise<EndedSession[]>;
  /** Starts telling `follower` of ends as they are learned; returns how to stop. */
  follow(follower: EndedSessionsFollower): () => void;
}

export interface RevocationStreamOptions {
  /** Epoch ms: the catch-up sends every session that ended from then on. */
  since: number;
  /** How long after its end no access token of a session can still verify, in ms. */
  retentionMs: number;
  heartbeatMs: number;
  /** The SSE `retry` field: how long a client waits before reconnecting, in ms. */
  retryMs: number;
  pageSize: number;
  /** Live events waiting for a consumer that is not reading; past this it is dropped. */
  maxQueued: number;
  now: () => number;
  /** Drops the connection at once (a consumer that stopped reading). */
  abort: () => void;
}

/**
 * One `session.ended` event: the cursor is when the session ended (or was
 * learned to have ended, for a live event), in epoch ms; `until` is when the
 * last access token it can have verifies no more (epoch s, rounded up).
 */
export function sessionEndedEvent(sessionId: string, endedAtMs: number, retentionMs: number) {
  const data = JSON.stringify({
    sid: sessionId,
    ended_at: Math.floor(endedAtMs / 1000),
    until: Math.ceil((endedAtMs + retentionMs) / 1000),
  });
  return `id: ${endedAtMs}\nevent: ${SESSION_ENDED_EVENT}\ndata: ${data}\n\n`;
}

/**
 * One consumer's feed (text/event-stream, WHATWG HTML §9.2), pulled by the
 * response as it can take more: first the catch-up from the tables, a page
 * per pull, then `caught-up`, then what this instance learns, with a
 * heartbeat whenever it has been quiet for `heartbeatMs`.
 *
 * It follows the instance's ends from the moment it is created, before the
 * first page is read, so an end committed while the catch-up runs is either
 * in a page or queued (possibly both: duplicates are harmless, the consumer
 * keeps a set). The `caught-up` event carries the time taken just before the
 * first page as its id: every end committed before it has been sent by then.
 *
 * An async iterator rather than an async generator: a generator cannot be
 * stopped while it awaits (its `return()` waits for the next `yield`), and
 * a consumer that leaves must release its follower at once, not at the next
 * heartbeat.
 */
export class RevocationStream implements AsyncIterableIterator<string>, EndedSessionsFollower {
  private readonly queue: string[] = [];
  private unfollow: (() => void) | null;
  /** The catch-up's position; null once caught up. */
  private cursor: EndedSession | null;
  private caughtUpId = 0;
  private started = false;
  /** Ended by the server: what is queued is still sent, then the stream ends. */
  private ending = false;
  private finished = false;
  /** Resolves the pull that waits for an event or the heartbeat. */
  private wake: (() => void) | null = null;

  constructor(
    private readonly source: EndedSessionsSource,
    private readonly options: RevocationStreamOptions,
  ) {
    this.unfollow = source.follow(this);
    this.cursor = { endedAt: new Date(options.since), sessionId: NIL_UUID };
  }

  get isFinished(): boolean {
    return this.finished;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  async next(): Promise<IteratorResult<string, undefined>> {
    if (this.finished) return DONE;
    try {
      if (this.cursor) return { done: false, value: await this.catchUp(this.cursor) };
      return await this.live();
    } catch (error) {
      this.finish();
      throw error;
    }
  }

  /** The consumer left (the response was closed or destroyed). */
  return(): Promise<IteratorResult<string, undefined>> {
    this.finish();
    return Promise.resolve(DONE);
  }

  /** Ends the stream from the server's side: what is queued is sent first. */
  end(): void {
    if (this.finished || this.ending) return;
    this.ending = true;
    this.stopFollowing();
    this.wake?.();
  }

  /** Drops the connection at once, whatever is queued. */
  abort(): void {
    this.finish();
    this.options.abort();
  }

  ended(sessionId: string, learnedAt: number): void {
    if (this.finished || this.ending) return;
    if (this.queue.length >= this.options.maxQueued) {
      // It has stopped reading: rather than hold events for it without end,
      // drop it. It reconnects with the last id it received and catches up.
      this.abort();
      return;
    }
    this.queue.push(sessionEndedEvent(sessionId, learnedAt, this.options.retentionMs));
    this.wake?.();
  }

  /** This instance may now miss ends: the consumer must catch up elsewhere, or here later. */
  interrupted(): void {
    this.end();
  }

  private async catchUp(cursor: EndedSession): Promise<string> {
    let chunk = '';
    if (!this.started) {
      this.started = true;
      this.caughtUpId = this.options.now();
      chunk += `retry: ${this.options.retryMs}\n\n`;
    }
    const rows = await this.source.page(cursor, this.options.pageSize);
    for (const row of rows) {
      chunk += sessionEndedEvent(row.sessionId, row.endedAt.getTime(), this.options.retentionMs);
    }
    if (rows.length < this.options.pageSize) {
      this.cursor = null;
      chunk += `id: ${this.caughtUpId}\nevent: ${CAUGHT_UP_EVENT}\ndata: {}\n\n`;
    } else {
      this.cursor = rows[rows.length - 1];
    }
    return chunk;
  }

  private live(): Promise<IteratorResult<string, undefined>> | IteratorResult<string, undefined> {
    if (this.finished) return DONE;
    if (this.queue.length > 0) return { done: false, value: this.queue.splice(0).join('') };
    if (this.ending) {
      this.finish();
      return DONE;
    }
    return new Promise((resolve) => {
      const heartbeat = setTimeout(() => {
        this.wake = null;
        resolve({ done: false, value: HEARTBEAT });
      }, this.options.heartbeatMs);
      this.wake = () => {
        clearTimeout(heartbeat);
        this.wake = null;
        // Once the code that learned it has run on: ends learned together (a
        // logout of every session) go out in one write.
        resolve(Promise.resolve().then(() => this.live()));
      };
    });
  }

  private stopFollowing(): void {
    this.unfollow?.();
    this.unfollow = null;
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.stopFollowing();
    this.queue.length = 0;
    this.wake?.();
  }
}
