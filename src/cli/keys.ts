import 'reflect-metadata';
import { join, resolve } from 'node:path';
import { DataSource } from 'typeorm';
import { KeyDecryptionError } from '../auth/signing-keys/key-encryption.js';
import { JWKS_MAX_AGE_SECONDS, keyStatuses } from '../auth/signing-keys/key-set.js';
import { SigningKeyStore } from '../auth/signing-keys/signing-key.store.js';
import { signingKeyRetainMs } from '../auth/signing-keys/signing-keys.service.js';
import { buildConfig } from '../config/environment.js';
import { parseDurationSeconds } from '../config/duration.js';
import { generatedSecretsFor } from '../config/secrets.js';
import { dataSourceOptions } from '../database/data-source-options.js';
import { ENTITIES } from '../entities.js';
import type { EmbeddedDatabase } from '../database/embedded-postgres.js';
import { runMigrationsLocked } from '../database/migrations.js';

const USAGE = `Usage: npm run keys -- <command>

Manages the ES256 keys that sign access tokens (same environment as the server).

  list [--json]              every key, its state and until when it verifies
  rotate [--activate-in D]   adds a key, published at once, signing after D
                             (default: the JWKS cache lifetime plus
                             SIGNING_KEYS_RELOAD_INTERVAL, so verifiers and
                             every instance know it before its first token)
  rotate --now               the new key signs at once (verifiers learn it from
                             the JWKS when they meet its kid)
  revoke <kid>               withdraws a leaked key now: its tokens stop
                             verifying; a new key takes over if it was current
`;

class UsageError extends Error {}

function write(line: string): void {
  process.stdout.write(`${line}\n`);
}

function activationDelay(args: string[], reloadInterval: number): number {
  if (args.includes('--now')) return 0;
  const at = args.indexOf('--activate-in');
  if (at === -1) return JWKS_MAX_AGE_SECONDS + reloadInterval;
  const seconds = parseDurationSeconds(args[at + 1] ?? '');
  if (seconds === undefined) throw new UsageError('--activate-in needs a duration like 10m or 0');
  return seconds;
}

async function run(argv: string[]): Promise<void> {
  const [command, ...args] = argv;
  if (!command || !['list', 'rotate', 'revoke'].includes(command)) throw new UsageError(USAGE);
  if (command === 'revoke' && !args[0]) throw new UsageError('revoke needs the key id (kid)');

  const env = process.env;
  const dataDir = resolve(env.LINEAGE_DATA_DIR || '.data');
  const generatedSecrets = await generatedSecretsFor(env, dataDir);
  // Without DATABASE_URL: the embedded server of a running Lineage, or our own.
  let embedded: EmbeddedDatabase | undefined;
  let embeddedDatabaseUrl: string | undefined;
  if (!env.DATABASE_URL) {
    const { runningEmbeddedUrl, startEmbeddedPostgres } =
      await import('../database/embedded-postgres.js');
    const pgDir = join(dataDir, 'postgres');
    embeddedDatabaseUrl = await runningEmbeddedUrl(pgDir, 'lineage');
    if (!embeddedDatabaseUrl) {
      embedded = await startEmbeddedPostgres({ dataDir: pgDir, database: 'lineage' });
      embeddedDatabaseUrl = embedded.url;
    }
  }
  try {
    const config = buildConfig(env, { embeddedDatabaseUrl, generatedSecrets });
    const { accessTokenTtl, signingKeysReloadInterval, signingKeysSecret } = config.auth;
    const dataSource = await new DataSource(
      dataSourceOptions(config.database.url, ENTITIES, config.database.poolSize),
    ).initialize();
    try {
      await runMigrationsLocked(dataSource);
      const store = new SigningKeyStore(dataSource, signingKeysSecret);
      const now = new Date();
      if (command === 'list') {
        const retainMs = signingKeyRetainMs(accessTokenTtl, signingKeysReloadInterval);
        const rows = keyStatuses(await store.all(), now, retainMs).map((status) => ({
          kid: status.key.kid,
          state: status.state,
          created_at: status.key.createdAt.toISOString(),
          active_from: status.key.activeFrom.toISOString(),
          verifies_until: status.verifiesUntil?.toISOString() ?? null,
          revoked_at: status.key.revokedAt?.toISOString() ?? null,
        }));
        if (args.includes('--json')) {
          write(JSON.stringify(rows));
          return;
        }
        for (const row of rows) {
          const until = row.verifies_until ? `  verifies until ${row.verifies_until}` : '';
          write(`${row.kid}  ${row.state.padEnd(8)}  active from ${row.active_from}${until}`);
        }
      } else if (command === 'rotate') {
        const delay = activationDelay(args, signingKeysReloadInterval);
        const key = await store.rotate(now, new Date(now.getTime() + delay * 1000));
        write(`Created ${key.kid}: published now, signs from ${key.activeFrom.toISOString()}.`);
        write(
          `The previous key keeps verifying until its tokens have expired, then leaves the JWKS.`,
        );
      } else {
        const kid = args[0];
        const { revoked, replacement } = await store.revoke(kid, now);
        if (!revoked) throw new UsageError(`No live key ${kid} (see \`npm run keys -- list\`)`);
        write(
          `Revoked ${kid}: instances stop accepting its tokens within ${signingKeysReloadInterval} s.`,
        );
        if (replacement) write(`${replacement.kid} signs from now on.`);
      }
    } finally {
      await dataSource.destroy();
    }
  } finally {
    await embedded?.stop();
  }
}

run(process.argv.slice(2)).then(
  () => process.exit(0),
  (error: unknown) => {
    const message =
      error instanceof KeyDecryptionError
        ? // rotate and revoke check the secret before they write anything.
          `${error.message}; nothing was changed`
        : error instanceof Error
          ? error.message
          : String(error);
    process.stderr.write(`${message}\n`);
    process.exit(error instanceof UsageError ? 2 : 1);
  },
);
