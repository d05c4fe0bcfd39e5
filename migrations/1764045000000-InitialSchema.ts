import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Users, token families (one per login), their refresh tokens, and todos. */
export class InitialSchema1764045000000 implements MigrationInterface {
  name = 'InitialSchema1764045000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `CREATE TABLE "users" ("id" uuid NOT NULL, "username" character varying(32) NOT NULL, "username_key" character varying(32) NOT NULL, "password_hash" character varying(100) NOT NULL, "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "PK_a3ffb1c0c8416b9fc6f907b7433" PRIMARY KEY ("id"))`,
    );
    await queryRunner.query(
      `CREATE UNIQUE INDEX "uq_users_username_key" ON "users" ("username_key")`,
    );

    await queryRunner.query(
      `CREATE TABLE "token_families" ("id" uuid NOT NULL, "user_id" uuid NOT NULL, "created_at" TIMESTAMP WITH TIME ZONE NOT NULL, "last_used_at" TIMESTAMP WITH TIME ZONE NOT NULL, "expires_at" TIMESTAMP WITH TIME ZONE NOT NULL, "revoked_at" TIMESTAMP WITH TIME ZONE, "revoked_reason" character varying(32), "user_agent" character varying(512), "ip" inet, CONSTRAINT "PK_8cd04c6c4ea12aa00a7e3f494be" PRIMARY KEY ("id"))`,
    );
    await queryRunner.query(
      `CREATE INDEX "ix_token_families_user_id" ON "token_families" ("user_id")`,
    );

    await queryRunner.query(
      `CREATE TABLE "refresh_tokens" ("id" uuid NOT NULL, "family_id" uuid NOT NULL, "parent_id" uuid, "token_hash" bytea NOT NULL, "issued_at" TIMESTAMP WITH TIME ZONE NOT NULL, "expires_at" TIMESTAMP WITH TIME ZONE NOT NULL, "used_at" TIMESTAMP WITH TIME ZONE, "replaced_by_id" uuid, CONSTRAINT "REL_5a8e126b7a91b145aa651af550" UNIQUE ("parent_id"), CONSTRAINT "REL_860225ddfe4588a6d26e31b0c2" UNIQUE ("replaced_by_id"), CONSTRAINT "PK_7d8bee0204106019488c4c50ffa" PRIMARY KEY ("id"))`,
    );
    await queryRunner.query(
      `CREATE INDEX "ix_refresh_tokens_family_id" ON "refresh_tokens" ("family_id")`,
    );
    // One unused (current) token per family: the database itself refuses a fork.
    await queryRunner.query(
      `CREATE UNIQUE INDEX "uq_refresh_tokens_family_unused" ON "refresh_tokens" ("family_id") WHERE "used_at" IS NULL`,
    );

    await queryRunner.query(
      `CREATE TABLE "todos" ("id" uuid NOT NULL, "user_id" uuid NOT NULL, "title" character varying(200) NOT NULL, "description" character varying(2000), "completed" boolean NOT NULL DEFAULT false, "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "PK_ca8cafd59ca6faaf67995344225" PRIMARY KEY ("id"))`,
    );
    await queryRunner.query(
      `CREATE INDEX "ix_todos_user_created" ON "todos" ("user_id", "created_at", "id")`,
    );

    await queryRunner.query(
      `ALTER TABLE "token_families" ADD CONSTRAINT "fk_token_families_user" FOREIGN KEY ("user_id") REFERENCES "users"("id") ON DELETE CASCADE ON UPDATE NO ACTION`,
    );
    await queryRunner.query(
      `ALTER TABLE "refresh_tokens" ADD CONSTRAINT "fk_refresh_tokens_family" FOREIGN KEY ("family_id") REFERENCES "token_families"("id") ON DELETE CASCADE ON UPDATE NO ACTION`,
    );
    await queryRunner.query(
      `ALTER TABLE "refresh_tokens" ADD CONSTRAINT "fk_refresh_tokens_parent" FOREIGN KEY ("parent_id") REFERENCES "refresh_tokens"("id") ON DELETE SET NULL ON UPDATE NO ACTION`,
    );
    await queryRunner.query(
      `ALTER TABLE "refresh_tokens" ADD CONSTRAINT "fk_refresh_tokens_replaced_by" FOREIGN KEY ("replaced_by_id") REFERENCES "refresh_tokens"("id") ON DELETE SET NULL ON UPDATE NO ACTION`,
    );
    await queryRunner.query(
      `ALTER TABLE "todos" ADD CONSTRAINT "fk_todos_user" FOREIGN KEY ("user_id") REFERENCES "users"("id") ON DELETE CASCADE ON UPDATE NO ACTION`,
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE "todos"`);
    await queryRunner.query(`DROP TABLE "refresh_tokens"`);
    await queryRunner.query(`DROP TABLE "token_families"`);
    await queryRunner.query(`DROP TABLE "users"`);
  }
}
