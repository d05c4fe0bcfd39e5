import {
  HttpStatus,
  Injectable,
  type OnApplicationShutdown,
  type OnModuleInit,
} from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { availableParallelism } from 'node:os';
import type { AppConfig } from '../config/configuration.js';
import { BcryptWorkers, BcryptWorkersClosedError } from './bcrypt-workers.js';
import { AppError, ErrorCode } from '../common/errors.js';

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
 * bcrypt hashing, always off the event loop's thread.
 */
@Injectable()
export class PasswordService implements OnModuleInit, OnApplicationShutdown {
  private readonly cost: number;
  // Compared against when the username does not exist, so an unknown user
  // costs the same bcrypt work as a wrong password (OWASP ASVS 2.2 / no enumeration).
  private dummyHash = '';
  // One low-priority bcrypt thread per core (see BcryptWorkers): logins use
  // every core when nothing else runs, and yield to other requests when
  // something does. Beyond that, logins queue.
  private readonly workers = new BcryptWorkers(availableParallelism());

  constructor(config: ConfigService<AppConfig, true>) {
    this.cost = config.get('auth', { infer: true }).bcryptCost;
  }

  async onModuleInit(): Promise<void> {
    this.dummyHash = await this.workers.hash('lineage-dummy-password', this.cost);
  }

  async onApplicationShutdown(): Promise<void> {
    await this.workers.close();
  }

  hash(password: string): Promise<string> {
    return this.workers.hash(normalizePassword(password), this.cost).catch(unavailableWhenClosed);
  }

  /**
   * Verifies against the stored hash, or burns the same time when there is
   * none. Input over bcrypt's 72 bytes never matches: bcrypt would compare
   * only its first 72 bytes, so "the password plus anything" would pass.
   */
  async verify(password: string, hash: string | undefined): Promise<boolean> {
    const normalized = normalizePassword(password);
    const fits = Buffer.byteLength(normalized, 'utf8') <= PASSWORD_MAX_BYTES;
    const matches = await this.workers
      .compare(fits ? normalized : '', hash ?? this.dummyHash)
      .catch(unavailableWhenClosed);
    return matches && fits && hash !== undefined;
  }
}

/** A login caught by shutdown is told to retry (503), not that the server failed. */
function unavailableWhenClosed(error: unknown): never {
  if (error instanceof BcryptWorkersClosedError) {
    throw new AppError(
      HttpStatus.SERVICE_UNAVAILABLE,
      ErrorCode.ServiceUnavailable,
      'Service is shutting down; retry shortly',
      undefined,
      5,
    );
  }
  throw error;
}
