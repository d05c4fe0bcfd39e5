import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, type EntityManager } from 'typeorm';
import type { ClientInfo } from '../common/client-info.js';
import { runSql } from '../database/sql.js';
import type { RevocationReason } from './entities/token-family.entity.js';
import type { RefreshTokenSpec } from './token.service.js';

export interface NewFamily {
  userId: string;
  familyId: string;
  now: Date;
  absoluteExpiresAt: Date;
  userAgent: string | null;
  ip: string | null;
}

/** The family row as the access guard needs it. */
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
}

/** Everything rotation needs to decide, read after the family row is locked. */
export interface LockedTokenState {
  familyId: string;
  userId: string;
  familyRevokedAt: Date | null;
  familyExpiresAt: Date;
  familyAbsoluteExpiresAt: Date;
  tokenHash: Buffer;
  expiresAt: Date;
  usedAt: Date | null;
  child: { id: string; issuedAt: Date; expiresAt: Date; usedAt: Date | null } | null;
}

/**
 * Narrow, named data access for token families and their refresh tokens.
 * Every method scopes by the ids it is given; none takes a free-form filter.
 */
@Injectable()
export class TokenFamilyRepository {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  /**
   * READ COMMITTED, PostgreSQL's default: not named, because TypeORM would
   * spend a round trip on SET TRANSACTION. Every rule here relies on row
   * locks and conditional updates, which is what READ COMMITTED is for.
   */
  transaction<T>(work: (manager: EntityManager) => Promise<T>): Promise<T> {
    return this.dataSource.transaction(work);
  }

  /** Starts a session: the family row and its first refresh token, in the caller's transaction. */
  async createFamily(
    manager: EntityManager,
    family: NewFamily,
    first: RefreshTokenSpec,
    hash: Buffer,
  ) {
    await runSql(
      manager,
      `WITH family AS (
         INSERT INTO token_families
                (id, user_id, created_at, last_used_at, expires_at, absolute_expires_at, user_agent, ip)
         VALUES ($1, $2, $3, $3, $4, $10, $5, $6)
       )
       INSERT INTO refresh_tokens (id, family_id, parent_id, token_hash, issued_at, expires_at)
       VALUES ($7, $1, NULL, $8, $9, $4)`,
      [
        family.familyId,
        family.userId,
        family.now,
        first.expiresAt,
        family.userAgent,
        family.ip,
        first.id,
        hash,
        first.issuedAt,
        family.absoluteExpiresAt,
      ],
    );
  }

  /**
   * Locks the presented token's family row, then reads the token and its child.
   * The lock serializes every rotation and revocation of one family; reading
   * after it (a new statement, so a fresh READ COMMITTED snapshot) guarantees
   * we see what a concurrent rotation committed while we waited.
   */
  async lockForRotation(manager: EntityManager, tokenId: string): Promise<LockedTokenState | null> {
    const family = await runSql<{
      id: string;
      user_id: string;
      revoked_at: Date | null;
      expires_at: Date;
      absolute_expires_at: Date;
    }>(
      manager,
      `SELECT f.id, f.user_id, f.revoked_at, f.expires_at, f.absolute_expires_at
         FROM token_families f
        WHERE f.id = (SELECT family_id FROM refresh_tokens WHERE id = $1)
        FOR UPDATE`,
      [tokenId],
    );
    const f = family.rows[0];
    if (!f) return null;
    const token = await runSql<{
      token_hash: Buffer;
      expires_at: Date;
      used_at: Date | null;
      child_id: string | null;
      child_issued_at: Date | null;
      child_expires_at: Date | null;
      child_used_at: Date | null;
    }>(
      manager,
      `SELECT t.token_hash, t.expires_at, t.used_at,
              c.id AS child_id, c.issued_at AS child_issued_at,
              c.expires_at AS child_expires_at, c.used_at AS child_used_at
         FROM refresh_tokens t
         LEFT JOIN refresh_tokens c ON c.id = t.replaced_by_id
        WHERE t.id = $1`,
      [tokenId],
    );
    const t = token.rows[0];
    if (!t) return null;
    return {
      familyId: f.id,
      userId: f.user_id,
      familyRevokedAt: f.revoked_at,
      familyExpiresAt: f.expires_at,
      familyAbsoluteExpiresAt: f.absolute_expires_at,
      tokenHash: t.token_hash,
      expiresAt: t.expires_at,
      usedAt: t.used_at,
      child:
        t.child_id && t.child_issued_at && t.child_expires_at
          ? {
              id: t.child_id,
              issuedAt: t.child_issued_at,
              expiresAt: t.child_expires_at,
              usedAt: t.child_used_at,
            }
          : null,
    };
  }

  /**
   * Marks the parent used and inserts its child in one statement. The
   * `used_at IS NULL` condition plus the partial unique index (one unused token
   * per family) make a fork impossible even if the lock were bypassed.
   */
  async rotate(
    manager: EntityManager,
    parentId: string,
    child: RefreshTokenSpec,
    childHash: Buffer,
    now: Date,
    client: ClientInfo,
  ): Promise<boolean> {
    // One statement: parent used, family touched, child inserted, and the
    // `refreshed` audit event written (fewer round trips inside the lock).
    const result = await runSql(
      manager,
      `WITH parent AS (
         UPDATE refresh_tokens SET used_at = $3, replaced_by_id = $2
          WHERE id = $1 AND used_at IS NULL
          RETURNING family_id
       ), family AS (
         UPDATE token_families SET last_used_at = $3, expires_at = $5
          WHERE id = (SELECT family_id FROM parent)
          RETURNING id, user_id
       ), event AS (
         INSERT INTO auth_events (occurred_at, type, user_id, session_id, ip, user_agent)
         SELECT $3, 'refreshed', user_id, id, $7, $8 FROM family
       )
       INSERT INTO refresh_tokens (id, family_id, parent_id, token_hash, issued_at, expires_at)
       SELECT $2, family_id, $1, $4, $6, $5 FROM parent`,
      [
        parentId,
        child.id,
        now,
        childHash,
        child.expiresAt,
        child.issuedAt,
        client.ip,
        client.userAgent,
      ],
    );
    return result.rowCount === 1;
  }

  async touch(manager: EntityManager, familyId: string, now: Date): Promise<void> {
    await runSql(manager, 'UPDATE token_families SET last_used_at = $2 WHERE id = $1', [
      familyId,
      now,
    ]);
  }

  /**
   * Revokes the given live families of one user; already revoked ones keep
   * their original time and reason, so repeating a revocation is harmless.
   * Returns the ids this call revoked (one audit event each).
   */
  async revoke(
    userId: string,
    familyIds: string[],
    reason: RevocationReason,
    now: Date,
    manager: EntityManager = this.dataSource.manager,
  ): Promise<string[]> {
    if (familyIds.length === 0) return [];
    const result = await runSql<{ id: string }>(
      manager,
      `UPDATE token_families SET revoked_at = $3, revoked_reason = $4
        WHERE user_id = $1 AND id = ANY($2::uuid[]) AND revoked_at IS NULL AND expires_at > $3
        RETURNING id`,
      [userId, familyIds, now, reason],
    );
    return result.rows.map((r) => r.id);
  }

  /**
   * Revokes every live family of the user, except `keep` when given. A family
   * being rotated right now is locked; this UPDATE waits for that rotation and
   * then revokes the family it produced, so nothing usable survives.
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
      `UPDATE token_families SET revoked_at = $2, revoked_reason = $3
        WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2
          AND ($4::uuid IS NULL OR id <> $4::uuid)
        RETURNING id`,
      [userId, now, reason, keep],
    );
    return result.rows.map((r) => r.id);
  }

  /**
   * Keeps the user's `keep` most recently used live families and evicts the
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
      `UPDATE token_families SET revoked_at = $2, revoked_reason = 'evicted'
        WHERE id IN (
          SELECT id FROM token_families
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
   * Locks every family of the user, before the user row is deleted: the
   * cascade would otherwise take these locks after the user row's, the
   * opposite order of a rotation (family, then the user row through its
   * audit event's foreign key), and the two could deadlock.
   */
  async lockAllForUser(manager: EntityManager, userId: string): Promise<string[]> {
    const result = await runSql<{ id: string }>(
      manager,
      'SELECT id FROM token_families WHERE user_id = $1 ORDER BY id FOR UPDATE',
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
    }>(
      this.dataSource.manager,
      `SELECT id, created_at, last_used_at, expires_at, user_agent, ip
         FROM token_families
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
    }));
  }

  async findSession(familyId: string): Promise<SessionState | null> {
    const result = await runSql<{ user_id: string; revoked_at: Date | null; expires_at: Date }>(
      this.dataSource.manager,
      'SELECT user_id, revoked_at, expires_at FROM token_families WHERE id = $1',
      [familyId],
    );
    const row = result.rows[0];
    return row
      ? { userId: row.user_id, revokedAt: row.revoked_at, expiresAt: row.expires_at }
      : null;
  }
}
