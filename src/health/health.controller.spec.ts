import { HttpStatus, Module } from '@nestjs/common';
import { Test, type TestingModule } from '@nestjs/testing';
import { TerminusModule } from '@nestjs/terminus';
import { getDataSourceToken } from '@nestjs/typeorm';
import type { DataSource } from 'typeorm';
import { SessionRevocations } from '../auth/sessions/session-revocations.js';
import { SigningKeys } from '../auth/signing-keys/signing-keys.service.js';
import { AppError, ErrorCode } from '../common/errors.js';
import { DATABASE_RETRY_AFTER } from '../common/http-exception.filter.js';
import { HealthController } from './health.controller.js';
import { ShutdownSignal } from './shutdown-signal.js';

/** The database edge: a data source whose ping answers, or fails as the driver would. */
function dataSource(ping: () => Promise<unknown>): DataSource {
  return { options: { type: 'postgres' }, query: ping } as unknown as DataSource;
}

/** Stands in for TypeOrmModule, which provides the data source globally. */
@Module({})
class DatabaseStub {}

/**
 * What readiness reads of the keys and the feed, whose real state comes from
 * PostgreSQL (the e2e suites drive the real ones).
 */
interface Dependencies {
  ping?: () => Promise<unknown>;
  signer?: boolean;
  feedLive?: boolean;
}

async function controllerWith({
  ping = () => Promise.resolve([]),
  signer = true,
  feedLive = true,
}: Dependencies = {}): Promise<[HealthController, TestingModule]> {
  const database = {
    module: DatabaseStub,
    global: true,
    providers: [{ provide: getDataSourceToken(), useValue: dataSource(ping) }],
    exports: [getDataSourceToken()],
  };
  const module = await Test.createTestingModule({
    imports: [database, TerminusModule.forRoot({ logger: false })],
    controllers: [HealthController],
    providers: [
      ShutdownSignal,
      { provide: SigningKeys, useValue: { signer: () => (signer ? { kid: 'k' } : null) } },
      { provide: SessionRevocations, useValue: { isReady: feedLive } },
    ],
  }).compile();
  return [module.get(HealthController), module];
}

const unavailable = (message: string) => ({
  status: HttpStatus.SERVICE_UNAVAILABLE,
  code: ErrorCode.ServiceUnavailable,
  message,
  retryAfter: DATABASE_RETRY_AFTER,
});

const outcomeOf = (promise: Promise<unknown>) =>
  promise.then(
    () => 'healthy',
    (error: unknown) => error,
  );

const refused = new Error('connect ECONNREFUSED 127.0.0.1:5432');

describe('HealthController', () => {
  describe('GET /health', () => {
    it('answers the database up when the ping does', async () => {
      const [health, module] = await controllerWith();
      await expect(health.check()).resolves.toEqual({ status: 'ok', database: 'up' });
      await module.close();
    });

    it('turns a failed ping into our 503 error, not Terminus’s body, without the driver’s message', async () => {
      const [health, module] = await controllerWith({ ping: () => Promise.reject(refused) });
      const outcome = await outcomeOf(health.check());
      expect(outcome).toBeInstanceOf(AppError);
      expect(outcome).toMatchObject(unavailable('Database is unreachable'));
      await module.close();
    });

    it('says the instance is shutting down once Nest has begun to stop it', async () => {
      const [health, module] = await controllerWith();
      await module.close();
      expect(await outcomeOf(health.check())).toMatchObject(
        unavailable('Service is shutting down; retry shortly'),
      );
    });
  });

  describe('GET /health/live', () => {
    it('answers whatever the database, keys and feed are doing', async () => {
      const [health, module] = await controllerWith({
        ping: () => Promise.reject(refused),
        signer: false,
        feedLive: false,
      });
      expect(health.live()).toEqual({ status: 'ok' });
      module.get(ShutdownSignal).receive();
      expect(health.live()).toEqual({ status: 'ok' });
      await module.close();
    });
  });

  describe('GET /health/ready', () => {
    it('lists the checks that passed', async () => {
      const [health, module] = await controllerWith();
      await expect(health.ready()).resolves.toEqual({
        status: 'ok',
        checks: { database: 'up', signing_keys: 'loaded', session_feed: 'live' },
      });
      await module.close();
    });

    it.each([
      [{ ping: () => Promise.reject(refused) }, 'Not ready: database unreachable'],
      [{ signer: false }, 'Not ready: no usable signing key'],
      [{ feedLive: false }, 'Not ready: session feed not live'],
      [
        { ping: () => Promise.reject(refused), feedLive: false },
        'Not ready: database unreachable, session feed not live',
      ],
    ])('is a 503 naming what is missing (%#)', async (dependencies, message) => {
      const [health, module] = await controllerWith(dependencies);
      const outcome = await outcomeOf(health.ready());
      expect(outcome).toBeInstanceOf(AppError);
      expect(outcome).toMatchObject(unavailable(message));
      await module.close();
    });

    it('is a 503 from the moment a stop signal arrives, with everything still up', async () => {
      const [health, module] = await controllerWith();
      await expect(health.ready()).resolves.toMatchObject({ status: 'ok' });
      module.get(ShutdownSignal).receive();
      expect(await outcomeOf(health.ready())).toMatchObject(
        unavailable('Service is shutting down; retry shortly'),
      );
      expect(await outcomeOf(health.check())).toMatchObject(
        unavailable('Service is shutting down; retry shortly'),
      );
      await module.close();
    });
  });
});
