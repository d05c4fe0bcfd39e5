import { type CanActivate, type ExecutionContext, HttpStatus, Injectable } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { AppError, ErrorCode } from '../../common/errors.js';
import type { RateLimitRule } from '../../rate-limit/rate-limit.kinds.js';
import { RefreshTokenGuard } from '../http/refresh-token.guard.js';
import { OAuthClients } from './oauth-clients.js';
import { OAuthParams } from './oauth-params.js';

export const TOKEN_GRANTS = ['password', 'refresh_token'] as const;
export type TokenGrant = (typeof TOKEN_GRANTS)[number];

/** A token request once its guard has run: the client, the grant, and for a refresh its token. */
export interface TokenRequest extends FastifyRequest {
  oauthClient: string;
  grant: TokenGrant;
}

/**
 * The same limits as the JSON routes, by grant: a password grant spends the
 * login budget (and the per-account failure counter), a refresh grant the
 * refresh budget. Read from the raw body, before any parsing is trusted: an
 * unknown grant is counted like a login.
 */
export function tokenRequestLimits(
  login: RateLimitRule,
  refresh: RateLimitRule,
): (request: FastifyRequest) => RateLimitRule {
  return (request) =>
    (request.body as { grant_type?: unknown } | undefined)?.grant_type === 'refresh_token'
      ? refresh
      : login;
}

/**
 * Authenticates a token request (RFC 6749 §3.2): the client first
 * (`invalid_client`), then the grant type (`unsupported_grant_type`), then,
 * for the refresh grant, the refresh token through the same passport
 * strategy as POST /auth/refresh. The token is read from the form only:
 * this endpoint never reads the refresh cookie.
 */
@Injectable()
export class TokenGrantGuard implements CanActivate {
  constructor(
    private readonly clients: OAuthClients,
    private readonly refreshTokens: RefreshTokenGuard,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const request = context.switchToHttp().getRequest<TokenRequest>();
    const params = OAuthParams.of(request);
    request.oauthClient = this.clients.identify(request, params);
    const grant = params.require('grant_type');
    if (!(TOKEN_GRANTS as readonly string[]).includes(grant)) {
      throw new AppError(
        HttpStatus.BAD_REQUEST,
        ErrorCode.UnsupportedGrantType,
        `grant_type must be one of ${TOKEN_GRANTS.join(', ')}`,
      );
    }
    request.grant = grant as TokenGrant;
    if (request.grant !== 'refresh_token') return true;
    params.require('refresh_token');
    return (await this.refreshTokens.canActivate(context)) as boolean;
  }
}
