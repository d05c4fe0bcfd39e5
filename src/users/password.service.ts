import { Injectable, type OnModuleInit } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { availableParallelism } from 'node:os';
import bcrypt from 'bcrypt';
import type { AppConfig } from '../config/configuration.js';

/** bcrypt reads only the first 72 bytes of its input. */
export const PASSWORD_MAX_BYTES = 72;

/**
 * Passwords are compared as Unicode NFC, so the same characters typed on
 * different systems (composed "é" or "e" + combining accent) are one
 * password (NIST SP 800-63B §5.1.1.2).
 */
export function normalizePassword(password: string): string {
  return password.normalize('NFC');
}

/**
 * bcrypt hashing, always through the async API so the work runs on libuv's
 * thread pool and never blocks the event loop.
 */
@Injectable()
export class PasswordService implements OnModuleInit {
  private readonly cost: number;
  // Compared against when the username does not exist, so an unknown user
  // costs the same bcrypt work as a wrong password (OWASP ASVS 2.2 / no enumeration).
  private dummyHash = '';
  // At most one bcrypt computation per core at a time. libuv's pool has 4
  // threads; four hashes on two cores would starve the event loop's thread,
  // and every other request's latency with it. Logins beyond that queue here.
  private readonly slots = new Slots(availableParallelism());

  constructor(config: ConfigService<AppConfig, true>) {
    this.cost = config.get('auth', { infer: true }).bcryptCost;
  }

  async onModuleInit(): Promise<void> {
    this.dummyHash = await bcrypt.hash('lineage-dummy-password', this.cost);
  }

  hash(password: string): Promise<string> {
    return this.slots.run(() => bcrypt.hash(normalizePassword(password), this.cost));
  }

  /**
   * Verifies against the stored hash, or burns the same time when there is
   * none. Input over bcrypt's 72 bytes never matches: bcrypt would compare
   * only its first 72 bytes, so "the password plus anything" would pass.
   */
  async verify(password: string, hash: string | undefined): Promise<boolean> {
    const normalized = normalizePassword(password);
    const fits = Buffer.byteLength(normalized, 'utf8') <= PASSWORD_MAX_BYTES;
    const matches = await this.slots.run(() =>
      bcrypt.compare(fits ? normalized : '', hash ?? this.dummyHash),
    );
    return matches && fits && hash !== undefined;
  }
}

/** A counting semaphore: runs at most `size` tasks at once, the rest in arrival order. */
class Slots {
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly size: number) {}

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.active >= this.size) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.active += 1;
    try {
      return await task();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.active -= 1;
    }
  }
}
