import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';

/** Where a request came from; stored with sessions and audit events, shown to their user. */
export interface ClientInfo {
  userAgent: string | null;
  ip: string | null;
}

export const USER_AGENT_MAX = 512;

export function clientInfo(request: FastifyRequest): ClientInfo {
  const userAgent = request.headers['user-agent'];
  // request.ip is the socket peer: X-Forwarded-For is not trusted (trustProxy is off).
  return {
    userAgent: userAgent ? userAgent.slice(0, USER_AGENT_MAX) : null,
    ip: request.ip || null,
  };
}

/** The caller's user agent and address, as a handler parameter. */
export const Client = createParamDecorator((_data: unknown, ctx: ExecutionContext): ClientInfo =>
  clientInfo(ctx.switchToHttp().getRequest<FastifyRequest>()),
);
