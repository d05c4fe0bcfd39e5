import type { ServerResponse } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { HttpStatus, Injectable, type OnModuleInit } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { HttpAdapterHost } from '@nestjs/core';
import type { FastifyInstance } from 'fastify';
import { AppError, ErrorCode } from '../../common/errors.js';
import type { AppConfig } from '../../config/configuration.js';
import { MetricsService } from '../../observability/metrics.service.js';
import { SessionRepository } from '../sessions/session.repository.js';
import { SessionRevocations } from '../sessions/session-revocations.js';
import { RevocationStream } from './revocation-stream.js';

/**
 * How far before the consumer's cursor the catch-up starts. The cursor is a
 * time, and ends do not commit in the order of their times: `revoked_at` is
 * taken before the transaction commits (its statements are bounded by
 * statement_timeout, 10 s each), instances' clocks differ a little, and the
 * live event's time is when this instance learned of the end. A minute covers
 * all of it many times over; what it costs is a minute of ends sent again.
 */
export const CURSOR_OVERLAP_MS = 60_000;
/** A quiet feed says it is alive this often (a comment line). */
export const HEARTBEAT_MS = 2_000;
/** The SSE `retry` field: reconnect after a second. */
const RETRY_MS = 1_000;
const PAGE_SIZE = 1_000;
/** About 1.5 MB of events waiting for one consumer before it is dropped. */
const MAX_QUEUED = 10_000;
/** At shutdown, a stream whose consumer does not take its end is cut after this. */
const END_GRACE_MS = 1_000;
/** Retry-After when this instance cannot serve the feed (its own view is resyncing). */
const UNAVAILABLE_RETRY_AFTER = 1;

/**
 * The revocation feed (GET /oauth/revocations): how a service that verifies
 * access tokens by itself, from the JWKS, learns within a second that a
 * session ended, where it would otherwise accept the session's tokens until
 * they expire.
 *
 * Each stream catches up from the tables (sessions.revoked_at, and the
 * deleted_sessions tombstones), then passes on what this instance's
 * SessionRevocations learns: its own ends as they commit, and every other
 * instance's through LISTEN/NOTIFY. When that view stops being ready (its
 * LISTEN connection lost), ends could be missed, so every stream is ended:
 * its consumer reconnects, here or to another instance, and catches up. New
 * streams are refused (503) until the view is back.
 *
 * Nothing older than ACCESS_TOKEN_TTL plus clock skew is ever sent: no access
 * token of such a session can still verify, which is also why the catch-up
 * never reads further back, whatever the cursor.
 *
 * An event names the session, not its user: a consumer needs only the `sid`
 * claim of the tokens it holds, and a random session id tells it nothing of
 * users it never saw, where a `sub` would tell every resource server when
 * every user logs out (data minimisation). The NOTIFY payload
 * and the deleted sessions' tombstones carry no more either.
 */
@Injectable()
export class RevocationFeed implements OnModuleInit {
  /** Each open stream, and its response settling (finished, or its connection gone). */
  private readonly streams = new Map<
    RevocationStream,
    { response: ServerResponse; settled: Promise<void> }
  >();
  private closing = false;

  constructor(
    config: ConfigService<AppConfig, true>,
    private readonly revocations: SessionRevocations,
    private readonly sessions: SessionRepository,
    private readonly metrics: MetricsService,
    private readonly adapterHost: HttpAdapterHost,
  ) {
    const servers = config.get('oauth', { infer: true }).resourceServers;
    metrics.revocationFeedConsumersKnown(servers.map(({ id }) => id));
  }

  /**
   * Streams never end by themselves, and closing the HTTP server waits for
   * every connection that is not idle: end them first, and wait until their
   * responses are finished, for the server closes only the connections that
   * are idle when it starts closing. Fastify's preClose runs on every path
   * that closes the server (main.ts's drain, Nest's app.close()), before that.
   */
  onModuleInit(): void {
    this.adapterHost.httpAdapter
      .getInstance<FastifyInstance>()
      .addHook('preClose', () => this.close());
  }

  get openStreams(): number {
    return this.streams.size;
  }

  /**
   * A stream for `resourceServer` to be sent on `response`, caught up from
   * `cursor` (an event id it received, epoch ms) less CURSOR_OVERLAP_MS, or
   * over the whole retention without one.
   */
  open(resourceServer: string, cursor: number | null, response: ServerResponse): RevocationStream {
    if (this.closing || !this.revocations.isReady) {
      throw new AppError(
        HttpStatus.SERVICE_UNAVAILABLE,
        ErrorCode.ServiceUnavailable,
        'The revocation feed is resyncing on this instance; retry shortly',
        undefined,
        UNAVAILABLE_RETRY_AFTER,
      );
    }
    const now = Date.now();
    const retentionMs = this.revocations.retentionMs;
    const oldest = now - retentionMs;
    const since =
      cursor === null ? oldest : Math.max(oldest, Math.min(cursor, now) - CURSOR_OVERLAP_MS);
    const stream = new RevocationStream(
      {
        page: (after, limit) => this.sessions.listEndedAfter(after, limit),
        follow: (follower) => this.revocations.follow(follower),
      },
      {
        since,
        retentionMs,
        heartbeatMs: HEARTBEAT_MS,
        retryMs: RETRY_MS,
        pageSize: PAGE_SIZE,
        maxQueued: MAX_QUEUED,
        now: Date.now,
        abort: () => response.destroy(),
      },
    );
    // Over once its response is: sent to the end, refused (an error answered
    // before the first byte), or its connection gone. The stream is then
    // released too, whatever path got there.
    const settled = new Promise<void>((resolve) => {
      response.once('finish', resolve);
      response.once('close', resolve);
    }).then(() => {
      void stream.return();
      this.streams.delete(stream);
      this.metrics.revocationFeedConsumer(resourceServer, -1);
    });
    this.streams.set(stream, { response, settled });
    this.metrics.revocationFeedConsumer(resourceServer, 1);
    return stream;
  }

  /**
   * Ends every stream and refuses new ones; resolves once their responses
   * are finished. A consumer that does not take its end (it stopped reading)
   * is cut after END_GRACE_MS.
   */
  private async close(): Promise<void> {
    this.closing = true;
    const ending = [...this.streams];
    for (const [stream] of ending) stream.end();
    const all = Promise.all(ending.map(([, { settled }]) => settled));
    const inTime = await Promise.race([all.then(() => true), sleep(END_GRACE_MS, false)]);
    if (inTime) return;
    for (const [stream, { response }] of ending) if (!response.writableFinished) stream.abort();
    await all;
  }
}
