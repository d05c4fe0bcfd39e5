import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, type EntityManager } from 'typeorm';
import type { SessionBinding } from '../tokens/token-claims.js';
import { runSql } from '../../database/sql.js';
import type { RevocationReason } from '../../common/revocation-reasons.js';

export interface NewSession {
  userId: string;
  sessionId: string;
  now: Date;
  tokenSalt: Buffer;
  /** Generation 0's token: its iat and exp. */
  first: { issuedAt: Date; expiresAt: Date };
  absoluteExpiresAt: Date;
  userAgent: string | null;
  ip: string | null;
  binding: SessionBinding;
}

/** The session row as the access guard needs it. */
export interface SessionState {
  userId: string;
  revokedAt: Date | null;
  expiresAt: Date;
}

export interface LiveSession {
  id: string;
  createdAt: Date;
  lastUsedAt: Date;
  expiresAt: Date;
  userAgent: string | null;
  ip: string | null;
  clientId: string | null;
}

/** What the rotation rule needs to judge a presented token (rotation.rules.ts). */
export interface RotationState {
  userId: string;
  generation: number;
  rotatedAt: Date;
  expiresAt: Date;
  revokedAt: Date | null;
  tokenSalt: Buffer;
  userAgent: string | null;
  ip: string | null;
  legacyTokenId: string | null;
  legacyTokenHash: Buffer | null;
  legacyParentHash: Buffer | null;
}

export interface Rotation {
  sessionId: string;
  userId: string;
  /** The generation presented, which must be the newest. */
  generation: number;
  /** Whole seconds: the new token's iat, and the session's rotated_at (the grace counts from it). */
  issuedAt: Date;
  /** The new token's sliding expiry before the absolute cap. */
  slidingExpiresAt: Date;
  now: Date;
}

export interface Rotated {
  generation: number;
  jti: Buffer;
  expiresAt: Date;
}

// One generation forward, if the presented token ($3, proven by $6) is the
// newest of a live session of its subject.
const advanceWhere = (proof: string) => `UPDATE sessions
    SET generation = generation + 1, rotated_at = $4, last_used_at = $7,
        expires_at = LEAST($5::timestamptz, absolute_expires_at)
  WHERE id = $1 AND user_id = $2 AND generation = $3::int AND ${proof}
    AND revoked_at IS NULL AND expires_at > $7
  RETURNING generation, sha256(token_salt || int4send(generation)) AS jti, expires_at`;
const ROTATE = advanceWhere('sha256(token_salt || int4send($3::int)) = $6');
// A v1 token is generation 0 (the caller presents it as such), known by its digest.
const ROTATE_LEGACY = advanceWhere('legacy_token_hash = $6');

/**
 * Narrow, named data access for sessions. Every method scopes by the ids it
 * is given; none takes a free-form filter.
 */
@Injectable()
export class SessionRepository {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  /** Starts a session at generation 0, in the caller's transaction. */
  async create(manager: EntityManager, session: NewSession): Promise<void> {
    await runSql(
      manager,
      `INSERT INTO sessions
              (id, user_id, created_at, absolute_expires_at, token_salt, rotated_at,
               last_used_at, expires_at, generation, user_agent, ip, client_id, dpop_jkt)
       VALUES ($1, $2, $3, $4, $5, $6, $3, $7, 0, $8, $9, $10, $11)`,
      [
        session.sessionId,
        session.userId,
        session.now,
        session.absoluteExpiresAt,
        session.tokenSalt,
        session.first.issuedAt,
        session.first.expiresAt,
        session.userAgent,
        session.ip,
        session.binding.clientId,
        session.binding.keyThumbprint,
      ],
    );
  }

  /**
   * The whole of a rotation, in one statement and without a transaction: the
   * row advances one generation only if the presented token is its newest
   * (generation and jti digest), the session is live and belongs to the
   * token's subject. A concurrent rotation holds the row lock; this UPDATE
   * waits for it and re-checks its WHERE on the row it committed, so of N
   * parallel presentations exactly one advances the row and the others match
   * nothing. Null when nothing matched: the caller then reads the row and
   * applies the rotation rule.
   */
  rotate(rotation: Rotation, jti: Buffer): Promise<Rotated | null> {
    return this.advance(ROTATE, rotation, jti);
  }

  /**
   * Rotation of a session's generation 0 when it is a v1 token (from before
   * token store v2), known by its digest. The same conditions as `rotate`.
   */
  rotateLegacy(rotation: Rotation, tokenHash: Buffer): Promise<Rotated | null> {
    return this.advance(ROTATE_LEGACY, rotation, tokenHash);
  }

  private async advance(sql: string, rotation: Rotation, proof: Buffer): Promise<Rotated | null> {
    const result = await runSql<{ generation: number; jti: Buffer; expires_at: Date }>(
      this.dataSource.manager,
      sql,
      [
        rotation.sessionId,
        rotation.userId,
        rotation.generation,
        rotation.issuedAt,
        rotation.slidingExpiresAt,
        proof,
        rotation.now,
      ],
    );
    const row = result.rows[0];
    return row ? { generation: row.generation, jti: row.jti, expiresAt: row.expires_at } : null;
  }

  /** The row as the rotation rule judges it; read without a lock (see AuthService.refresh). */
  async findForRotation(sessionId: string): Promise<RotationState | null> {
    const result = await runSql<{
      user_id: string;
      generation: number;
      rotated_at: Date;
      expires_at: Date;
      revoked_at: Date | null;
      token_salt: Buffer;
      user_agent: string | null;
      ip: string | null;
      legacy_token_id: string | null;
      legacy_token_hash: Buffer | null;
      legacy_parent_hash: Buffer | null;
    }>(
      this.dataSource.manager,
      `SELECT user_id, generation, rotated_at, expires_at, revoked_at, token_salt, user_agent,
              host(ip) AS ip, legacy_token_id, legacy_token_hash, legacy_parent_hash
         FROM sessions WHERE id = $1`,
      [sessionId],
    );
    const r = result.rows[0];
    return r
      ? {
          userId: r.user_id,
          generation: r.generation,
          rotatedAt: r.rotated_at,
          expiresAt: r.expires_at,
          revokedAt: r.revoked_at,
          tokenSalt: r.token_salt,
          userAgent: r.user_agent,
          ip: r.ip,
          legacyTokenId: r.legacy_token_id,
          legacyTokenHash: r.legacy_token_hash,
          legacyParentHash: r.legacy_parent_hash,
        }
      : null;
  }

  /**
   * Marks a re-issue of `generation`'s token as a use of the session, only if
   * that is still the newest generation of a live session: the re-issued
   * token is then current at the instant this row lock is taken. False when a
   * rotation or a revocation came first.
   */
  async touchGeneration(
    manager: EntityManager,
    sessionId: string,
    generation: number,
    now: Date,
  ): Promise<boolean> {
    const result = await runSql(
      manager,
      `UPDATE sessions SET last_used_at = $3
        WHERE id = $1 AND generation = $2 AND revoked_at IS NULL AND expires_at > $3`,
      [sessionId, generation, now],
    );
    return result.rowCount === 1;
  }

  /**
   * Revokes the given live sessions of one user; already revoked ones keep
   * their original time and reason, so repeating a revocation is harmless.
   * Returns the ids this call revoked (one audit event each).
   */
  async revoke(
    userId: string,
    sessionIds: string[],
    reason: RevocationReason,
    now: Date,
    manager: EntityManager = this.dataSource.manager,
  ): Promise<string[]> {
    if (sessionIds.length === 0) return [];
    const result = await runSql<{ id: string }>(
      manager,
      `UPDATE sessions SET revoked_at = $3, revoked_reason = $4
        WHERE user_id = $1 AND id = ANY($2::uuid[]) AND revoked_at IS NULL AND expires_at > $3
        RETURNING id`,
      [userId, sessionIds, now, reason],
    );
    return result.rows.map((r) => r.id);
  }

  /**
   * Revokes every live session of the user, except `keep` when given. A
   * session being rotated right now is locked; this UPDATE waits for that
   * rotation and then revokes the generation it produced, so nothing usable survives.
   */
  async revokeAllForUser(
    manager: EntityManager,
    userId: string,
    reason: RevocationReason,
    now: Date,
    keep: string | null,
  ): Promise<string[]> {
    const result = await runSql<{ id: string }>(
      manager,
      `UPDATE sessions SET revoked_at = $2, revoked_reason = $3
        WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2
          AND ($4::uuid IS NULL OR id <> $4::uuid)
        RETURNING id`,
      [userId, now, reason, keep],
    );
    return result.rows.map((r) => r.id);
  }

  /**
   * Keeps the user's `keep` most recently used live sessions and evicts the
   * rest. The caller holds the user's row lock, so concurrent logins of one
   * user cannot both see room for one more session.
   */
  async evictLeastRecentlyUsed(
    manager: EntityManager,
    userId: string,
    keep: number,
    now: Date,
  ): Promise<string[]> {
    const result = await runSql<{ id: string }>(
      manager,
      `UPDATE sessions SET revoked_at = $2, revoked_reason = 'evicted'
        WHERE id IN (
          SELECT id FROM sessions
           WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2
           ORDER BY last_used_at DESC, created_at DESC, id DESC
          OFFSET $3)
          AND revoked_at IS NULL
        RETURNING id`,
      [userId, now, keep],
    );
    return result.rows.map((r) => r.id);
  }

  /**
   * Locks every session of the user, before the user row is deleted: the
   * cascade would otherwise take these locks after the user row's, the
   * opposite order of a revocation on reuse (session, then the user row
   * through its audit event's foreign key), and the two could deadlock.
   */
  async lockAllForUser(manager: EntityManager, userId: string): Promise<string[]> {
    const result = await runSql<{ id: string }>(
      manager,
      'SELECT id FROM sessions WHERE user_id = $1 ORDER BY id FOR UPDATE',
      [userId],
    );
    return result.rows.map((row) => row.id);
  }

  /** The user's live sessions, most recently used first. */
  async listLive(userId: string, now: Date): Promise<LiveSession[]> {
    const result = await runSql<{
      id: string;
      created_at: Date;
      last_used_at: Date;
      expires_at: Date;
      user_agent: string | null;
      ip: string | null;
      client_id: string | null;
    }>(
      this.dataSource.manager,
      `SELECT id, created_at, last_used_at, expires_at, user_agent, ip, client_id
         FROM sessions
        WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2
        ORDER BY last_used_at DESC, created_at DESC, id DESC`,
      [userId, now],
    );
    return result.rows.map((r) => ({
      id: r.id,
      createdAt: r.created_at,
      lastUsedAt: r.last_used_at,
      expiresAt: r.expires_at,
      userAgent: r.user_agent,
      ip: r.ip,
      clientId: r.client_id,
    }));
  }

  async findSession(sessionId: string): Promise<SessionState | null> {
    const result = await runSql<{ user_id: string; revoked_at: Date | null; expires_at: Date }>(
      this.dataSource.manager,
      'SELECT user_id, revoked_at, expires_at FROM sessions WHERE id = $1',
      [sessionId],
    );
    const row = result.rows[0];
    return row
      ? { userId: row.user_id, revokedAt: row.revoked_at, expiresAt: row.expires_at }
      : null;
  }

  /**
   * One page of the sessions that ended (revoked, or deleted while live: the
   * tombstones the feed trigger writes) after `after` in (endedAt, id) order,
   * for the revocation feed's catch-up. Times are cut to milliseconds in the
   * query, so the last row of a page is an exact key for the next (a
   * JavaScript Date holds no microseconds). Each branch reads its index
   * (ix_sessions_revoked_at, ix_deleted_sessions_deleted_at) from the key's
   * time on.
   */
  async listEndedAfter(after: EndedSession, limit: number): Promise<EndedSession[]> {
    const result = await runSql<{ id: string; ended_at: Date }>(
      this.dataSource.manager,
      `SELECT id, ended_at FROM (
         SELECT id, date_trunc('milliseconds', revoked_at) AS ended_at
           FROM sessions WHERE revoked_at >= $1
         UNION ALL
         SELECT family_id, date_trunc('milliseconds', deleted_at)
           FROM deleted_sessions WHERE deleted_at >= $1
       ) ended
       WHERE (ended_at, id) > ($1::timestamptz, $2::uuid)
       ORDER BY ended_at, id
       LIMIT $3`,
      [after.endedAt, after.sessionId, limit],
    );
    return result.rows.map((r) => ({ sessionId: r.id, endedAt: r.ended_at }));
  }
}

/** A session that ended, and when (revoked_at, or deleted_at for a deleted live session). */
export interface EndedSession {
  sessionId: string;
  endedAt: Date;
}
