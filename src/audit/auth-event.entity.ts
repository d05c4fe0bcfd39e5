import {
  Column,
  Entity,
  Index,
  JoinColumn,
  ManyToOne,
  PrimaryGeneratedColumn,
  type Relation,
} from 'typeorm';
import { User } from '../users/user.entity.js';

/**
 * What happened to an account, in order. Never a token or a password: only
 * who, which session, from where, and why (OWASP ASVS 7.1.1, 7.2.1).
 */
export const AUTH_EVENT_TYPES = [
  'registered',
  'login_succeeded',
  'login_failed',
  /**
   * No longer written: versions before token store v2 wrote one per refresh.
   * A routine refresh now shows only in its session's `last_used_at`; old
   * rows leave with EVENT_RETENTION.
   */
  'refreshed',
  /** A parent presented again got its child back; `reason` is `same_client` or `other_client`. */
  'refresh_reissued',
  /** A token whose child was used, presented within REFRESH_REUSE_GRACE: refused, session kept. */
  'refresh_superseded',
  /** The session is revoked; `reason` is `child_used` or `older_generation` (rotation.rules.ts). */
  'reuse_detected',
  /** One per ended session; `reason` says why (logout, evicted, password_changed, ...). */
  'session_revoked',
  'logout',
  'logout_all',
  'password_changed',
  /**
   * A refresh refused for its DPoP proof (RFC 9449); the session goes on.
   * `reason` says what was wrong: `missing`, `key_mismatch`, `replayed`, ...
   */
  'dpop_proof_refused',
] as const;
export type AuthEventType = (typeof AUTH_EVENT_TYPES)[number];

/**
 * Append-only: a trigger refuses UPDATE (see the migration). Rows leave only
 * with their user, or through the retention job.
 */
@Entity({ name: 'auth_events' })
// The user's own trail, newest first, paged by id.
@Index('ix_auth_events_user_id', ['userId', 'id'])
// Retention deletes by age.
@Index('ix_auth_events_occurred_at', ['occurredAt'])
export class AuthEvent {
  /** Identity order is insertion order: the cursor for paging. */
  @PrimaryGeneratedColumn('identity', { type: 'bigint', generatedIdentity: 'ALWAYS' })
  id!: string;

  @Column({ name: 'occurred_at', type: 'timestamptz' })
  occurredAt!: Date;

  @Column({ type: 'varchar', length: 32 })
  type!: AuthEventType;

  /** Null for a failed login with an unknown username. */
  @Column({ name: 'user_id', type: 'uuid', nullable: true })
  userId!: string | null;

  @ManyToOne(() => User, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'user_id', foreignKeyConstraintName: 'fk_auth_events_user' })
  user?: Relation<User>;

  /** The session concerned; no foreign key, so the trail outlives session cleanup. */
  @Column({ name: 'session_id', type: 'uuid', nullable: true })
  sessionId!: string | null;

  @Column({ type: 'varchar', length: 32, nullable: true })
  reason!: string | null;

  @Column({ type: 'inet', nullable: true })
  ip!: string | null;

  @Column({ name: 'user_agent', type: 'varchar', length: 512, nullable: true })
  userAgent!: string | null;
}
