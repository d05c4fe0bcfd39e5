import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Token store v2: a session is one row, and nothing is stored per refresh
 * token. `token_families` and `refresh_tokens` become `sessions`; a refresh
 * rewrites the session's row and nothing else (see SessionRepository.rotate).
 *
 * Column order and storage serve that one UPDATE:
 * - the four columns a rotation changes sit together, so a HOT update's WAL
 *   record carries only them (PostgreSQL logs the changed middle of the
 *   tuple, not the unchanged prefix and suffix);
 * - none of them is indexed (HOT needs that), which is why housekeeping scans
 *   for idle-expired sessions instead of reading an index;
 * - fillfactor 80 leaves room on each page for the new row versions.
 *
 * Every session live at the upgrade keeps working: the refresh token its
 * client holds (a v1 token, identified by its SHA-256) becomes the session's
 * generation 0, and the v1 token it was rotated from is remembered too, so a
 * client whose last response was lost still gets that same token back. The
 * next refresh issues a v2 token. Generation 0's `exp` is the session's
 * `expires_at`, so re-issuing it yields the same bytes; a family from before
 * absolute lifetimes could hold a token outliving `absolute_expires_at`,
 * which v1 honoured until its `exp`, so the absolute end is moved to it.
 * Migrated sessions' salts carry 244 random bits (two gen_random_uuid()).
 */
export class SessionGenerations1764500000000 implements MigrationInterface {
  name = 'SessionGenerations1764500000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `CREATE TABLE "sessions" (
         "id" uuid NOT NULL,
         "user_id" uuid NOT NULL,
         "created_at" TIMESTAMP WITH TIME ZONE NOT NULL,
         "absolute_expires_at" TIMESTAMP WITH TIME ZONE NOT NULL,
         "token_salt" bytea NOT NULL,
         "rotated_at" TIMESTAMP WITH TIME ZONE NOT NULL,
         "last_used_at" TIMESTAMP WITH TIME ZONE NOT NULL,
         "expires_at" TIMESTAMP WITH TIME ZONE NOT NULL,
         "generation" integer NOT NULL,
         "revoked_at" TIMESTAMP WITH TIME ZONE,
         "revoked_reason" character varying(32),
         "user_agent" character varying(512),
         "ip" inet,
         "legacy_token_id" uuid,
         "legacy_token_hash" bytea,
         "legacy_parent_hash" bytea,
         CONSTRAINT "PK_sessions" PRIMARY KEY ("id"),
         CONSTRAINT "chk_sessions_idle_within_absolute" CHECK ("expires_at" <= "absolute_expires_at"),
         CONSTRAINT "chk_sessions_generation" CHECK ("generation" >= 0)
       ) WITH (fillfactor = 80)`,
    );
    await queryRunner.query(
      `INSERT INTO "sessions"
              ("id", "user_id", "created_at", "absolute_expires_at", "token_salt", "rotated_at",
               "last_used_at", "expires_at", "generation", "revoked_at", "revoked_reason",
               "user_agent", "ip", "legacy_token_id", "legacy_token_hash", "legacy_parent_hash")
       SELECT f."id", f."user_id", f."created_at",
              GREATEST(f."absolute_expires_at", COALESCE(c."expires_at", f."expires_at")),
              uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid()),
              COALESCE(c."issued_at", f."created_at"), f."last_used_at",
              COALESCE(c."expires_at", f."expires_at"), 0,
              f."revoked_at", f."revoked_reason", f."user_agent", f."ip",
              c."id", c."token_hash", p."token_hash"
         FROM "token_families" f
         LEFT JOIN "refresh_tokens" c ON c."family_id" = f."id" AND c."used_at" IS NULL
         LEFT JOIN "refresh_tokens" p ON p."id" = c."parent_id" AND p."replaced_by_id" = c."id"`,
    );
    await queryRunner.query(
      `ALTER TABLE "sessions" ADD CONSTRAINT "fk_sessions_user" FOREIGN KEY ("user_id") REFERENCES "users"("id") ON DELETE CASCADE`,
    );
    await queryRunner.query(`CREATE INDEX "ix_sessions_user_id" ON "sessions" ("user_id")`);
    await queryRunner.query(
      `CREATE INDEX "ix_sessions_revoked_at" ON "sessions" ("revoked_at") WHERE "revoked_at" IS NOT NULL`,
    );

    // The revocation feed follows the table (see RevocationFeed).
    await queryRunner.query(`DROP TABLE "refresh_tokens"`);
    await queryRunner.query(`DROP TABLE "token_families"`);
    await queryRunner.query(
      `ALTER FUNCTION "token_families_announce_end"() RENAME TO "sessions_announce_end"`,
    );
    await queryRunner.query(
      `CREATE TRIGGER "sessions_revoked" AFTER UPDATE OF "revoked_at" ON "sessions"
       FOR EACH ROW WHEN (OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL)
       EXECUTE FUNCTION "sessions_announce_end"()`,
    );
    await queryRunner.query(
      `CREATE TRIGGER "sessions_deleted" AFTER DELETE ON "sessions"
       FOR EACH ROW WHEN (OLD.revoked_at IS NULL AND OLD.expires_at > now())
       EXECUTE FUNCTION "sessions_announce_end"()`,
    );
  }

  /**
   * Back to v1 tables. A v2 refresh token has no row there, so sessions come
   * back without refresh tokens: their access tokens work until they expire,
   * and their users log in again. Live sessions are kept only so the users'
   * session lists stay right until then.
   */
  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TRIGGER "sessions_deleted" ON "sessions"`);
    await queryRunner.query(`DROP TRIGGER "sessions_revoked" ON "sessions"`);
    await queryRunner.query(
      `ALTER FUNCTION "sessions_announce_end"() RENAME TO "token_families_announce_end"`,
    );
    await queryRunner.query(
      `CREATE TABLE "token_families" ("id" uuid NOT NULL, "user_id" uuid NOT NULL, "created_at" TIMESTAMP WITH TIME ZONE NOT NULL, "last_used_at" TIMESTAMP WITH TIME ZONE NOT NULL, "expires_at" TIMESTAMP WITH TIME ZONE NOT NULL, "revoked_at" TIMESTAMP WITH TIME ZONE, "revoked_reason" character varying(32), "user_agent" character varying(512), "ip" inet, "absolute_expires_at" TIMESTAMP WITH TIME ZONE NOT NULL, CONSTRAINT "PK_8cd04c6c4ea12aa00a7e3f494be" PRIMARY KEY ("id"))`,
    );
    await queryRunner.query(
      `INSERT INTO "token_families" ("id", "user_id", "created_at", "last_used_at", "expires_at", "revoked_at", "revoked_reason", "user_agent", "ip", "absolute_expires_at")
       SELECT "id", "user_id", "created_at", "last_used_at", "expires_at", "revoked_at", "revoked_reason", "user_agent", "ip", "absolute_expires_at" FROM "sessions"`,
    );
    await queryRunner.query(
      `CREATE TABLE "refresh_tokens" ("id" uuid NOT NULL, "family_id" uuid NOT NULL, "parent_id" uuid, "token_hash" bytea NOT NULL, "issued_at" TIMESTAMP WITH TIME ZONE NOT NULL, "expires_at" TIMESTAMP WITH TIME ZONE NOT NULL, "used_at" TIMESTAMP WITH TIME ZONE, "replaced_by_id" uuid, CONSTRAINT "REL_5a8e126b7a91b145aa651af550" UNIQUE ("parent_id"), CONSTRAINT "REL_860225ddfe4588a6d26e31b0c2" UNIQUE ("replaced_by_id"), CONSTRAINT "PK_7d8bee0204106019488c4c50ffa" PRIMARY KEY ("id"))`,
    );
    await queryRunner.query(`DROP TABLE "sessions"`);
    await queryRunner.query(
      `CREATE INDEX "ix_token_families_user_id" ON "token_families" ("user_id")`,
    );
    await queryRunner.query(
      `CREATE INDEX "ix_token_families_expires_at" ON "token_families" ("expires_at")`,
    );
    await queryRunner.query(
      `CREATE INDEX "ix_token_families_revoked_at" ON "token_families" ("revoked_at") WHERE "revoked_at" IS NOT NULL`,
    );
    await queryRunner.query(
      `CREATE INDEX "ix_refresh_tokens_family_id" ON "refresh_tokens" ("family_id")`,
    );
    await queryRunner.query(
      `CREATE INDEX "ix_refresh_tokens_expires_at" ON "refresh_tokens" ("expires_at")`,
    );
    await queryRunner.query(
      `CREATE UNIQUE INDEX "uq_refresh_tokens_family_unused" ON "refresh_tokens" ("family_id") WHERE "used_at" IS NULL`,
    );
    await queryRunner.query(
      `ALTER TABLE "token_families" ADD CONSTRAINT "fk_token_families_user" FOREIGN KEY ("user_id") REFERENCES "users"("id") ON DELETE CASCADE`,
    );
    await queryRunner.query(
      `ALTER TABLE "refresh_tokens" ADD CONSTRAINT "fk_refresh_tokens_family" FOREIGN KEY ("family_id") REFERENCES "token_families"("id") ON DELETE CASCADE`,
    );
    await queryRunner.query(
      `ALTER TABLE "refresh_tokens" ADD CONSTRAINT "fk_refresh_tokens_parent" FOREIGN KEY ("parent_id") REFERENCES "refresh_tokens"("id") ON DELETE SET NULL`,
    );
    await queryRunner.query(
      `ALTER TABLE "refresh_tokens" ADD CONSTRAINT "fk_refresh_tokens_replaced_by" FOREIGN KEY ("replaced_by_id") REFERENCES "refresh_tokens"("id") ON DELETE SET NULL`,
    );
    await queryRunner.query(
      `CREATE TRIGGER "token_families_revoked" AFTER UPDATE OF "revoked_at" ON "token_families"
       FOR EACH ROW WHEN (OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL)
       EXECUTE FUNCTION "token_families_announce_end"()`,
    );
    await queryRunner.query(
      `CREATE TRIGGER "token_families_deleted" AFTER DELETE ON "token_families"
       FOR EACH ROW WHEN (OLD.revoked_at IS NULL AND OLD.expires_at > now())
       EXECUTE FUNCTION "token_families_announce_end"()`,
    );
  }
}
