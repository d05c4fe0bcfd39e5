import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';

// Format byte, so a future scheme can be told apart from this one.
const FORMAT_V1 = 1;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const HKDF_INFO = 'lineage signing-key encryption v1';

/** Thrown when a stored private key cannot be decrypted with the configured secret. */
export class KeyDecryptionError extends Error {
  constructor(readonly kid: string) {
    super(
      `signing key ${kid} cannot be decrypted with SIGNING_KEYS_SECRET (was it created with another secret?)`,
    );
    this.name = 'KeyDecryptionError';
  }
}

/**
 * Encrypts signing keys' private halves at rest (OWASP ASVS 6.4.1: keys
 * protected by a key kept outside the data store). AES-256-GCM under a key
 * derived from SIGNING_KEYS_SECRET with HKDF-SHA256; the key id is the
 * associated data, so a ciphertext moved to another row does not decrypt.
 *
 * Layout: format (1 byte) ‖ IV (12) ‖ tag (16) ‖ ciphertext.
 */
export class KeyEncryption {
  private readonly key: Buffer;

  constructor(secret: string) {
    this.key = Buffer.from(hkdfSync('sha256', Buffer.from(secret, 'utf8'), '', HKDF_INFO, 32));
  }

  encrypt(kid: string, plaintext: Buffer): Buffer {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(Buffer.from(kid, 'utf8'));
    const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    return Buffer.concat([Buffer.from([FORMAT_V1]), iv, cipher.getAuthTag(), body]);
  }

  decrypt(kid: string, sealed: Buffer): Buffer {
    if (sealed.length < 1 + IV_BYTES + TAG_BYTES || sealed[0] !== FORMAT_V1) {
      throw new KeyDecryptionError(kid);
    }
    const iv = sealed.subarray(1, 1 + IV_BYTES);
    const tag = sealed.subarray(1 + IV_BYTES, 1 + IV_BYTES + TAG_BYTES);
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.key, iv, { authTagLength: TAG_BYTES });
      decipher.setAAD(Buffer.from(kid, 'utf8'));
      decipher.setAuthTag(tag);
      return Buffer.concat([
        decipher.update(sealed.subarray(1 + IV_BYTES + TAG_BYTES)),
        decipher.final(),
      ]);
    } catch {
      throw new KeyDecryptionError(kid);
    }
  }
}
