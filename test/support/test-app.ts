import type { LoggerService, LogLevel } from '@nestjs/common';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import passport from 'passport';
import type { Logger as PinoLogger } from 'pino';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { createApp } from '../../src/app.factory.js';
import { ACCESS_STRATEGY, AccessTokenStrategy } from '../../src/auth/http/access-token.strategy.js';
import {
  REFRESH_STRATEGY,
  RefreshTokenStrategy,
} from '../../src/auth/http/refresh-token.strategy.js';
import { buildConfig } from '../../src/config/environment.js';
import { freePort } from './app-process.js';
import { TEST_SECRETS } from './secrets.js';

export interface TestApp {
  app: NestFastifyApplication;
  http: () => ReturnType<typeof request>;
  db: DataSource;
  /** Every route Fastify registered, as "METHOD /path". */
  routes: string[];
  close: () => Promise<void>;
}

export interface TestAppOptions {
  /**
   * Log as production does: request lines and Nest's lines as JSON through
   * this pino logger (see createRootLogger), instead of through `logger`.
   */
  pino?: PinoLogger;
}

export interface UseTestAppOptions extends TestAppOptions {
  /** Nest's logger (errors only by default); ignored when `pino` is given. */
  logger?: LoggerService | LogLevel[];
  /**
   * Also listen on a free loopback port, for clients that speak real
   * HTTP (the SDK through fetch, a browser): the handle's `baseUrl`.
   */
  listen?: boolean;
}

/** A TestApp started for a `describe` block by useTestApp. */
export interface UsedTestApp extends TestApp {
  /** The app's origin, e.g. http://127.0.0.1:40123 (only with `listen: true`). */
  readonly baseUrl: string;
}

/**
 * The real application (Fastify, guards, pipes, filter, TypeORM) against the
 * e2e database. `env` overrides configuration the way the environment would.
 */
export async function startTestApp(
  env: Record<string, string> = {},
  logger: LoggerService | LogLevel[] = ['error'],
  options: TestAppOptions = {},
): Promise<TestApp> {
  const databaseUrl = process.env.LINEAGE_TEST_DATABASE_URL;
  if (!databaseUrl) throw new Error('e2e database not prepared (global setup did not run)');
  const config = buildConfig({
    NODE_ENV: 'test',
    DATABASE_URL: databaseUrl,
    ...TEST_SECRETS,
    BCRYPT_COST: '4',
    // Every suite logs in from 127.0.0.1 many times; the security suite sets real limits.
    RATE_LIMIT_PER_IP: '1000000',
    RATE_LIMIT_REFRESH_PER_IP: '1000000',
    RATE_LIMIT_FREE_FAILURES: '99',
    ...env,
  });
  const routes: string[] = [];
  const app = await createApp(config, {
    logger: options.pino ? undefined : logger,
    pino: options.pino,
    beforeInit: (adapter) =>
      adapter.getInstance().addHook('onRoute', (route) => {
        const methods = Array.isArray(route.method) ? route.method : [route.method];
        for (const method of methods) routes.push(`${method} ${route.url}`);
      }),
  });
  const server = app.getHttpServer();
  // Passport keeps strategies in one process-wide registry, so the newest app's
  // strategies would serve every app in this test file. Each request re-selects
  // its own app's strategies (one process per app in production, so only tests need this).
  const access = app.get(AccessTokenStrategy);
  const refresh = app.get(RefreshTokenStrategy);
  return {
    app,
    http: () => {
      passport.use(ACCESS_STRATEGY, access);
      passport.use(REFRESH_STRATEGY, refresh);
      return request(server);
    },
    db: app.get(DataSource),
    routes,
    close: () => app.close(),
  };
}

/**
 * One app for the enclosing `describe` block (or file): started in a
 * beforeAll, closed in an afterAll, both registered here. The handle can be
 * created at collection time, but its fields are read inside tests and hooks:
 *
 *     const t = useTestApp({ ACCESS_TOKEN_TTL: '2' });
 *     it('...', async () => { await t.http().get('/health').expect(200); });
 *
 * Jest runs a block's beforeAll hooks in the order they are declared, so a
 * beforeAll declared after this call sees the app started. afterAll hooks run
 * in declaration order too: cleanup that still needs the app must be declared
 * before this call. Tests that start apps inside a test body (several
 * instances, restarts) use startTestApp and close what they start.
 */
export function useTestApp(
  env: Record<string, string> = {},
  options: UseTestAppOptions = {},
): UsedTestApp {
  let current: TestApp | undefined;
  let baseUrl: string | undefined;
  let closed: Promise<void> | undefined;
  const started = (): TestApp => {
    if (!current) {
      throw new Error('useTestApp: the app is not running (read its fields inside a test or hook)');
    }
    return current;
  };
  beforeAll(async () => {
    // A listening app's own origin is its PUBLIC_URL, as in a deployment: the
    // OpenAPI document's `servers`, where Swagger UI sends its requests.
    const port = options.listen ? await freePort() : undefined;
    const origin = port === undefined ? undefined : `http://127.0.0.1:${port}`;
    current = await startTestApp(
      origin === undefined ? env : { PUBLIC_URL: origin, ...env },
      options.logger,
      options,
    );
    if (port !== undefined) {
      await current.app.listen({ port, host: '127.0.0.1' });
      baseUrl = origin;
    }
  });
  afterAll(async () => {
    // A suite that failed to start has nothing to close; its own error is reported.
    if (current) await handle.close();
  });
  const handle: UsedTestApp = {
    get app() {
      return started().app;
    },
    http: () => started().http(),
    get db() {
      return started().db;
    },
    get routes() {
      return started().routes;
    },
    get baseUrl() {
      if (!options.listen) throw new Error('useTestApp: baseUrl needs { listen: true }');
      started();
      return baseUrl!;
    },
    close: () => (closed ??= started().close()),
  };
  return handle;
}
