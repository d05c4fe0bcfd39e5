import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Records the key a session is bound to by DPoP (RFC 9449): the JWK
 * thumbprint of RFC 7638, SHA-256 in base64url. Null for every session that
 * exists at the upgrade, which stays unbound. A nullable column with no
 * default is a catalog-only change: no table rewrite, no long lock.
 */
export class SessionKeys1764700000000 implements MigrationInterface {
  name = 'SessionKeys1764700000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE "sessions" ADD COLUMN "dpop_jkt" varchar(43)`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE "sessions" DROP COLUMN "dpop_jkt"`);
  }
}
