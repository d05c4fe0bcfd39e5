import {
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import pg from 'pg';
import type { AppConfig } from '../config/configuration.js';

export const SESSION_ENDED_CHANNEL = 'lineage_session_ended';
const RECONNECT_MIN_MS = 500;
const RECONNECT_MAX_MS = 10_000;
// Clocks of instances and database differ a little; entries live this much longer.
const SKEW_MS = 5_000;
// Which user a live session belongs to, as last read from the database.
const OWNER_TTL_MS = 60_000;
const OWNER_MAX_ENTRIES = 100_000;

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
 * - Bounded: an id is kept only as long as an access token of that session can
 *   still be valid (ACCESS_TOKEN_TTL, plus clock skew), because access tokens
 *   never outlive their session's expiry (see AuthService.tokenResponse).
 */
@Injectable()
export class SessionRevocations implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(SessionRevocations.name);
  private readonly ended = new Map<string, number>();
  private readonly owners = new Map<string, { userId: string; until: number }>();
  private readonly url: string;
  private readonly keepMs: number;
  private client: pg.Client | null = null;
  private ready = false;
  private stopped = false;
  private reconnectDelay = RECONNECT_MIN_MS;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private readonly pruneTimer: NodeJS.Timeout;

  constructor(config: ConfigService<AppConfig, true>) {
    this.url = config.get('database', { infer: true }).url;
    this.keepMs = config.get('auth', { infer: true }).accessTokenTtl * 1000 + SKEW_MS;
    this.pruneTimer = setInterval(() => this.prune(Date.now()), 60_000);
    this.pruneTimer.unref();
  }

  /** True once the view is complete: listening, and resynced since it started listening. */
  get isReady(): boolean {
    return this.ready;
  }

  /** Whether the session has ended; only meaningful when `isReady`. */
  hasEnded(familyId: string): boolean {
    const until = this.ended.get(familyId);
    return until !== undefined && until > Date.now();
  }

  /**
   * The owner of a session this instance recently found live in the
   * database. Sessions never change owner and only end through the feed, so a
   * known owner saves the lookup; it is re-read after OWNER_TTL_MS anyway.
   */
  knownOwner(familyId: string): string | undefined {
    const entry = this.owners.get(familyId);
    if (!entry) return undefined;
    if (entry.until > Date.now()) return entry.userId;
    this.owners.delete(familyId);
    return undefined;
  }

  rememberOwner(familyId: string, userId: string): void {
    // Bounded: the oldest entry goes first (Map keeps insertion order).
    if (this.owners.size >= OWNER_MAX_ENTRIES) {
      const oldest = this.owners.keys().next().value;
      if (oldest !== undefined) this.owners.delete(oldest);
    }
    this.owners.set(familyId, { userId, until: Date.now() + OWNER_TTL_MS });
  }

  /** Drops what is known of sessions whose rows were deleted (housekeeping). */
  forget(familyIds: Iterable<string>): void {
    for (const id of familyIds) this.owners.delete(id);
  }

  /** Records sessions this instance just ended (after its transaction committed). */
  recordEnded(familyIds: Iterable<string>): void {
    const until = Date.now() + this.keepMs;
    for (const id of familyIds) this.ended.set(id, until);
  }

  async onApplicationBootstrap(): Promise<void> {
    await this.connect();
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopped = true;
    this.ready = false;
    clearInterval(this.pruneTimer);
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    const client = this.client;
    this.client = null;
    await client?.end().catch(() => undefined);
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    const client = new pg.Client({
      connectionString: this.url,
      application_name: 'lineage-session-feed',
      connectionTimeoutMillis: 2000,
      keepAlive: true,
    });
    const lost = (reason: string) => {
      if (this.client !== client) return;
      this.client = null;
      this.ready = false;
      if (!this.stopped)
        this.logger.warn(`Session feed lost (${reason}); checking sessions in the database`);
      void client.end().catch(() => undefined);
      this.scheduleReconnect();
    };
    client.on('error', (error: Error) => lost(error.message));
    client.on('end', () => lost('connection ended'));
    client.on('notification', (message) => {
      if (message.channel === SESSION_ENDED_CHANNEL && message.payload)
        this.recordEnded([message.payload]);
    });
    this.client = client;
    try {
      await client.connect();
      // Listen first, then read: nothing ended in between can be missed.
      await client.query(`LISTEN ${SESSION_ENDED_CHANNEL}`);
      const since = new Date(Date.now() - this.keepMs);
      const { rows } = await client.query<{ id: string }>(
        `SELECT id FROM token_families WHERE revoked_at > $1
         UNION ALL SELECT family_id FROM deleted_sessions WHERE deleted_at > $1`,
        [since],
      );
      this.recordEnded(rows.map((row) => row.id));
      if (this.client === client) {
        this.ready = true;
        this.reconnectDelay = RECONNECT_MIN_MS;
      }
    } catch (error) {
      lost(error instanceof Error ? error.message : String(error));
    }
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
