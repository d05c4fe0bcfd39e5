import { type DynamicModule, Global, Module } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { TypeOrmModule } from '@nestjs/typeorm';
import { DataSource, type DataSourceOptions } from 'typeorm';
import type { AppConfig } from '../config/configuration.js';
import { dataSourceOptions } from './data-source-options.js';
import { runMigrationsLocked } from './migrations.js';
import { Transactions } from './transactions.js';

/**
 * The application's data source on DATABASE_URL, migrated before anything
 * uses it (pending migrations are applied before any request is served), and
 * the transaction runner every feature's writes share.
 */
@Global()
@Module({})
export class DatabaseModule {
  static forRoot(entities: NonNullable<DataSourceOptions['entities']>): DynamicModule {
    return {
      module: DatabaseModule,
      imports: [
        TypeOrmModule.forRootAsync({
          inject: [ConfigService],
          useFactory: (config: ConfigService<AppConfig, true>) => {
            const { url, poolSize } = config.get('database', { infer: true });
            return dataSourceOptions(url, entities, poolSize);
          },
          dataSourceFactory: async (options) => {
            const dataSource = await new DataSource(options!).initialize();
            await runMigrationsLocked(dataSource);
            return dataSource;
          },
        }),
      ],
      providers: [Transactions],
      exports: [Transactions],
    };
  }
}
