import { type DynamicModule, Global, Module } from '@nestjs/common';
import { MetricsController } from './metrics.controller.js';
import { MetricsService } from './metrics.service.js';

/**
 * GET /metrics and the metrics service the other modules count through. The
 * service is built by `createApp`, whose Fastify hooks observe every request
 * (including those Nest never routes), and handed in here.
 */
@Global()
@Module({})
export class ObservabilityModule {
  static forRoot(metrics: MetricsService): DynamicModule {
    return {
      module: ObservabilityModule,
      controllers: [MetricsController],
      providers: [{ provide: MetricsService, useValue: metrics }],
      exports: [MetricsService],
    };
  }
}
