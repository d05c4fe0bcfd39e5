import {
  Column,
  Entity,
  Index,
  JoinColumn,
  ManyToOne,
  OneToOne,
  PrimaryColumn,
  type Relation,
} from 'typeorm';
import { TokenFamily } from './token-family.entity.js';

/**
 * One issued refresh token. The token itself is never stored, only its
 * SHA-256, so a database dump yields nothing that can be presented.
 * The row keeps the claims needed to re-sign the same token (jti = id,
 * iat = issued_at, exp = expires_at) for the reuse grace window.
 */
@Entity({ name: 'refresh_tokens' })
// At most one unused token per family: the database itself forbids a fork,
// whatever the application does under concurrency (RFC 9700 §4.14.2).
@Index('uq_refresh_tokens_family_unused', ['familyId'], {
  unique: true,
  where: '"used_at" IS NULL',
})
export class RefreshToken {
  @PrimaryColumn({ type: 'uuid' })
  id!: string;

  @Index('ix_refresh_tokens_family_id')
  @Column({ name: 'family_id', type: 'uuid' })
  familyId!: string;

  @ManyToOne(() => TokenFamily, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'family_id', foreignKeyConstraintName: 'fk_refresh_tokens_family' })
  family?: Relation<TokenFamily>;

  /** The token this one was rotated from; unique, so a token has at most one child. */
  @Column({ name: 'parent_id', type: 'uuid', nullable: true })
  parentId!: string | null;

  @OneToOne(() => RefreshToken, { onDelete: 'SET NULL' })
  @JoinColumn({
    name: 'parent_id',
    foreignKeyConstraintName: 'fk_refresh_tokens_parent',
  })
  parent?: Relation<RefreshToken> | null;

  @Column({ name: 'token_hash', type: 'bytea' })
  tokenHash!: Buffer;

  @Column({ name: 'issued_at', type: 'timestamptz' })
  issuedAt!: Date;

  // Housekeeping deletes expired tokens by this.
  @Index('ix_refresh_tokens_expires_at')
  @Column({ name: 'expires_at', type: 'timestamptz' })
  expiresAt!: Date;

  @Column({ name: 'used_at', type: 'timestamptz', nullable: true })
  usedAt!: Date | null;

  /** The child issued when this token was used. */
  @Column({ name: 'replaced_by_id', type: 'uuid', nullable: true })
  replacedById!: string | null;

  @OneToOne(() => RefreshToken, { onDelete: 'SET NULL' })
  @JoinColumn({
    name: 'replaced_by_id',
    foreignKeyConstraintName: 'fk_refresh_tokens_replaced_by',
  })
  replacedBy?: Relation<RefreshToken> | null;
}
