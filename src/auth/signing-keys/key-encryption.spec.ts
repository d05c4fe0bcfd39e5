import { generateKeyPairSync } from 'node:crypto';
import { KeyDecryptionError, KeyEncryption } from './key-encryption.js';

const SECRET = 'signing-keys-secret-for-tests-0123456789abcdef';
const OTHER_SECRET = 'another-signing-keys-secret-0123456789abcdef';
const KID = 'kid-NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs';
const OTHER_KID = 'kid-other-2x8e6_oQ3uQ6vKz3L0Q9xgq1aLrQy6H0kWbV';

// Layout: format (1) ‖ IV (12) ‖ tag (16) ‖ ciphertext.
const HEADER_BYTES = 1 + 12 + 16;

const privateDer = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({
  format: 'der',
  type: 'pkcs8',
});

function decryptionErrorOf(fn: () => unknown): KeyDecryptionError {
  try {
    fn();
  } catch (error) {
    if (error instanceof KeyDecryptionError) return error;
    throw error;
  }
  throw new Error('expected a KeyDecryptionError');
}

function flipped(sealed: Buffer, index: number): Buffer {
  const copy = Buffer.from(sealed);
  copy[index] ^= 0x01;
  return copy;
}

describe('KeyEncryption', () => {
  it('decrypts what it encrypted (a real PKCS#8 private key)', () => {
    const encryption = new KeyEncryption(SECRET);
    const sealed = encryption.encrypt(KID, privateDer);
    expect(encryption.decrypt(KID, sealed).equals(privateDer)).toBe(true);
  });

  it('decrypts with another instance built from the same secret', () => {
    const sealed = new KeyEncryption(SECRET).encrypt(KID, privateDer);
    expect(new KeyEncryption(SECRET).decrypt(KID, sealed).equals(privateDer)).toBe(true);
  });

  it('round-trips an empty plaintext', () => {
    const encryption = new KeyEncryption(SECRET);
    const sealed = encryption.encrypt(KID, Buffer.alloc(0));
    expect(sealed).toHaveLength(HEADER_BYTES);
    expect(encryption.decrypt(KID, sealed)).toHaveLength(0);
  });

  it('writes format byte 1, then IV and tag, then a body as long as the plaintext', () => {
    const sealed = new KeyEncryption(SECRET).encrypt(KID, privateDer);
    expect(sealed[0]).toBe(1);
    expect(sealed).toHaveLength(HEADER_BYTES + privateDer.length);
  });

  it('uses a fresh IV each time: the same plaintext never gives the same ciphertext', () => {
    const encryption = new KeyEncryption(SECRET);
    const sealed = Array.from({ length: 8 }, () => encryption.encrypt(KID, privateDer));
    expect(new Set(sealed.map((s) => s.toString('hex'))).size).toBe(sealed.length);
    expect(new Set(sealed.map((s) => s.subarray(1, 13).toString('hex'))).size).toBe(sealed.length);
    for (const s of sealed) expect(encryption.decrypt(KID, s).equals(privateDer)).toBe(true);
  });

  it('does not contain the plaintext, nor any 16-byte run of it', () => {
    const sealed = new KeyEncryption(SECRET).encrypt(KID, privateDer);
    expect(sealed.includes(privateDer)).toBe(false);
    for (let start = 0; start + 16 <= privateDer.length; start += 8) {
      expect(sealed.includes(privateDer.subarray(start, start + 16))).toBe(false);
    }
    const text = Buffer.from('a readable private key, not hidden at all', 'utf8');
    expect(new KeyEncryption(SECRET).encrypt(KID, text).includes(text)).toBe(false);
  });

  it('refuses another secret with a KeyDecryptionError naming the kid', () => {
    const sealed = new KeyEncryption(SECRET).encrypt(KID, privateDer);
    const error = decryptionErrorOf(() => new KeyEncryption(OTHER_SECRET).decrypt(KID, sealed));
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe('KeyDecryptionError');
    expect(error.kid).toBe(KID);
    expect(error.message).toContain(KID);
  });

  it('binds the ciphertext to its kid: moved to another kid, it does not decrypt', () => {
    const encryption = new KeyEncryption(SECRET);
    const sealed = encryption.encrypt(KID, privateDer);
    const error = decryptionErrorOf(() => encryption.decrypt(OTHER_KID, sealed));
    expect(error.kid).toBe(OTHER_KID);
    expect(error.message).toContain(OTHER_KID);
    // The same bytes still decrypt under their own kid.
    expect(encryption.decrypt(KID, sealed).equals(privateDer)).toBe(true);
  });

  it('refuses a kid that differs in one character', () => {
    const encryption = new KeyEncryption(SECRET);
    const sealed = encryption.encrypt('kid-a', privateDer);
    expect(() => encryption.decrypt('kid-b', sealed)).toThrow(KeyDecryptionError);
    expect(() => encryption.decrypt('kid-a ', sealed)).toThrow(KeyDecryptionError);
  });

  describe('tampering', () => {
    const encryption = new KeyEncryption(SECRET);
    const sealed = encryption.encrypt(KID, privateDer);

    it.each([
      ['the format byte', 0],
      ['the first IV byte', 1],
      ['the last IV byte', 12],
      ['the first tag byte', 13],
      ['the last tag byte', 28],
      ['the first body byte', 29],
      ['the last body byte', HEADER_BYTES + privateDer.length - 1],
    ])('refuses one flipped bit in %s (byte %p)', (_label, index) => {
      expect(() => encryption.decrypt(KID, flipped(sealed, index))).toThrow(KeyDecryptionError);
    });

    it('refuses one flipped bit at every position', () => {
      for (let index = 0; index < sealed.length; index++) {
        const error = decryptionErrorOf(() => encryption.decrypt(KID, flipped(sealed, index)));
        expect(error.kid).toBe(KID);
      }
      // And the original still decrypts: flipped() works on a copy.
      expect(encryption.decrypt(KID, sealed).equals(privateDer)).toBe(true);
    });

    it.each([
      ['empty', 0],
      ['the format byte only', 1],
      ['cut inside the IV', 7],
      ['cut inside the tag', 20],
      ['the header without a body', HEADER_BYTES],
      ['missing its last byte', HEADER_BYTES + privateDer.length - 1],
      ['missing half its body', HEADER_BYTES + Math.floor(privateDer.length / 2)],
    ])('refuses truncated input: %s (%p bytes)', (_label, length) => {
      expect(() => encryption.decrypt(KID, sealed.subarray(0, length))).toThrow(KeyDecryptionError);
    });

    it('refuses extra bytes appended to the body', () => {
      const longer = Buffer.concat([sealed, Buffer.from([0])]);
      expect(() => encryption.decrypt(KID, longer)).toThrow(KeyDecryptionError);
    });

    it('refuses an unknown format byte even if the rest is intact', () => {
      for (const format of [0, 2, 0xff]) {
        const other = Buffer.from(sealed);
        other[0] = format;
        expect(() => encryption.decrypt(KID, other)).toThrow(KeyDecryptionError);
      }
    });
  });

  it('never puts the secret in the error message', () => {
    const sealed = new KeyEncryption(SECRET).encrypt(KID, privateDer);
    const cases: [KeyEncryption, string, Buffer][] = [
      [new KeyEncryption(OTHER_SECRET), KID, sealed],
      [new KeyEncryption(SECRET), OTHER_KID, sealed],
      [new KeyEncryption(SECRET), KID, sealed.subarray(0, 5)],
      [new KeyEncryption(SECRET), KID, flipped(sealed, 40)],
    ];
    for (const [encryption, kid, input] of cases) {
      const error = decryptionErrorOf(() => encryption.decrypt(kid, input));
      for (const secret of [SECRET, OTHER_SECRET]) {
        expect(error.message).not.toContain(secret);
        expect(String(error.stack)).not.toContain(secret);
        expect(JSON.stringify(error)).not.toContain(secret);
      }
    }
  });
});
