import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Absolute session lifetime, indexes for housekeeping, and the append-only
 * audit trail of auth events.
 */
export class SessionsAndAudit1764230000000 implements MigrationInterface {
  name = 'SessionsAndAudit1764230000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    // Existing sessions get the default 30-day absolute lifetime from their creation.
    await queryRunner.query(
      `ALTER TABLE "token_families" ADD "absolute_expires_at" TIMESTAMP WITH TIME ZONE`,
    );
    await queryRunner.query(
      `UPDATE "token_families" SET "absolute_expires_at" = "created_at" + interval '30 days'`,
    );
    await queryRunner.query(
      `ALTER TABLE "token_families" ALTER COLUMN "absolute_expires_at" SET NOT NULL`,
    );
    await queryRunner.query(
      `CREATE INDEX "ix_token_families_revoked_at" ON "token_families" ("revoked_at") WHERE "revoked_at" IS NOT NULL`,
    );
    await queryRunner.query(
      `CREATE INDEX "ix_token_families_expires_at" ON "token_families" ("expires_at")`,
    );
    await queryRunner.query(
      `CREATE INDEX "ix_refresh_tokens_expires_at" ON "refresh_tokens" ("expires_at")`,
    );

    await queryRunner.query(
      `CREATE TABLE "auth_events" ("id" bigint GENERATED ALWAYS AS IDENTITY NOT NULL, "occurred_at" TIMESTAMP WITH TIME ZONE NOT NULL, "type" character varying(32) NOT NULL, "user_id" uuid, "session_id" uuid, "reason" character varying(32), "ip" inet, "user_agent" character varying(512), CONSTRAINT "PK_ab929cc6084ffb3fd795bd983c0" PRIMARY KEY ("id"))`,
    );
    await queryRunner.query(
      `CREATE INDEX "ix_auth_events_occurred_at" ON "auth_events" ("occurred_at")`,
    );
    await queryRunner.query(
      `CREATE INDEX "ix_auth_events_user_id" ON "auth_events" ("user_id", "id")`,
    );
    await queryRunner.query(
      `ALTER TABLE "auth_events" ADD CONSTRAINT "fk_auth_events_user" FOREIGN KEY ("user_id") REFERENCES "users"("id") ON DELETE CASCADE ON UPDATE NO ACTION`,
    );
    // Append-only: the trail cannot be rewritten, even by the application.
    // Deletes stay possible for retention and for deleting the account.
    await queryRunner.query(
      `CREATE FUNCTION "auth_events_append_only"() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         RAISE EXCEPTION 'auth_events is append-only';
       END $$`,
    );
    await queryRunner.query(
      `CREATE TRIGGER "auth_events_no_update" BEFORE UPDATE ON "auth_events"
       FOR EACH ROW EXECUTE FUNCTION "auth_events_append_only"()`,
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE "auth_events"`);
    await queryRunner.query(`DROP FUNCTION "auth_events_append_only"()`);
    await queryRunner.query(`DROP INDEX "public"."ix_refresh_tokens_expires_at"`);
    await queryRunner.query(`DROP INDEX "public"."ix_token_families_expires_at"`);
    await queryRunner.query(`DROP INDEX "public"."ix_token_families_revoked_at"`);
    await queryRunner.query(`ALTER TABLE "token_families" DROP COLUMN "absolute_expires_at"`);
  }
}
