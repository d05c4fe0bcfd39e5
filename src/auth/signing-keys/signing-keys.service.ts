import type { KeyObject } from 'node:crypto';
import { Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import type { AppConfig } from '../../config/configuration.js';
import { KeyDecryptionError } from './key-encryption.js';
import { keyStatuses, verifies } from './key-set.js';
import type { PublicEcJwk } from './signing-key.entity.js';
import { publicKeyOf, SIGNING_ALG, SigningKeyStore } from './signing-key.store.js';

// Clocks of instances and database differ a little; keys verify this much longer.
const SKEW_MS = 5_000;
// A token with an unknown `kid` triggers a reload at most this often, so
// made-up key ids cannot turn into a query per request.
const UNKNOWN_KID_RELOAD_MS = 1_000;

export interface PublishedJwk extends PublicEcJwk {
  kid: string;
  alg: string;
  use: 'sig';
}

export interface Signer {
  kid: string;
  privateKey: KeyObject;
}

interface LoadedKey {
  kid: string;
  jwk: PublishedJwk;
  publicKey: KeyObject;
  activeFrom: number;
  /** Epoch ms; Infinity while the key signs or waits to. */
  verifiesUntil: number;
  privateKey: KeyObject | null;
}

/**
 * This instance's copy of the access-token signing keys (see key-set.ts for
 * their lifecycle). Loaded at start, reloaded every SIGNING_KEYS_RELOAD_INTERVAL
 * and when a token names a key it does not know; a pending key's private half
 * is decrypted ahead, so every instance switches to it at its `activeFrom`.
 */
@Injectable()
export class SigningKeys implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(SigningKeys.name);
  private readonly store: SigningKeyStore;
  private readonly reloadMs: number;
  /** How long a superseded key keeps verifying; the CLI's `list` uses the same figure. */
  readonly retainMs: number;
  private keys: LoadedKey[] = [];
  private byKid = new Map<string, LoadedKey>();
  private jwks: { keys: PublishedJwk[] } = { keys: [] };
  private lastReload = 0;
  private reloading: Promise<void> | null = null;
  private readonly pruneMs: number;
  private timers: NodeJS.Timeout[] = [];
  private readonly withdrawnListeners: (() => void)[] = [];

  constructor(config: ConfigService<AppConfig, true>, @InjectDataSource() dataSource: DataSource) {
    const auth = config.get('auth', { infer: true });
    this.store = new SigningKeyStore(dataSource, auth.signingKeysSecret);
    this.reloadMs = auth.signingKeysReloadInterval * 1000;
    this.retainMs = signingKeyRetainMs(auth.accessTokenTtl, auth.signingKeysReloadInterval);
    this.pruneMs = config.get('housekeeping', { infer: true }).interval * 1000;
  }

  async onModuleInit(): Promise<void> {
    // Creates the first key when there is none (see load).
    await this.reload();
    const signer = this.signer();
    if (!signer) {
      // The current key was made with another SIGNING_KEYS_SECRET: refuse to start.
      throw new Error('No usable signing key: check SIGNING_KEYS_SECRET');
    }
    this.logger.log(`Signing access tokens with key ${signer.kid}`);
    this.timers = [
      setInterval(() => void this.reloadLogged(), this.reloadMs),
      // With the rest of the cleanup's cadence (HOUSEKEEPING_INTERVAL).
      setInterval(() => void this.pruneLogged(), this.pruneMs),
    ];
    // A pending reload or prune never keeps the process alive on shutdown.
    for (const timer of this.timers) timer.unref();
  }

  onApplicationShutdown(): void {
    for (const timer of this.timers) clearInterval(timer);
  }

  /** The key that signs now: the newest active key this instance can decrypt. */
  signer(now = Date.now()): Signer | null {
    for (let i = this.keys.length - 1; i >= 0; i--) {
      const key = this.keys[i];
      if (key.activeFrom <= now && key.privateKey)
        return { kid: key.kid, privateKey: key.privateKey };
    }
    return null;
  }

  /** The public key for `kid`, if it is one of ours and still verifies. */
  verificationKey(kid: string, now = Date.now()): KeyObject | undefined {
    const key = this.byKid.get(kid);
    return key && key.verifiesUntil > now ? key.publicKey : undefined;
  }

  /** Like verificationKey, reloading first (rate-limited) when the kid is unknown. */
  async resolveVerificationKey(kid: string): Promise<KeyObject | undefined> {
    const known = this.verificationKey(kid);
    if (known || this.byKid.has(kid)) return known;
    if (Date.now() - this.lastReload >= UNKNOWN_KID_RELOAD_MS) await this.reloadLogged();
    return this.verificationKey(kid);
  }

  /**
   * Calls `listener` whenever a key leaves the set (expired or withdrawn), so
   * whoever remembers verifications can forget those the key made.
   */
  onKeysWithdrawn(listener: () => void): void {
    this.withdrawnListeners.push(listener);
  }

  /** The JWK Set of every key that verifies (RFC 7517 §5). */
  publishedKeys(): { keys: PublishedJwk[] } {
    return this.jwks;
  }

  /**
   * Deletes the keys past their verification window, and revoked ones, with
   * their private halves; returns how many. Instances take turns through the
   * store's lock.
   */
  async prune(now: Date): Promise<number> {
    return this.store.prune(now, this.retainMs);
  }

  private async pruneLogged(): Promise<void> {
    try {
      const pruned = await this.prune(new Date());
      if (pruned > 0) this.logger.log(`Removed ${pruned} signing keys past their verification`);
    } catch (error) {
      this.logger.warn(
        `Signing keys not pruned: ${error instanceof Error ? error.message : String(error)}`,
      );
    }
  }

  /** Re-reads the keys; one reload at a time, callers during one share it. */
  async reload(): Promise<void> {
    this.reloading ??= this.load().finally(() => {
      this.reloading = null;
    });
    return this.reloading;
  }

  private async reloadLogged(): Promise<void> {
    try {
      await this.reload();
    } catch (error) {
      // Keep the keys we have: they stay valid while the database is away.
      this.logger.warn(
        `Signing keys not reloaded: ${error instanceof Error ? error.message : String(error)}`,
      );
    }
  }

  private async load(): Promise<void> {
    this.lastReload = Date.now();
    const now = new Date();
    let rows = await this.store.all();
    if (!keyStatuses(rows, now, this.retainMs).some((status) => status.state === 'current')) {
      // The current key was revoked without a replacement, or none exists yet.
      await this.store.ensureCurrent(now);
      rows = await this.store.all();
    }
    const loaded: LoadedKey[] = [];
    for (const status of keyStatuses(rows, now, this.retainMs)) {
      if (!verifies(status.state)) continue;
      const { key } = status;
      const previous = this.byKid.get(key.kid);
      let privateKey = previous?.privateKey ?? null;
      if (!privateKey && (status.state === 'current' || status.state === 'pending')) {
        try {
          privateKey = this.store.privateKeyOf(key);
        } catch (error) {
          if (!(error instanceof KeyDecryptionError)) throw error;
          this.logger.error(error.message);
        }
      }
      loaded.push({
        kid: key.kid,
        jwk: { ...key.publicJwk, kid: key.kid, alg: SIGNING_ALG, use: 'sig' },
        publicKey: previous?.publicKey ?? publicKeyOf(key),
        activeFrom: key.activeFrom.getTime(),
        verifiesUntil: status.verifiesUntil?.getTime() ?? Infinity,
        privateKey,
      });
    }
    this.install(loaded);
  }

  private install(loaded: LoadedKey[]): void {
    const byKid = new Map(loaded.map((key) => [key.kid, key]));
    const first = this.byKid.size === 0;
    for (const key of loaded) {
      if (!first && !this.byKid.has(key.kid)) {
        this.logger.log(
          `Signing key ${key.kid} published; signs from ${new Date(key.activeFrom).toISOString()}`,
        );
      }
    }
    // A key that left the set (expired or withdrawn): tokens it signed must
    // not pass on the strength of an earlier verification either.
    const gone = [...this.byKid.keys()].filter((kid) => !byKid.has(kid));
    if (gone.length > 0) {
      for (const listener of this.withdrawnListeners) listener();
      this.logger.log(`Signing keys no longer verifying: ${gone.join(', ')}`);
    }
    this.keys = loaded;
    this.byKid = byKid;
    // A key still signing here (its successor cannot be decrypted) stays published.
    const signer = this.signer();
    if (signer) byKid.get(signer.kid)!.verifiesUntil = Infinity;
    this.jwks = {
      keys: [...loaded].reverse().map((key) => key.jwk),
    };
  }
}

/**
 * How long a superseded key keeps verifying: an instance that had not yet
 * reloaded may have signed with it until a reload interval after its
 * successor took over, and such a token lives ACCESS_TOKEN_TTL.
 */
export function signingKeyRetainMs(accessTokenTtl: number, reloadInterval: number): number {
  return (accessTokenTtl + reloadInterval) * 1000 + SKEW_MS;
}
