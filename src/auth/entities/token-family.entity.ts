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

export const REVOCATION_REASONS = ['logout', 'reuse_detected'] as const;
export type RevocationReason = (typeof REVOCATION_REASONS)[number];

/**
 * One login session: every refresh token rotated from the same login belongs
 * to one family, and revoking the family ends the session (its refresh tokens
 * and, through the access guard, its access tokens).
 */
@Entity({ name: 'token_families' })
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

  /** Expiry of the family's current refresh token; the session is dead after it. */
  @Column({ name: 'expires_at', type: 'timestamptz' })
  expiresAt!: Date;

  @Column({ name: 'revoked_at', type: 'timestamptz', nullable: true })
  revokedAt!: Date | null;

  @Column({ name: 'revoked_reason', type: 'varchar', length: 32, nullable: true })
  revokedReason!: RevocationReason | null;

  @Column({ name: 'user_agent', type: 'varchar', length: 512, nullable: true })
  userAgent!: string | null;

  @Column({ type: 'inet', nullable: true })
  ip!: string | null;
}
