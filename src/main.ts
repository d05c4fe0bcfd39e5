import 'reflect-metadata';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Logger } from '@nestjs/common';
import { pino } from 'pino';
import { createApp } from './app.factory.js';
import { ConfigError } from './config/configuration.js';
import { buildConfig } from './config/environment.js';
import { generatedSecretsFor } from './config/secrets.js';
import type { EmbeddedDatabase } from './database/embedded-postgres.js';
import { ShutdownSignal } from './health/shutdown-signal.js';
import { createRootLogger, PinoNestLogger, RequestLogScope } from './observability/logging.js';

const logger = new Logger('Lineage');

// stdout, buffered in production (see createRootLogger); flushed before every exit.
const logDestination = pino.destination({ dest: 1, sync: process.env.NODE_ENV !== 'production' });

function exit(code: number): never {
  logDestination.flushSync();
  process.exit(code);
}

async function bootstrap(): Promise<void> {
  const env = process.env;
  const production = env.NODE_ENV === 'production';
  const dataDir = resolve(env.LINEAGE_DATA_DIR || '.data');

  if (production && !env.DATABASE_URL) {
    throw new ConfigError('DATABASE_URL', 'is required when NODE_ENV=production');
  }
  // Outside production, missing secrets are generated once and kept under .data/.
  const generatedSecrets = await generatedSecretsFor(env, dataDir);
  // Validate everything we can before starting anything.
  const checked = buildConfig(env, {
    embeddedDatabaseUrl: 'postgres://placeholder/lineage',
    generatedSecrets,
  });
  // From here on every line, Nest's included, is JSON at LOG_LEVEL.
  const rootLogger = createRootLogger(checked.observability.logLevel, logDestination);
  Logger.overrideLogger(new PinoNestLogger(rootLogger, new RequestLogScope()));
  if (env.JWT_ACCESS_SECRET) {
    logger.warn(
      'JWT_ACCESS_SECRET is no longer used: access tokens are signed with ES256 keys kept in PostgreSQL',
    );
  }

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
    const app = await createApp(config, { pino: rootLogger });
    const { delay, drainTimeout } = config.shutdown;
    const drainTimeoutMs = drainTimeout * 1000;
    let stopping = false;
    const shutdown = async (signal: string) => {
      if (stopping) return;
      stopping = true;
      // Unready first (GET /health/ready answers 503), while everything still serves.
      app.get(ShutdownSignal).receive();
      if (delay > 0) {
        // Load balancers and Kubernetes endpoints take a moment to stop sending
        // new requests; closing the port before they notice would refuse them.
        logger.log(`${signal} received: unready; serving for ${delay} s more, then draining`);
        await sleep(delay * 1000);
      }
      logger.log(`${signal} received: finishing in-flight requests, then shutting down`);
      // The HTTP server first: Nest's close() runs the modules' destroy hooks
      // (session feed, scheduler) before it closes the server. Fastify stops
      // accepting, closes idle keep-alive connections, answers 503 to new
      // requests on busy ones, and resolves once the in-flight ones are done;
      // bounded, so a stuck client cannot hold the process (and the pool) forever.
      // A keep-alive connection whose request finishes during the drain turns
      // idle and would hold close() until the bound: close those as they go idle.
      const server = app.getHttpServer();
      const sweep = setInterval(() => server.closeIdleConnections(), 100);
      const drained = await Promise.race([
        (async () => {
          await (app.getHttpAdapter().close() as Promise<void>);
          return true;
        })(),
        sleep(drainTimeoutMs, false, { ref: false }),
      ]);
      clearInterval(sweep);
      if (!drained) {
        logger.warn(`Requests still running after ${drainTimeoutMs} ms; closing their connections`);
        server.closeAllConnections();
      }
      await app.close(); // destroy hooks, then the TypeORM pool
      await embedded?.stop();
      logger.log('Stopped');
      exit(0);
    };
    const onSignal = (signal: string) =>
      void shutdown(signal).catch((error: unknown) => {
        logger.error('Shutdown failed', error instanceof Error ? error.stack : String(error));
        exit(1);
      });
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    await app.listen({ port: config.port, host: config.host });
    logger.log(
      `Listening on http://localhost:${config.port}${config.docsEnabled ? ' (docs at /docs)' : ''} using ${
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
  exit(1);
});
