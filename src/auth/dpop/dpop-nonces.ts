import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';

/**
 * Server-provided DPoP nonces (RFC 9449 §8, §9), stateless: a nonce is the
 * number of its time window and an HMAC of it under a key derived from
 * JWT_REFRESH_SECRET (RFC 5869 HKDF, its own `info`), so every instance that
 * shares the secret issues and accepts the same nonces without sharing any
 * state. A nonce is accepted in its own window and the next one: it lives
 * between one and two windows, and a proof signed with it can be no older.
 */
export class DpopNonces {
  private readonly key: Buffer;

  constructor(
    secret: string,
    /** Seconds per window. */
    private readonly window: number,
  ) {
    this.key = Buffer.from(hkdfSync('sha256', secret, '', 'lineage dpop nonce v1', 32));
  }

  /** The nonce to hand out now (the `DPoP-Nonce` header). */
  current(now: Date): string {
    return this.nonceOf(this.windowOf(now));
  }

  /** Whether `nonce` is this window's or the previous one's. */
  accepts(nonce: string, now: Date): boolean {
    const presented = Buffer.from(nonce, 'base64url');
    if (presented.length !== NONCE_BYTES) return false;
    const window = presented.readUInt32BE(0);
    const current = this.windowOf(now);
    if (window !== current && window !== current - 1) return false;
    return timingSafeEqual(presented, Buffer.from(this.nonceOf(window), 'base64url'));
  }

  private windowOf(now: Date): number {
    return Math.floor(now.getTime() / 1000 / this.window) >>> 0;
  }

  private nonceOf(window: number): string {
    const counter = Buffer.alloc(4);
    counter.writeUInt32BE(window);
    const mac = createHmac('sha256', this.key).update(counter).digest().subarray(0, MAC_BYTES);
    return Buffer.concat([counter, mac]).toString('base64url');
  }
}

const MAC_BYTES = 16;
const NONCE_BYTES = 4 + MAC_BYTES;
