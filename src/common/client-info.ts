import { isIP } from 'node:net';
import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';

/** Where a request came from; stored with sessions and audit events, shown to their user. */
export interface ClientInfo {
  userAgent: string | null;
  ip: string | null;
  /**
   * The OAuth client (RFC 6749 §2.2 `client_id`) a request came through, on
   * the OAuth endpoints only; Lineage's own JSON routes have none.
   */
  clientId?: string;
  /**
   * The JWK thumbprint of the key the request proved it holds with a DPoP
   * proof (RFC 9449), where a session may be bound to it.
   */
  keyThumbprint?: string;
}

export const USER_AGENT_MAX = 512;

/**
 * The client's address: the socket peer, or the X-Forwarded-For entry of a
 * trusted proxy (TRUST_PROXY), which Fastify does not validate. Some proxies
 * append a port ("203.0.113.5:51234", "[2001:db8::1]:443"); it is dropped so
 * one client keeps one rate-limit counter. Anything that is still not an
 * address (junk, an IPv6 zone id, which inet cannot store) is null.
 */
export function clientIp(request: FastifyRequest): string | null {
  let ip = request.ip ?? '';
  const withPort = /^\[?([^\]]+?)\]?:(\d{1,5})$/.exec(ip);
  if (isIP(ip) === 0 && withPort) ip = withPort[1];
  return isIP(ip) !== 0 && !ip.includes('%') ? ip : null;
}

export function clientInfo(request: FastifyRequest): ClientInfo {
  const userAgent = request.headers['user-agent'];
  return {
    userAgent: userAgent ? userAgent.slice(0, USER_AGENT_MAX) : null,
    // Stored in inet columns: an unusable address is recorded as unknown, not a 500.
    ip: clientIp(request),
  };
}

/** The caller's user agent and address, as a handler parameter. */
export const Client = createParamDecorator((_data: unknown, ctx: ExecutionContext): ClientInfo =>
  clientInfo(ctx.switchToHttp().getRequest<FastifyRequest>()),
);
