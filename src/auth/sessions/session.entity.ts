import {
  Check,
  Column,
  Entity,
  Index,
  JoinColumn,
  ManyToOne,
  PrimaryColumn,
  type Relation,
} from 'typeorm';
import type { RevocationReason } from '../../common/revocation-reasons.js';
import { User } from '../../users/user.entity.js';

/**
 * One login session (a token family, RFC 9700 §4.14.2), and the whole of its
 * refresh-token state: nothing is stored per refresh token. The session's
 * tokens are numbered by `generation`; the token of generation g carries
 * (sid, gen = g, jti = SHA-256(token_salt ‖ g)) under the server's refresh
 * key, so presenting it proves both that this server signed it and that it was
 * issued for this session, and a rotation is one conditional UPDATE of this
 * row (see SessionRepository.rotate and rotation.rules.ts).
 *
 * Neither half alone yields a token: a database dump has no signing key, and
 * the signing key alone cannot name a session's tokens without its salt.
 */
@Entity({ name: 'sessions' })
@Check('chk_sessions_idle_within_absolute', '"expires_at" <= "absolute_expires_at"')
@Check('chk_sessions_generation', '"generation" >= 0')
// Read by the resync of each instance's view of ended sessions. No index
// covers a column a rotation writes: its UPDATE stays HOT.
@Index('ix_sessions_revoked_at', ['revokedAt'], { where: '"revoked_at" IS NOT NULL' })
export class Session {
  @PrimaryColumn({ type: 'uuid' })
  id!: string;

  @Index('ix_sessions_user_id')
  @Column({ name: 'user_id', type: 'uuid' })
  userId!: string;

  @ManyToOne(() => User, { onDelete: 'CASCADE' })
  @JoinColumn({ name: 'user_id', foreignKeyConstraintName: 'fk_sessions_user' })
  user?: Relation<User>;

  @Column({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  /** created_at + SESSION_MAX_AGE; rotation never extends it (OWASP ASVS 3.3.2). */
  @Column({ name: 'absolute_expires_at', type: 'timestamptz' })
  absoluteExpiresAt!: Date;

  /** 32 random bytes, fixed for the session's life; never leaves the database. */
  @Column({ name: 'token_salt', type: 'bytea' })
  tokenSalt!: Buffer;

  /** When the current generation's token was issued: its `iat`. */
  @Column({ name: 'rotated_at', type: 'timestamptz' })
  rotatedAt!: Date;

  @Column({ name: 'last_used_at', type: 'timestamptz' })
  lastUsedAt!: Date;

  /**
   * The inactivity timeout, pushed forward by each rotation but never past
   * `absolute_expires_at`; the current token's `exp`. The session is dead after it.
   */
  @Column({ name: 'expires_at', type: 'timestamptz' })
  expiresAt!: Date;

  /** The generation of the newest refresh token issued; 0 at login. */
  @Column({ type: 'integer' })
  generation!: number;

  @Column({ name: 'revoked_at', type: 'timestamptz', nullable: true })
  revokedAt!: Date | null;

  @Column({ name: 'revoked_reason', type: 'varchar', length: 32, nullable: true })
  revokedReason!: RevocationReason | null;

  @Column({ name: 'user_agent', type: 'varchar', length: 512, nullable: true })
  userAgent!: string | null;

  @Column({ type: 'inet', nullable: true })
  ip!: string | null;

  /**
   * The OAuth client that started the session at the token endpoint (its
   * `client_id`, also in its tokens); null for Lineage's own JSON routes.
   */
  @Column({ name: 'client_id', type: 'varchar', length: 64, nullable: true })
  clientId!: string | null;

  /**
   * The JWK thumbprint (RFC 7638) of the key the session is bound to by
   * DPoP (RFC 9449), fixed at its start and named by every one of its tokens
   * (`cnf.jkt`); null for a session not bound to a key.
   */
  @Column({ name: 'dpop_jkt', type: 'varchar', length: 43, nullable: true })
  dpopJkt!: string | null;

  /**
   * A session from before token store v2: its generation 0 is the v1 refresh
   * token the client held at the upgrade (its jti, and its SHA-256), and
   * `legacy_parent_hash` the v1 token that one was rotated from.
   */
  @Column({ name: 'legacy_token_id', type: 'uuid', nullable: true })
  legacyTokenId!: string | null;

  @Column({ name: 'legacy_token_hash', type: 'bytea', nullable: true })
  legacyTokenHash!: Buffer | null;

  @Column({ name: 'legacy_parent_hash', type: 'bytea', nullable: true })
  legacyParentHash!: Buffer | null;
}
