import { HttpStatus, Module } from '@nestjs/common';
import { Test, type TestingModule } from '@nestjs/testing';
import { getDataSourceToken } from '@nestjs/typeorm';
import type { DataSource } from 'typeorm';
import { AppError, ErrorCode } from '../common/errors.js';
import { DATABASE_RETRY_AFTER } from '../common/http-exception.filter.js';
import { HealthController } from './health.controller.js';
import { HealthModule } from './health.module.js';

/** The database edge: a data source whose ping answers, or fails as the driver would. */
function dataSource(ping: () => Promise<unknown>): DataSource {
  return { options: { type: 'postgres' }, query: ping } as unknown as DataSource;
}

/** Stands in for TypeOrmModule, which provides the data source globally. */
@Module({})
class DatabaseStub {}

async function controllerWith(source: DataSource): Promise<[HealthController, TestingModule]> {
  const database = {
    module: DatabaseStub,
    global: true,
    providers: [{ provide: getDataSourceToken(), useValue: source }],
    exports: [getDataSourceToken()],
  };
  const module = await Test.createTestingModule({ imports: [database, HealthModule] }).compile();
  return [module.get(HealthController), module];
}

const unavailable = (message: string) => ({
  status: HttpStatus.SERVICE_UNAVAILABLE,
  code: ErrorCode.ServiceUnavailable,
  message,
  retryAfter: DATABASE_RETRY_AFTER,
});

describe('HealthController', () => {
  it('answers the database up when the ping does', async () => {
    const [health, module] = await controllerWith(dataSource(() => Promise.resolve([])));
    await expect(health.check()).resolves.toEqual({ status: 'ok', database: 'up' });
    await module.close();
  });

  it('turns a failed ping into our 503 error, not Terminus’s body, without the driver’s message', async () => {
    const refused = new Error('connect ECONNREFUSED 127.0.0.1:5432');
    const [health, module] = await controllerWith(dataSource(() => Promise.reject(refused)));
    const outcome = await health.check().then(
      () => 'healthy',
      (error: unknown) => error,
    );
    expect(outcome).toBeInstanceOf(AppError);
    expect(outcome).toMatchObject(unavailable('Database is unreachable'));
    await module.close();
  });

  it('says the instance is shutting down once Nest has begun to stop it', async () => {
    const [health, module] = await controllerWith(dataSource(() => Promise.resolve([])));
    await module.close();
    const outcome = await health.check().then(
      () => 'healthy',
      (error: unknown) => error,
    );
    expect(outcome).toMatchObject(unavailable('Service is shutting down; retry shortly'));
  });
});
