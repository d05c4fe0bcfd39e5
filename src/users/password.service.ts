import { Injectable, type OnModuleInit } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import bcrypt from 'bcrypt';
import type { AppConfig } from '../config/configuration.js';

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

  constructor(config: ConfigService<AppConfig, true>) {
    this.cost = config.get('auth', { infer: true }).bcryptCost;
  }

  async onModuleInit(): Promise<void> {
    this.dummyHash = await bcrypt.hash('lineage-dummy-password', this.cost);
  }

  hash(password: string): Promise<string> {
    return bcrypt.hash(password, this.cost);
  }

  /** Verifies against the stored hash, or burns the same time when there is none. */
  async verify(password: string, hash: string | undefined): Promise<boolean> {
    const matches = await bcrypt.compare(password, hash ?? this.dummyHash);
    return matches && hash !== undefined;
  }
}
