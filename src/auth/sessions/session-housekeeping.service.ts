import { Injectable, Logger, type OnApplicationBootstrap } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { SchedulerRegistry } from '@nestjs/schedule';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, type EntityManager } from 'typeorm';
import type { AppConfig, HousekeepingConfig } from '../../config/configuration.js';
import { runSql } from '../../database/sql.js';
import { SessionRevocations } from './session-revocations.js';

export const HOUSEKEEPING_BATCH = 1000;
// Arbitrary constant: with several instances, one cleans up at a time.
export const HOUSEKEEPING_LOCK_KEY = 7_356_102;

export interface HousekeepingResult {
  sessions: number;
  tombstones: number;
  events: number;
}

/**
 * Deletes what no request can use any more, so the tables do not grow
 * without limit: sessions past either lifetime (or revoked) for longer than
 * SESSION_RETENTION, and audit events older than EVENT_RETENTION. A refresh
 * leaves nothing else behind: a session is one row, whatever its refreshes. Deletes go
 * in bounded batches, each its own short statement, so live traffic never
 * waits behind one long lock.
 */
@Injectable()
export class SessionHousekeeping implements OnApplicationBootstrap {
  private readonly logger = new Logger(SessionHousekeeping.name);
  private readonly settings: HousekeepingConfig;
  private running = false;

  constructor(
    config: ConfigService<AppConfig, true>,
    private readonly scheduler: SchedulerRegistry,
    private readonly revocations: SessionRevocations,
    @InjectDataSource() private readonly dataSource: DataSource,
  ) {
    this.settings = config.get('housekeeping', { infer: true });
  }

  onApplicationBootstrap(): void {
    const timer = setInterval(() => void this.runScheduled(), this.settings.interval * 1000);
    // A pending cleanup never keeps the process alive on shutdown.
    timer.unref();
    this.scheduler.addInterval(SessionHousekeeping.name, timer);
  }

  private async runScheduled(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      const result = await this.run(new Date());
      if (result && (result.sessions || result.events)) {
        this.logger.log(`Removed ${result.sessions} sessions, ${result.events} events`);
      }
    } catch (error) {
      this.logger.error(
        `Housekeeping failed: ${error instanceof Error ? error.message : String(error)}`,
      );
    } finally {
      this.running = false;
    }
  }

  /**
   * One cleanup pass as of `now`. Returns null when another instance holds
   * the housekeeping lock (it is doing the same work).
   */
  async run(now: Date): Promise<HousekeepingResult | null> {
    const sessionCutoff = new Date(now.getTime() - this.settings.sessionRetention * 1000);
    const eventCutoff = new Date(now.getTime() - this.settings.eventRetention * 1000);
    const runner = this.dataSource.createQueryRunner();
    await runner.connect();
    try {
      const [lock] = (await runner.query('SELECT pg_try_advisory_lock($1) AS locked', [
        HOUSEKEEPING_LOCK_KEY,
      ])) as { locked: boolean }[];
      if (!lock?.locked) return null;
      try {
        const manager = runner.manager;
        return {
          // A scan, not an index: no index may cover expires_at, which every
          // rotation writes (its UPDATE would no longer be HOT). Once per
          // interval, in batches, it reads the table while nothing waits on it.
          sessions: await this.deleteInBatches(
            manager,
            'sessions',
            'SELECT id FROM sessions WHERE expires_at < $1 OR revoked_at < $1 LIMIT $2',
            sessionCutoff,
            (ids) => this.revocations.forget(ids),
          ),
          // Tombstones of deleted sessions: their access tokens expired long ago.
          tombstones: await this.deleteInBatches(
            manager,
            'deleted_sessions',
            'SELECT family_id FROM deleted_sessions WHERE deleted_at < $1 LIMIT $2',
            sessionCutoff,
          ),
          events: await this.deleteInBatches(
            manager,
            'auth_events',
            'SELECT id FROM auth_events WHERE occurred_at < $1 LIMIT $2',
            eventCutoff,
          ),
        };
      } finally {
        await runner.query('SELECT pg_advisory_unlock($1)', [HOUSEKEEPING_LOCK_KEY]);
      }
    } finally {
      await runner.release();
    }
  }

  private async deleteInBatches(
    manager: EntityManager,
    table: 'sessions' | 'auth_events' | 'deleted_sessions',
    selectBatch: string,
    cutoff: Date,
    onDeleted?: (ids: string[]) => void,
  ): Promise<number> {
    const key = table === 'deleted_sessions' ? 'family_id' : 'id';
    let total = 0;
    for (;;) {
      const result = await runSql<{ id: string }>(
        manager,
        `DELETE FROM ${table} WHERE ${key} IN (${selectBatch}) RETURNING ${key}::text AS id`,
        [cutoff, HOUSEKEEPING_BATCH],
      );
      onDeleted?.(result.rows.map((row) => row.id));
      total += result.rows.length;
      if (result.rows.length < HOUSEKEEPING_BATCH) return total;
    }
  }
}
