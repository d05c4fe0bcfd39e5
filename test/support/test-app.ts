import { randomUUID } from 'node:crypto';
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
import { buildConfig } from '../../src/config/configuration.js';
import { TEST_SECRETS } from './secrets.js';

export interface TestApp {
  app: NestFastifyApplication;
  http: () => ReturnType<typeof request>;
  db: DataSource;
  /** Every route Fastify registered, as "METHOD /path". */
  routes: string[];
  close: () => Promise<void>;
}

export interface Tokens {
  access_token: string;
  refresh_token: string;
  token_type: string;
  expires_in: number;
  refresh_expires_in: number;
}

export interface TestAppOptions {
  /**
   * Log as production does: request lines and Nest's lines as JSON through
   * this pino logger (see createRootLogger), instead of through `logger`.
   */
  pino?: PinoLogger;
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

export function uniqueUsername(prefix = 'u'): string {
  return `${prefix}_${randomUUID().replaceAll('-', '').slice(0, 16)}`;
}

export const PASSWORD = 'correct horse battery';

export async function register(
  t: TestApp,
  username = uniqueUsername(),
): Promise<Tokens & { username: string }> {
  const res = await t
    .http()
    .post('/auth/register')
    .send({ username, password: PASSWORD })
    .expect(201);
  return { ...(res.body as Tokens), username };
}

export async function login(t: TestApp, username: string, password = PASSWORD): Promise<Tokens> {
  const res = await t.http().post('/auth/login').send({ username, password }).expect(200);
  return res.body as Tokens;
}

export const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });

/** The JWT payload, decoded without verification (tests only read claims). */
export function claimsOf(token: string): Record<string, unknown> {
  const payload = Buffer.from(token.split('.')[1], 'base64url').toString('utf8');
  return JSON.parse(payload) as Record<string, unknown>;
}

/**
 * Asserts the one error shape, the code, and RFC 6750 §3's header on 401s.
 * Shared by the e2e suites that need no more than that.
 */
export function expectError(
  res: { status: number; body: unknown; headers: Record<string, string> },
  status: number,
  code: string,
) {
  expect(res.status).toBe(status);
  expect(res.body).toMatchObject({ statusCode: status, code });
  const body = res.body as Record<string, unknown>;
  expect(typeof body.error).toBe('string');
  expect(typeof body.message).toBe('string');
  expect(body).not.toHaveProperty('stack');
  if (status === 401) expect(res.headers['www-authenticate']).toMatch(/^Bearer /);
}
