import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Records which OAuth client started a session at the token endpoint (its
 * `client_id`), so the user's session list can name the app. Null for the
 * sessions of the JSON routes, including every session that exists at the
 * upgrade. A nullable column with no default is a catalog-only change: no
 * table rewrite, no long lock.
 */
export class SessionClients1764600000000 implements MigrationInterface {
  name = 'SessionClients1764600000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE "sessions" ADD COLUMN "client_id" varchar(64)`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE "sessions" DROP COLUMN "client_id"`);
  }
}
