import { Controller, Get, HttpStatus, ServiceUnavailableException } from '@nestjs/common';
import {
  ApiOkResponse,
  ApiOperation,
  ApiServiceUnavailableResponse,
  ApiTags,
} from '@nestjs/swagger';
import { HealthCheckService, TypeOrmHealthIndicator } from '@nestjs/terminus';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { AppError, ErrorCode } from '../common/errors.js';
import { ErrorResponseDto } from '../common/error-response.dto.js';
import { DATABASE_RETRY_AFTER } from '../common/http-exception.filter.js';
import { Public } from '../common/public.decorator.js';

/**
 * How long the database ping may take. Longer than the pool's wait for a
 * connection (2 s, data-source-options.ts), so a busy but working pool is not
 * reported down before the pool itself gives up; shorter than the 3 s a
 * container health probe allows (Dockerfile), so the probe reads a 503 rather
 * than timing out.
 */
const DATABASE_PING_TIMEOUT_MS = 2_500;

class HealthDto {
  status!: 'ok';
  database!: 'up';
}

// Terminus's @HealthCheck() decorator is not used: it would document
// Terminus's own response bodies, not ours, and add a Cache-Control header
// this public route has never sent.
@ApiTags('health')
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly typeOrm: TypeOrmHealthIndicator,
    @InjectDataSource() private readonly dataSource: DataSource,
  ) {}

  @Public()
  @Get()
  @ApiOperation({ summary: 'Liveness and database reachability' })
  @ApiOkResponse({ schema: { example: { status: 'ok', database: 'up' } } })
  @ApiServiceUnavailableResponse({
    type: ErrorResponseDto,
    description:
      'Database unreachable, or the instance is shutting down (`service_unavailable`); retry after `Retry-After` seconds',
    headers: { 'Retry-After': { schema: { type: 'integer' } } },
  })
  async check(): Promise<HealthDto> {
    try {
      await this.health.check([
        () =>
          this.typeOrm.pingCheck('database', {
            connection: this.dataSource,
            timeout: DATABASE_PING_TIMEOUT_MS,
          }),
      ]);
    } catch (error) {
      throw unavailable(error);
    }
    return { status: 'ok', database: 'up' };
  }
}

/**
 * Terminus answers a failed check with its own body ({status, info, error,
 * details}); clients get the one error shape instead, with Retry-After.
 */
function unavailable(error: unknown): unknown {
  if (!(error instanceof ServiceUnavailableException)) return error;
  const { status } = error.getResponse() as { status?: unknown };
  return new AppError(
    HttpStatus.SERVICE_UNAVAILABLE,
    ErrorCode.ServiceUnavailable,
    status === 'shutting_down'
      ? 'Service is shutting down; retry shortly'
      : 'Database is unreachable',
    undefined,
    DATABASE_RETRY_AFTER,
  );
}
