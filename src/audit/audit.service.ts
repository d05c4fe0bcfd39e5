import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, type EntityManager } from 'typeorm';
import { runSql } from '../database/sql.js';
import type { ClientInfo } from '../common/client-info.js';
import type { AuthEventType } from './auth-event.entity.js';

export interface NewAuthEvent {
  type: AuthEventType;
  userId: string | null;
  sessionId?: string | null;
  reason?: string | null;
}

export interface AuthEventRow {
  id: string;
  type: AuthEventType;
  occurredAt: Date;
  sessionId: string | null;
  reason: string | null;
  ip: string | null;
  userAgent: string | null;
}

/**
 * Writes the audit trail. Callers pass their transaction's manager, so an
 * event is committed exactly when the change it describes is.
 */
@Injectable()
export class AuditService {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  async record(
    events: NewAuthEvent[],
    client: ClientInfo,
    now: Date,
    manager: EntityManager = this.dataSource.manager,
  ): Promise<void> {
    if (events.length === 0) return;
    await runSql(
      manager,
      `INSERT INTO auth_events (occurred_at, type, user_id, session_id, reason, ip, user_agent)
       SELECT $1, e.type, e.user_id, e.session_id, e.reason, $2, $3
         FROM unnest($4::varchar[], $5::uuid[], $6::uuid[], $7::varchar[])
              AS e(type, user_id, session_id, reason)`,
      [
        now,
        client.ip,
        client.userAgent,
        events.map((e) => e.type),
        events.map((e) => e.userId),
        events.map((e) => e.sessionId ?? null),
        events.map((e) => e.reason ?? null),
      ],
    );
  }

  /** The user's own events, newest first; `before` is the id of the last event already seen. */
  async listForUser(userId: string, limit: number, before?: string): Promise<AuthEventRow[]> {
    const result = await runSql<{
      id: string;
      type: AuthEventType;
      occurred_at: Date;
      session_id: string | null;
      reason: string | null;
      ip: string | null;
      user_agent: string | null;
    }>(
      this.dataSource.manager,
      `SELECT id, type, occurred_at, session_id, reason, ip, user_agent
         FROM auth_events
        WHERE user_id = $1 AND ($2::bigint IS NULL OR id < $2::bigint)
        ORDER BY id DESC
        LIMIT $3`,
      [userId, before ?? null, limit],
    );
    return result.rows.map((r) => ({
      id: r.id,
      type: r.type,
      occurredAt: r.occurred_at,
      sessionId: r.session_id,
      reason: r.reason,
      ip: r.ip,
      userAgent: r.user_agent,
    }));
  }
}
