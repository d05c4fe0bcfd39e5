import { type DynamicModule, Module } from '@nestjs/common';
import { APP_FILTER, APP_PIPE } from '@nestjs/core';
import { ConfigModule } from '@nestjs/config';
import { ScheduleModule } from '@nestjs/schedule';
import { RateLimitModule } from './rate-limit/rate-limit.module.js';
import { AuditModule } from './audit/audit.module.js';
import { AuthModule } from './auth/auth.module.js';
import { AllExceptionsFilter } from './common/http-exception.filter.js';
import { createValidationPipe } from './common/validation.pipe.js';
import type { AppConfig } from './config/configuration.js';
import { DatabaseModule } from './database/database.module.js';
import { ENTITIES } from './entities.js';
import { HealthModule } from './health/health.module.js';
import type { MetricsService } from './observability/metrics.service.js';
import { ObservabilityModule } from './observability/observability.module.js';
import { TodosModule } from './todos/todos.module.js';
import { UsersModule } from './users/users.module.js';

@Module({})
export class AppModule {
  /**
   * The config is validated before Nest starts (see main.ts) and handed in
   * whole, rather than through ConfigModule's `validationSchema`: main.ts needs
   * the values before Nest exists (log level, embedded database, port), the e2e
   * suites start apps with different settings in one process, and that option
   * reads and writes process.env.
   */
  static forRoot(config: AppConfig, metrics: MetricsService): DynamicModule {
    return {
      module: AppModule,
      imports: [
        ConfigModule.forRoot({
          isGlobal: true,
          ignoreEnvFile: true,
          ignoreEnvVars: true,
          load: [() => config],
        }),
        DatabaseModule.forRoot(ENTITIES),
        ScheduleModule.forRoot(),
        ObservabilityModule.forRoot(metrics),
        RateLimitModule,
        HealthModule,
        AuditModule,
        UsersModule,
        AuthModule,
        TodosModule,
      ],
      providers: [
        { provide: APP_PIPE, useFactory: createValidationPipe },
        { provide: APP_FILTER, useClass: AllExceptionsFilter },
      ],
    };
  }
}
