import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPair,
  type KeyObject,
} from 'node:crypto';
import { promisify } from 'node:util';
import type { DataSource, EntityManager } from 'typeorm';
import { KeyEncryption } from './key-encryption.js';
import { keyStatuses } from './key-set.js';
import { type PublicEcJwk, SigningKey } from './signing-key.entity.js';

/**
 * ES256 (ECDSA P-256, RFC 7518 §3.4). EdDSA would be the other choice, but
 * jsonwebtoken, the verifier under passport-jwt and @nestjs/jwt, cannot
 * verify it (auth0/node-jsonwebtoken#987), and ES256 is what every JOSE
 * library and resource server verifies.
 */
export const SIGNING_ALG = 'ES256';

// Arbitrary constant: instances starting together, the CLI and a revocation
// change the key set one at a time.
const SIGNING_KEYS_LOCK = 7_356_103;

const generateEcKeyPair = promisify(generateKeyPair);

/** RFC 7638 JWK thumbprint (SHA-256, base64url): a stable, meaningful `kid`. */
export function jwkThumbprint(jwk: PublicEcJwk): string {
  const canonical = JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y });
  return createHash('sha256').update(canonical, 'utf8').digest('base64url');
}

export function publicKeyOf(key: SigningKey): KeyObject {
  return createPublicKey({ key: { ...key.publicJwk }, format: 'jwk' });
}

/** Reads and writes the `signing_keys` table; shared by the application and the keys CLI. */
export class SigningKeyStore {
  private readonly encryption: KeyEncryption;

  constructor(
    private readonly dataSource: DataSource,
    secret: string,
  ) {
    this.encryption = new KeyEncryption(secret);
  }

  async all(): Promise<SigningKey[]> {
    return this.dataSource.getRepository(SigningKey).find();
  }

  privateKeyOf(key: SigningKey): KeyObject {
    return createPrivateKey({
      key: this.encryption.decrypt(key.kid, key.privateKey),
      format: 'der',
      type: 'pkcs8',
    });
  }

  /**
   * Makes sure a key is active: the first start of the first instance
   * creates one; the others, waiting on the lock, find it.
   */
  async ensureCurrent(now: Date): Promise<SigningKey | null> {
    return this.locked(async (manager) => {
      const keys = await manager.getRepository(SigningKey).find();
      if (keyStatuses(keys, now, 0).some((status) => status.state === 'current')) return null;
      return this.insert(manager, now, now);
    });
  }

  /**
   * Adds a key that takes over signing at `activeFrom`. Refuses when the
   * configured secret cannot decrypt the current key: a key created under
   * another secret could not be used by the instances.
   */
  async rotate(now: Date, activeFrom: Date): Promise<SigningKey> {
    return this.locked(async (manager) => {
      const keys = await manager.getRepository(SigningKey).find();
      this.assertSecretOpensCurrent(keys, now);
      return this.insert(manager, now, activeFrom);
    });
  }

  /**
   * Withdraws a key at once (it leaked): tokens it signed stop verifying
   * within each instance's reload interval. When it was the current key, a
   * new key takes over immediately, in the same transaction. Refuses, before
   * changing anything, when the configured secret cannot decrypt the current
   * key: the replacement would be encrypted under a secret no instance holds,
   * and every instance would be left without a key to sign with.
   */
  async revoke(
    kid: string,
    now: Date,
  ): Promise<{ revoked: boolean; replacement: SigningKey | null }> {
    return this.locked(async (manager) => {
      const repository = manager.getRepository(SigningKey);
      const keys = await repository.find();
      const target = keys.find((key) => key.kid === kid);
      if (!target || target.revokedAt !== null) return { revoked: false, replacement: null };
      this.assertSecretOpensCurrent(keys, now);
      target.revokedAt = now;
      await repository.update({ kid }, { revokedAt: now });
      const hasCurrent = keyStatuses(keys, now, 0).some((status) => status.state === 'current');
      return {
        revoked: true,
        replacement: hasCurrent ? null : await this.insert(manager, now, now),
      };
    });
  }

  /** Deletes keys that can no longer verify anything (expired or revoked), private halves included. */
  async prune(now: Date, retainMs: number): Promise<number> {
    return this.locked(async (manager) => {
      const repository = manager.getRepository(SigningKey);
      const gone = keyStatuses(await repository.find(), now, retainMs)
        .filter((status) => status.state === 'expired' || status.state === 'revoked')
        .map((status) => status.key.kid);
      if (gone.length > 0) await repository.delete(gone);
      return gone.length;
    });
  }

  /**
   * Throws KeyDecryptionError when the current key (the one every instance
   * signs with) cannot be decrypted with this store's secret: whoever holds
   * another secret must not add or replace keys, which the instances could
   * not use. Nothing current (no key yet) leaves nothing to compare with.
   */
  private assertSecretOpensCurrent(keys: SigningKey[], now: Date): void {
    const current = keyStatuses(keys, now, 0).find((status) => status.state === 'current');
    if (current) this.privateKeyOf(current.key);
  }

  private async insert(manager: EntityManager, now: Date, activeFrom: Date): Promise<SigningKey> {
    const { publicKey, privateKey } = await generateEcKeyPair('ec', { namedCurve: 'P-256' });
    const { x, y } = publicKey.export({ format: 'jwk' });
    const publicJwk: PublicEcJwk = { kty: 'EC', crv: 'P-256', x: x!, y: y! };
    const kid = jwkThumbprint(publicJwk);
    const key = manager.getRepository(SigningKey).create({
      kid,
      alg: SIGNING_ALG,
      publicJwk,
      privateKey: this.encryption.encrypt(kid, privateKey.export({ format: 'der', type: 'pkcs8' })),
      createdAt: now,
      activeFrom,
      revokedAt: null,
    });
    return manager.getRepository(SigningKey).save(key);
  }

  private async locked<T>(work: (manager: EntityManager) => Promise<T>): Promise<T> {
    return this.dataSource.transaction(async (manager) => {
      await manager.query('SELECT pg_advisory_xact_lock($1)', [SIGNING_KEYS_LOCK]);
      return work(manager);
    });
  }
}
