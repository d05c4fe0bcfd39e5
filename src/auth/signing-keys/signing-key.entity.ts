import { Column, Entity, PrimaryColumn } from 'typeorm';

/** The public half of an ES256 key as published in the JWKS (RFC 7517, RFC 7518 §6.2.1). */
export interface PublicEcJwk {
  kty: 'EC';
  crv: 'P-256';
  x: string;
  y: string;
}

/**
 * A key that signs access tokens. Each key signs from `activeFrom` until a
 * newer key becomes active, and verifies (and is published) until every token
 * it can have signed has expired; see key-set.ts. The private half is stored
 * encrypted (key-encryption.ts).
 */
@Entity({ name: 'signing_keys' })
export class SigningKey {
  /** RFC 7638 thumbprint of the public key: the JWT `kid` header. */
  @PrimaryColumn({ type: 'text' })
  kid!: string;

  @Column({ type: 'text' })
  alg!: string;

  @Column({ name: 'public_jwk', type: 'jsonb' })
  publicJwk!: PublicEcJwk;

  /** PKCS#8 DER, AES-256-GCM encrypted under SIGNING_KEYS_SECRET. */
  @Column({ name: 'private_key', type: 'bytea' })
  privateKey!: Buffer;

  @Column({ name: 'created_at', type: 'timestamptz', default: () => 'now()' })
  createdAt!: Date;

  /** When it starts signing; later than `createdAt` so verifiers see it in the JWKS first. */
  @Column({ name: 'active_from', type: 'timestamptz' })
  activeFrom!: Date;

  /** Set when the key is withdrawn early (compromise): it then neither signs nor verifies. */
  @Column({ name: 'revoked_at', type: 'timestamptz', nullable: true })
  revokedAt!: Date | null;
}
