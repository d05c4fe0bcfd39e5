import 'reflect-metadata';
import { join, resolve } from 'node:path';
import { Logger } from '@nestjs/common';
import { createApp } from './app.factory.js';
import { buildConfig, ConfigError } from './config/configuration.js';
import { loadOrCreateSecrets } from './config/secrets.js';
import type { EmbeddedDatabase } from './database/embedded-postgres.js';

const logger = new Logger('Lineage');

async function bootstrap(): Promise<void> {
  const env = process.env;
  const production = env.NODE_ENV === 'production';
  const dataDir = resolve(env.LINEAGE_DATA_DIR || '.data');

  if (production && !env.DATABASE_URL) {
    throw new ConfigError('DATABASE_URL', 'is required when NODE_ENV=production');
  }
  // Outside production, missing signing keys are generated once and kept under .data/.
  const needsGeneratedSecrets = !production && (!env.JWT_ACCESS_SECRET || !env.JWT_REFRESH_SECRET);
  const generatedSecrets = needsGeneratedSecrets
    ? await loadOrCreateSecrets(join(dataDir, 'secrets.json'))
    : undefined;
  // Validate everything we can before starting anything.
  buildConfig(env, { embeddedDatabaseUrl: 'postgres://placeholder/lineage', generatedSecrets });

  let embedded: EmbeddedDatabase | undefined;
  if (!env.DATABASE_URL) {
    logger.log(`Starting embedded PostgreSQL in ${join(dataDir, 'postgres')}`);
    // Loaded only when needed: the package loads its PostgreSQL binaries on import,
    // which a deployment with DATABASE_URL (the container image) need not ship.
    const { startEmbeddedPostgres } = await import('./database/embedded-postgres.js');
    embedded = await startEmbeddedPostgres({
      dataDir: join(dataDir, 'postgres'),
      database: 'lineage',
    });
  }

  try {
    const config = buildConfig(env, { embeddedDatabaseUrl: embedded?.url, generatedSecrets });
    const app = await createApp(config);
    let stopping = false;
    const shutdown = async (signal: string) => {
      if (stopping) return;
      stopping = true;
      logger.log(`${signal} received, shutting down`);
      await app.close();
      await embedded?.stop();
      process.exit(0);
    };
    process.once('SIGINT', () => void shutdown('SIGINT'));
    process.once('SIGTERM', () => void shutdown('SIGTERM'));
    await app.listen({ port: config.port, host: config.host });
    logger.log(
      `Listening on http://localhost:${config.port} (docs at /docs) using ${
        embedded ? 'embedded PostgreSQL' : 'DATABASE_URL'
      }`,
    );
  } catch (error) {
    await embedded?.stop();
    throw error;
  }
}

bootstrap().catch((error: unknown) => {
  logger.error(
    error instanceof ConfigError
      ? error.message
      : error instanceof Error
        ? error.stack
        : String(error),
  );
  process.exit(1);
});
