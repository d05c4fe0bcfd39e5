import { Socket } from 'node:net';
import {
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import pg from 'pg';
import type { AppConfig } from '../../config/configuration.js';

export const SESSION_ENDED_CHANNEL = 'lineage_session_ended';
const RECONNECT_MIN_MS = 500;
const RECONNECT_MAX_MS = 10_000;
// LISTEN and the resync read are indexed and small; like the pool's
// statement_timeout, a server that takes longer than this is treated as gone.
const RESYNC_TIMEOUT_MS = 10_000;
// Defence in depth under the heartbeat: the kernel probes an idle connection
// after this long (the OS default is 2 hours), so a peer that vanished behind
// a NAT or a partition is also noticed at the TCP level. It cannot notice a
// frozen server process, whose kernel still answers the probes.
const KEEPALIVE_IDLE_MS = 10_000;
// Shutdown says goodbye to the server, but a frozen one never closes its side.
const CLOSE_TIMEOUT_MS = 1_000;
// Clocks of instances and database differ a little; entries live this much longer.
const SKEW_MS = 5_000;
// Which user a live session belongs to, as last read from the database.
const OWNER_TTL_MS = 60_000;
const OWNER_MAX_ENTRIES = 100_000;

/**
 * Told what this instance learns, as it learns it (see SessionRevocations.follow).
 * Called synchronously on the paths that end sessions: it must be quick and must not throw.
 */
export interface EndedSessionsFollower {
  /**
   * A session this instance has just learned has ended: one it ended itself
   * (right after the commit) or one announced on the feed. `learnedAt` is
   * epoch milliseconds, after the end committed.
   */
  ended(sessionId: string, learnedAt: number): void;
  /** The view stopped being ready: ends may be missed from now on until a resync. */
  interrupted(): void;
}

/** One LISTEN connection and the socket under it (destroyed, never ended, when lost). */
interface Feed {
  client: pg.Client;
  socket: Socket;
}

/**
 * This instance's view of ended sessions, so the access guard needs no
 * database round trip per request while logout still takes effect at once
 * (OWASP ASVS 3.3.1).
 *
 * - Exact on the instance that ends a session: it records the ids right after
 *   its transaction commits, before answering.
 * - Fed from PostgreSQL for the other instances: triggers announce every
 *   revocation and every deletion of a live session on a LISTEN channel.
 * - Resynced from the tables at start and after every reconnect; until a
 *   resync completes the view is not `ready` and the guard asks the database.
 * - Watched: a connection can hang without an error or an end (a frozen
 *   server, a NAT that dropped the flow, a partition), and a view fed by it
 *   would stay `ready` while missing every revocation. A heartbeat query every
 *   SESSION_FEED_HEARTBEAT must be answered within SESSION_FEED_TIMEOUT, or
 *   the connection is destroyed and the view is not `ready` until a new one
 *   has resynced. Another instance's logout is therefore refused here within
 *   heartbeat + timeout even then (OWASP ASVS 3.3.1).
 * - Bounded: an id is kept only as long as an access token of that session can
 *   still be valid (ACCESS_TOKEN_TTL, plus clock skew), because access tokens
 *   never outlive their session's expiry (see AuthService.tokenResponse).
 * - Followed: what it learns is passed on as it learns it (`follow`), which
 *   is how GET /oauth/revocations tells other services of a logout.
 */
@Injectable()
export class SessionRevocations implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(SessionRevocations.name);
  private readonly ended = new Map<string, number>();
  private readonly owners = new Map<string, { userId: string; until: number }>();
  private readonly followers = new Set<EndedSessionsFollower>();
  private readonly url: string;
  private readonly keepMs: number;
  private readonly heartbeatIntervalMs: number;
  private readonly heartbeatTimeoutMs: number;
  private feed: Feed | null = null;
  private ready = false;
  private stopped = false;
  /** Since the feed was lost and until a new one is ready: failed attempts log at debug only. */
  private lostSince: number | null = null;
  private reconnectDelay = RECONNECT_MIN_MS;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private readonly pruneTimer: NodeJS.Timeout;

  constructor(config: ConfigService<AppConfig, true>) {
    this.url = config.get('database', { infer: true }).url;
    const auth = config.get('auth', { infer: true });
    this.keepMs = auth.accessTokenTtl * 1000 + SKEW_MS;
    this.heartbeatIntervalMs = auth.sessionFeedHeartbeatInterval * 1000;
    this.heartbeatTimeoutMs = auth.sessionFeedHeartbeatTimeout * 1000;
    this.pruneTimer = setInterval(() => this.prune(Date.now()), 60_000);
    this.pruneTimer.unref();
  }

  /** True once the view is complete: listening, and resynced since it started listening. */
  get isReady(): boolean {
    return this.ready;
  }

  /** Whether the session has ended; only meaningful when `isReady`. */
  hasEnded(sessionId: string): boolean {
    const until = this.ended.get(sessionId);
    return until !== undefined && until > Date.now();
  }

  /**
   * The owner of a session this instance recently found live in the
   * database. Sessions never change owner and only end through the feed, so a
   * known owner saves the lookup; it is re-read after OWNER_TTL_MS anyway.
   */
  knownOwner(sessionId: string): string | undefined {
    const entry = this.owners.get(sessionId);
    if (!entry) return undefined;
    if (entry.until > Date.now()) return entry.userId;
    this.owners.delete(sessionId);
    return undefined;
  }

  rememberOwner(sessionId: string, userId: string): void {
    // Bounded: the oldest entry goes first (Map keeps insertion order).
    if (this.owners.size >= OWNER_MAX_ENTRIES) {
      const oldest = this.owners.keys().next().value;
      if (oldest !== undefined) this.owners.delete(oldest);
    }
    this.owners.set(sessionId, { userId, until: Date.now() + OWNER_TTL_MS });
  }

  /** Drops what is known of sessions whose rows were deleted (housekeeping). */
  forget(sessionIds: Iterable<string>): void {
    for (const id of sessionIds) this.owners.delete(id);
  }

  /**
   * How long an ended session matters after it ended, in milliseconds: the
   * longest an access token of it can still verify (ACCESS_TOKEN_TTL), plus
   * clock skew.
   */
  get retentionMs(): number {
    return this.keepMs;
  }

  /** Records sessions this instance just ended (after its transaction committed). */
  recordEnded(sessionIds: Iterable<string>): void {
    this.learn(sessionIds, true);
  }

  /**
   * Tells `follower` of every session end this instance learns from now on,
   * and when the view stops being ready, for the revocation feed that
   * resource servers follow. Each end is told once: the NOTIFY of an end this
   * instance made itself reaches its own LISTEN connection too, after the
   * ids were recorded. Ends found by a resync are not told: a resync follows
   * an interruption, and followers restart from the tables after one.
   * Returns the function that stops following.
   */
  follow(follower: EndedSessionsFollower): () => void {
    this.followers.add(follower);
    return () => this.followers.delete(follower);
  }

  private learn(sessionIds: Iterable<string>, tell: boolean): void {
    const now = Date.now();
    const until = now + this.keepMs;
    for (const id of sessionIds) {
      const known = this.ended.get(id);
      this.ended.set(id, until);
      if (!tell || (known !== undefined && known > now)) continue;
      for (const follower of this.followers) this.tell(() => follower.ended(id, now));
    }
  }

  private interrupt(): void {
    for (const follower of [...this.followers]) this.tell(() => follower.interrupted());
  }

  /** A follower's failure is its own: the logout that called recordEnded has committed. */
  private tell(call: () => void): void {
    try {
      call();
    } catch (error) {
      this.logger.error(
        'A follower of ended sessions failed',
        error instanceof Error ? error.stack : String(error),
      );
    }
  }

  async onApplicationBootstrap(): Promise<void> {
    await this.connect();
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopped = true;
    this.ready = false;
    this.interrupt();
    clearInterval(this.pruneTimer);
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    if (this.heartbeatTimer) clearTimeout(this.heartbeatTimer);
    const feed = this.feed;
    this.feed = null;
    if (!feed) return;
    // A polite Terminate first, bounded: a frozen server never closes its side,
    // and end() waits for that. (With a heartbeat in flight, pg destroys at once.)
    const force = setTimeout(() => feed.socket.destroy(), CLOSE_TIMEOUT_MS);
    force.unref();
    await feed.client.end().catch(() => undefined);
    clearTimeout(force);
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    const socket = new Socket();
    const client = new pg.Client({
      connectionString: this.url,
      application_name: 'lineage-session-feed',
      connectionTimeoutMillis: 2000,
      keepAlive: true,
      keepAliveInitialDelayMillis: KEEPALIVE_IDLE_MS,
      // Our own socket, so a hung connection can be destroyed: pg has no
      // public way to, and its end() waits for a server that may never answer.
      stream: () => socket,
    });
    const feed: Feed = { client, socket };
    client.on('error', (error: Error) => this.lost(feed, error.message));
    client.on('end', () => this.lost(feed, 'connection ended'));
    client.on('notification', (message) => {
      if (message.channel === SESSION_ENDED_CHANNEL && message.payload)
        this.learn([message.payload], true);
    });
    this.feed = feed;
    let answered = () => {};
    try {
      await client.connect();
      answered = destroyUnlessAnswered(socket, RESYNC_TIMEOUT_MS, 'the resync');
      // Listen first, then read: nothing ended in between can be missed.
      await client.query(`LISTEN ${SESSION_ENDED_CHANNEL}`);
      const since = new Date(Date.now() - this.keepMs);
      const { rows } = await client.query<{ id: string }>(
        `SELECT id FROM sessions WHERE revoked_at > $1
         UNION ALL SELECT family_id FROM deleted_sessions WHERE deleted_at > $1`,
        [since],
      );
      answered();
      this.learn(
        rows.map((row) => row.id),
        false,
      );
      if (this.feed !== feed) return;
      this.ready = true;
      this.reconnectDelay = RECONNECT_MIN_MS;
      if (this.lostSince !== null) {
        const seconds = Math.round((Date.now() - this.lostSince) / 1000);
        this.logger.log(`Session feed restored after ${seconds} s; resynced from the database`);
        this.lostSince = null;
      }
      this.scheduleHeartbeat(feed);
    } catch (error) {
      answered();
      this.lost(feed, error instanceof Error ? error.message : String(error));
    }
  }

  /**
   * The connection is gone or no longer trusted: stop using the view, drop the
   * socket and try again. Only the first failure of an outage is a warning;
   * the retries while the database stays away would otherwise log every few seconds.
   */
  private lost(feed: Feed, reason: string): void {
    if (this.feed !== feed) return;
    this.feed = null;
    const wasReady = this.ready;
    this.ready = false;
    if (wasReady) this.interrupt();
    if (this.heartbeatTimer) clearTimeout(this.heartbeatTimer);
    this.heartbeatTimer = null;
    if (!this.stopped) {
      if (this.lostSince === null) {
        this.lostSince = Date.now();
        this.logger.warn(`Session feed lost (${reason}); checking sessions in the database`);
      } else {
        this.logger.debug(`Session feed still down (${reason})`);
      }
    }
    // Destroy rather than end(): a graceful close needs the server's answer.
    feed.socket.destroy();
    this.scheduleReconnect();
  }

  /**
   * One heartbeat at a time, each scheduled when the previous one is answered,
   * so a slow server never has several queued. A heartbeat belongs to its
   * connection: one left over from a connection that was lost (or shut down)
   * does nothing.
   */
  private scheduleHeartbeat(feed: Feed): void {
    if (this.stopped || this.feed !== feed) return;
    this.heartbeatTimer = setTimeout(() => {
      this.heartbeatTimer = null;
      if (this.feed !== feed) return;
      const answered = destroyUnlessAnswered(feed.socket, this.heartbeatTimeoutMs, 'a heartbeat');
      feed.client.query('SELECT 1').then(
        () => {
          answered();
          this.scheduleHeartbeat(feed);
        },
        (error: unknown) => {
          answered();
          this.lost(feed, error instanceof Error ? error.message : String(error));
        },
      );
    }, this.heartbeatIntervalMs);
    this.heartbeatTimer.unref();
  }

  private scheduleReconnect(): void {
    if (this.stopped || this.reconnectTimer) return;
    const delay = this.reconnectDelay;
    this.reconnectDelay = Math.min(RECONNECT_MAX_MS, delay * 2);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      void this.connect();
    }, delay);
    this.reconnectTimer.unref();
  }

  private prune(now: number): void {
    for (const [id, until] of this.ended) if (until <= now) this.ended.delete(id);
    for (const [id, entry] of this.owners) if (entry.until <= now) this.owners.delete(id);
  }
}

/**
 * Destroys the socket unless the returned function is called within `ms`.
 * The error it is destroyed with reaches the client's `error` handler, and
 * pg fails the waiting query, so the caller's own path reports the loss.
 */
function destroyUnlessAnswered(socket: Socket, ms: number, what: string): () => void {
  const timer = setTimeout(
    () => socket.destroy(new Error(`no answer to ${what} within ${ms} ms`)),
    ms,
  );
  timer.unref();
  return () => clearTimeout(timer);
}
