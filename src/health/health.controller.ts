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
import { SessionRevocations } from '../auth/sessions/session-revocations.js';
import { SigningKeys } from '../auth/signing-keys/signing-keys.service.js';
import { AppError, ErrorCode } from '../common/errors.js';
import { ErrorResponseDto } from '../common/error-response.dto.js';
import { DATABASE_RETRY_AFTER } from '../common/http-exception.filter.js';
import { Public } from '../common/public.decorator.js';
import { HealthDto, LivenessDto, ReadinessDto } from './health.dto.js';
import { ShutdownSignal } from './shutdown-signal.js';

/**
 * How long the database ping may take. Longer than the pool's wait for a
 * connection (2 s, data-source-options.ts), so a busy but working pool is not
 * reported down before the pool itself gives up; shorter than the 3 s a
 * probe allows (Dockerfile, deploy/kubernetes), so the probe reads a 503
 * rather than timing out.
 */
const DATABASE_PING_TIMEOUT_MS = 2_500;

const SHUTTING_DOWN = 'Service is shutting down; retry shortly';

const unavailableResponse = (description: string) =>
  ApiServiceUnavailableResponse({
    type: ErrorResponseDto,
    description,
    headers: { 'Retry-After': { schema: { type: 'integer' } } },
  });

// Terminus's @HealthCheck() decorator is not used: it would document
// Terminus's own response bodies, not ours, and add a Cache-Control header
// these public routes have never sent.
@ApiTags('health')
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly typeOrm: TypeOrmHealthIndicator,
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly signingKeys: SigningKeys,
    private readonly sessionFeed: SessionRevocations,
    private readonly shutdown: ShutdownSignal,
  ) {}

  /**
   * For a liveness probe: the process serves HTTP. Nothing it depends on is
   * checked, so an outage of PostgreSQL never gets healthy instances
   * restarted (which would only add reconnecting processes to the outage).
   */
  @Public()
  @Get('live')
  @ApiOperation({
    summary: 'Liveness: the process serves HTTP',
    description:
      'Checks no dependency: a database outage leaves it 200. For liveness probes, which ' +
      'restart the instance when it fails.',
  })
  @ApiOkResponse({ type: LivenessDto })
  live(): LivenessDto {
    return { status: 'ok' };
  }

  /**
   * For a readiness probe and load balancers: whether this instance should
   * get requests. 503 from the moment a stop signal arrives, and while any
   * dependency a request needs is missing.
   */
  @Public()
  @Get('ready')
  @ApiOperation({
    summary: 'Readiness: the instance should receive traffic',
    description:
      'Ready when PostgreSQL answers, a signing key is loaded and the session revocation feed ' +
      'is live; 503 from the moment the instance receives SIGTERM or SIGINT, while it ' +
      'still finishes its requests. For readiness probes and load balancers.',
  })
  @ApiOkResponse({ type: ReadinessDto })
  @unavailableResponse(
    'Not ready (`service_unavailable`): shutting down, database unreachable, no usable signing ' +
      'key, or the session feed not live; the message says which. Retry after `Retry-After` seconds',
  )
  async ready(): Promise<ReadinessDto> {
    if (this.shutdown.received) throw unavailable(SHUTTING_DOWN);
    const problems: string[] = [];
    if (!(await this.databaseAnswers())) problems.push('database unreachable');
    if (this.signingKeys.signer() === null) problems.push('no usable signing key');
    if (!this.sessionFeed.isReady) problems.push('session feed not live');
    // A stop signal may have come while the ping was out.
    if (this.shutdown.received) throw unavailable(SHUTTING_DOWN);
    if (problems.length > 0) throw unavailable(`Not ready: ${problems.join(', ')}`);
    return {
      status: 'ok',
      checks: { database: 'up', signing_keys: 'loaded', session_feed: 'live' },
    };
  }

  /**
   * The route health checks used before /health/live and /health/ready, kept
   * with its body and meaning: the database answers. Like readiness it turns
   * 503 at a stop signal.
   */
  @Public()
  @Get()
  @ApiOperation({
    summary: 'Database reachability (use /health/live and /health/ready)',
    description:
      'Kept for existing health checks: 200 while PostgreSQL answers, 503 when it does not and ' +
      'from the moment the instance receives a stop signal. Prefer `/health/live` for liveness ' +
      'and `/health/ready` for readiness.',
    deprecated: true,
  })
  @ApiOkResponse({ type: HealthDto })
  @unavailableResponse(
    'Database unreachable, or the instance is shutting down (`service_unavailable`); retry after `Retry-After` seconds',
  )
  async check(): Promise<HealthDto> {
    if (this.shutdown.received) throw unavailable(SHUTTING_DOWN);
    if (!(await this.databaseAnswers())) throw unavailable('Database is unreachable');
    return { status: 'ok', database: 'up' };
  }

  /**
   * Terminus's ping, with its own failure body ({status, info, error,
   * details}) reduced to yes or no: clients get the one error shape instead.
   */
  private async databaseAnswers(): Promise<boolean> {
    try {
      await this.health.check([
        () =>
          this.typeOrm.pingCheck('database', {
            connection: this.dataSource,
            timeout: DATABASE_PING_TIMEOUT_MS,
          }),
      ]);
      return true;
    } catch (error) {
      if (!(error instanceof ServiceUnavailableException)) throw error;
      const { status } = error.getResponse() as { status?: unknown };
      // Terminus's own view of Nest's shutdown hooks, once they run.
      if (status === 'shutting_down') throw unavailable(SHUTTING_DOWN);
      return false;
    }
  }
}

/** 503 in the one error shape, with Retry-After. */
function unavailable(message: string): AppError {
  return new AppError(
    HttpStatus.SERVICE_UNAVAILABLE,
    ErrorCode.ServiceUnavailable,
    message,
    undefined,
    DATABASE_RETRY_AFTER,
  );
}
