import {
  Column,
  Entity,
  Index,
  JoinColumn,
  ManyToOne,
  PrimaryColumn,
  type Relation,
} from 'typeorm';
import { User } from '../../users/user.entity.js';

/** Why a session ended; shown to its user in the audit trail. */
export const REVOCATION_REASONS = [
  'logout',
  'logout_all',
  'user_revoked',
  'token_revoked',
  'password_changed',
  'evicted',
  'reuse_detected',
] as const;
export type RevocationReason = (typeof REVOCATION_REASONS)[number];

/**
 * One login session: every refresh token rotated from the same login belongs
 * to one family, and revoking the family ends the session (its refresh tokens
 * and, through the access guard, its access tokens).
 */
@Entity({ name: 'token_families' })
// Housekeeping finds dead sessions by these two.
@Index('ix_token_families_expires_at', ['expiresAt'])
@Index('ix_token_families_revoked_at', ['revokedAt'], { where: '"revoked_at" IS NOT NULL' })
export class TokenFamily {
  @PrimaryColumn({ type: 'uuid' })
  id!: string;

  @Index('ix_token_families_user_id')
  @Column({ name: 'user_id', type: 'uuid' })
  userId!: string;

  @ManyToOne(() => User, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'user_id', foreignKeyConstraintName: 'fk_token_families_user' })
  user?: Relation<User>;

  @Column({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @Column({ name: 'last_used_at', type: 'timestamptz' })
  lastUsedAt!: Date;

  /**
   * Expiry of the family's current refresh token: the inactivity timeout,
   * pushed forward by each rotation but never past `absolute_expires_at`.
   * The session is dead after it.
   */
  @Column({ name: 'expires_at', type: 'timestamptz' })
  expiresAt!: Date;

  /** created_at + SESSION_MAX_AGE; rotation never extends it (OWASP ASVS 3.3.2). */
  @Column({ name: 'absolute_expires_at', type: 'timestamptz' })
  absoluteExpiresAt!: Date;

  @Column({ name: 'revoked_at', type: 'timestamptz', nullable: true })
  revokedAt!: Date | null;

  @Column({ name: 'revoked_reason', type: 'varchar', length: 32, nullable: true })
  revokedReason!: RevocationReason | null;

  @Column({ name: 'user_agent', type: 'varchar', length: 512, nullable: true })
  userAgent!: string | null;

  @Column({ type: 'inet', nullable: true })
  ip!: string | null;
}
