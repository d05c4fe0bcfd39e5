import { Column, Entity, Index, PrimaryColumn } from 'typeorm';

/**
 * A live session whose row was deleted (its account was deleted). Written by
 * a trigger on sessions, so instances that resync their view of revoked
 * sessions (at start, after losing their LISTEN connection) learn of deleted
 * sessions too, not only of revoked ones. Kept for SESSION_RETENTION.
 */
@Entity({ name: 'deleted_sessions' })
export class DeletedSession {
  // The column keeps the name of the release that created it: renaming it
  // would break the previous release's instances during a rolling upgrade.
  @PrimaryColumn({ name: 'family_id', type: 'uuid' })
  sessionId!: string;

  @Index('ix_deleted_sessions_deleted_at')
  @Column({ name: 'deleted_at', type: 'timestamptz' })
  deletedAt!: Date;
}
