import { createHash, timingSafeEqual } from 'node:crypto';
import { Controller, Get, Header, Inject, Req, Res } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { ApiExcludeController } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ErrorCode, UnauthorizedError } from '../common/errors.js';
import { Public } from '../common/public.decorator.js';
import type { AppConfig } from '../config/configuration.js';
import { MetricsService } from './metrics.service.js';

const digest = (value: string) => createHash('sha256').update(value).digest();

/**
 * Prometheus scrape endpoint. Kept out of the OpenAPI document: it is for
 * operators, not API clients.
 *
 * Exposure: metrics reveal traffic and security events (login failures, token
 * reuse), which is reconnaissance for an attacker (OWASP ASVS 14.3.2: no
 * unnecessary information exposure). Deployments usually scrape on an internal
 * network and keep /metrics off the public ingress; where that is not
 * possible, METRICS_TOKEN makes the endpoint require `Authorization: Bearer
 * <METRICS_TOKEN>` (Prometheus' `authorization` scrape option). The comparison
 * is of SHA-256 digests in constant time, so neither timing nor length gives
 * the token away. Production refuses to start without it (see
 * configuration.ts); elsewhere, unset, the endpoint is public like /health.
 */
@ApiExcludeController()
@Controller('metrics')
export class MetricsController {
  private readonly expected: Buffer | null;

  constructor(
    @Inject(MetricsService) private readonly metrics: MetricsService,
    config: ConfigService<AppConfig, true>,
  ) {
    const token = config.get('observability', { infer: true }).metricsToken;
    this.expected = token === null ? null : digest(token);
  }

  @Public()
  @Get()
  @Header('Cache-Control', 'no-store')
  async scrape(
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<string> {
    if (this.expected && !this.authorized(request.headers.authorization)) {
      throw new UnauthorizedError(ErrorCode.TokenInvalid, 'A valid metrics token is required');
    }
    const { contentType, body } = await this.metrics.scrape();
    void reply.header('Content-Type', contentType);
    return body;
  }

  private authorized(header: string | undefined): boolean {
    const match = header === undefined ? null : /^Bearer (.+)$/.exec(header);
    return match !== null && timingSafeEqual(digest(match[1]), this.expected!);
  }
}
