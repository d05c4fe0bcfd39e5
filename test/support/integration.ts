import { randomUUID } from 'node:crypto';
import type { DynamicModule, Provider, Type } from '@nestjs/common';
import { ConfigModule, ConfigService } from '@nestjs/config';
import { Test, type TestingModule } from '@nestjs/testing';
import pg from 'pg';
import { DataSource } from 'typeorm';
import { type AppConfig } from '../../src/config/configuration.js';
import { buildConfig } from '../../src/config/environment.js';
import { DatabaseModule } from '../../src/database/database.module.js';
import { ENTITIES } from '../../src/entities.js';
import { TEST_SECRETS } from './secrets.js';

/** The database the global setup prepared (embedded, or TEST_DATABASE_URL). */
export function testDatabaseUrl(): string {
  const url = process.env.LINEAGE_TEST_DATABASE_URL;
  if (!url) throw new Error('test database not prepared (global setup did not run)');
  return url;
}

/** The application's validated config, as the e2e apps get it; `env` overrides it. */
export function integrationConfig(
  env: Record<string, string> = {},
  databaseUrl = testDatabaseUrl(),
): AppConfig {
  return buildConfig({ NODE_ENV: 'test', DATABASE_URL: databaseUrl, ...TEST_SECRETS, ...env });
}

export interface IntegrationOptions {
  /** The providers under test and whatever they inject, nothing more. */
  providers: Provider[];
  imports?: (Type | DynamicModule)[];
  /** Configuration overrides, the way the environment would give them. */
  env?: Record<string, string>;
  /** Another database than the shared one (see createPrivateDatabase). */
  databaseUrl?: string;
}

export interface Integration {
  module: TestingModule;
  db: DataSource;
  config: AppConfig;
  /** The same ConfigService the providers get, for constructing more of them by hand. */
  configService: ConfigService<AppConfig, true>;
  get<T>(type: Type<T>): T;
  /** Runs the shutdown hooks and closes the pool. */
  close(): Promise<void>;
}

/**
 * The middle tier's harness: the given providers over the application's own
 * data source options (pool limits, timeouts, runSql's driver) and validated
 * config, in a Nest testing module. No HTTP server, no global guard, no
 * feature module: a test names what it exercises. The lifecycle hooks run
 * (init, and shutdown on close), so a provider starts as in the app.
 *
 * Migrations are applied here, under the same advisory lock the app takes,
 * because the global setup only provides the server and this tier can run
 * before (or without) any app.
 */
export async function startIntegration(options: IntegrationOptions): Promise<Integration> {
  const config = integrationConfig(options.env, options.databaseUrl);
  const module = await Test.createTestingModule({
    imports: [
      ConfigModule.forRoot({
        isGlobal: true,
        ignoreEnvFile: true,
        ignoreEnvVars: true,
        load: [() => config],
      }),
      DatabaseModule.forRoot(ENTITIES),
      ...(options.imports ?? []),
    ],
    providers: options.providers,
  }).compile();
  await module.init();
  return {
    module,
    db: module.get(DataSource),
    config,
    configService: module.get<ConfigService<AppConfig, true>>(ConfigService),
    get: (type) => module.get(type),
    close: () => module.close(),
  };
}

export interface PrivateDatabase {
  name: string;
  url: string;
  /**
   * Refuses (or accepts again) new connections to it; open ones carry on. A
   * database that is there but takes no new connection: an outage as a
   * reconnecting client sees it.
   */
  allowConnections(allowed: boolean): Promise<void>;
  /** Drops it, ending whatever is still connected. */
  drop(): Promise<void>;
}

/**
 * A new, empty database on the test server, for a suite that must see whole
 * tables (housekeeping's counts) or take the database away from its own
 * connections (the feed's outage), which the shared database, used by other
 * suites at the same time, does not allow. The role needs CREATEDB, as the
 * embedded server's and CI's superuser has. Migrated by startIntegration.
 */
export async function createPrivateDatabase(prefix: string): Promise<PrivateDatabase> {
  const shared = new URL(testDatabaseUrl());
  const name = `${prefix}_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
  await onServer(shared, `CREATE DATABASE "${name}"`);
  const url = new URL(shared);
  url.pathname = `/${name}`;
  return {
    name,
    url: url.toString(),
    // From the shared database: a database's own sessions may not close it.
    allowConnections: (allowed) =>
      onServer(shared, `ALTER DATABASE "${name}" ALLOW_CONNECTIONS ${allowed}`),
    drop: () => onServer(shared, `DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`),
  };
}

/** One statement on a connection of its own to the shared database, outside a transaction. */
async function onServer(url: URL, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: url.toString() });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/** A user row to own sessions; the store's tests need no password check. */
export async function insertUser(db: DataSource): Promise<string> {
  const id = randomUUID();
  const username = `u_${id.replaceAll('-', '').slice(0, 16)}`;
  await db.query(
    `INSERT INTO users (id, username, username_key, password_hash) VALUES ($1, $2, $2, 'x')`,
    [id, username],
  );
  return id;
}

/**
 * Polls `condition` until it holds (the feed is asynchronous, but bounded):
 * no fixed sleep and no timing assertion; the test's own timeout is the
 * bound, and a condition that never holds fails with `what`.
 */
export async function eventually(
  condition: () => boolean | Promise<boolean>,
  what: string,
  attempts = 400,
): Promise<void> {
  for (let i = 0; i < attempts; i += 1) {
    if (await condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`still not true: ${what}`);
}
