import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The feed behind each instance's in-memory view of ended sessions: every
 * revocation, and every deletion of a live session, is announced on the
 * `lineage_session_ended` channel (delivered at commit), and a deleted live
 * session leaves a tombstone so a resync can find it. Triggers, so no code
 * path (nor a manual UPDATE) can end a session silently.
 */
export class RevocationFeed1764300000000 implements MigrationInterface {
  name = 'RevocationFeed1764300000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `CREATE TABLE "deleted_sessions" ("family_id" uuid NOT NULL, "deleted_at" TIMESTAMP WITH TIME ZONE NOT NULL, CONSTRAINT "PK_deleted_sessions" PRIMARY KEY ("family_id"))`,
    );
    await queryRunner.query(
      `CREATE INDEX "ix_deleted_sessions_deleted_at" ON "deleted_sessions" ("deleted_at")`,
    );
    await queryRunner.query(
      `CREATE FUNCTION "token_families_announce_end"() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         IF TG_OP = 'DELETE' THEN
           INSERT INTO deleted_sessions (family_id, deleted_at) VALUES (OLD.id, now())
             ON CONFLICT (family_id) DO NOTHING;
           PERFORM pg_notify('lineage_session_ended', OLD.id::text);
           RETURN OLD;
         END IF;
         PERFORM pg_notify('lineage_session_ended', NEW.id::text);
         RETURN NEW;
       END $$`,
    );
    await queryRunner.query(
      `CREATE TRIGGER "token_families_revoked" AFTER UPDATE OF "revoked_at" ON "token_families"
       FOR EACH ROW WHEN (OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL)
       EXECUTE FUNCTION "token_families_announce_end"()`,
    );
    // Only sessions that were still live: housekeeping's deletes of long-dead
    // sessions announce nothing.
    await queryRunner.query(
      `CREATE TRIGGER "token_families_deleted" AFTER DELETE ON "token_families"
       FOR EACH ROW WHEN (OLD.revoked_at IS NULL AND OLD.expires_at > now())
       EXECUTE FUNCTION "token_families_announce_end"()`,
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TRIGGER "token_families_deleted" ON "token_families"`);
    await queryRunner.query(`DROP TRIGGER "token_families_revoked" ON "token_families"`);
    await queryRunner.query(`DROP FUNCTION "token_families_announce_end"()`);
    await queryRunner.query(`DROP TABLE "deleted_sessions"`);
  }
}
