import type {} from '@fastify/cookie';
import { Injectable } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AppConfig } from '../config/configuration.js';
import type { TokenResponseDto } from './dto/token-response.dto.js';

export const REFRESH_COOKIE = 'refresh_token';
export const REFRESH_COOKIE_PATH = '/auth';
export const TOKEN_TRANSPORT_HEADER = 'x-token-transport';

/**
 * The cookie transport for refresh tokens (seed 002): a client that sends
 * `X-Token-Transport: cookie` gets its refresh token in an HttpOnly cookie,
 * out of reach of page scripts, instead of in the JSON body.
 *
 * CSRF: the cookie is SameSite=Strict (RFC 6265bis §5.4.7), so browsers do
 * not attach it to cross-site requests, and /auth/refresh reads it only when
 * the request also carries the custom X-Token-Transport header, which a
 * cross-site form or a simple cross-origin request cannot set without a CORS
 * preflight that this API does not grant (OWASP CSRF cheat sheet, "custom
 * request headers"). Logout also needs the bearer access token.
 */
@Injectable()
export class RefreshCookie {
  /** The attributes the cookie is set and cleared with (they must match to clear it). */
  private readonly attributes: {
    httpOnly: true;
    secure: boolean;
    sameSite: 'strict';
    path: string;
  };

  constructor(config: ConfigService<AppConfig, true>) {
    const secure = config.get('auth', { infer: true }).cookieSecure;
    this.attributes = { httpOnly: true, secure, sameSite: 'strict', path: REFRESH_COOKIE_PATH };
  }

  static requested(request: FastifyRequest): boolean {
    const value = request.headers[TOKEN_TRANSPORT_HEADER];
    return typeof value === 'string' && value.trim().toLowerCase() === 'cookie';
  }

  static read(request: FastifyRequest): string | undefined {
    return request.cookies?.[REFRESH_COOKIE] || undefined;
  }

  /**
   * Hands the tokens over the way the client asked: unchanged in the body, or
   * with the refresh token moved into the cookie (and absent from the body).
   */
  deliver(
    request: FastifyRequest,
    reply: FastifyReply,
    tokens: TokenResponseDto,
  ): TokenResponseDto {
    if (!RefreshCookie.requested(request)) return tokens;
    const { refresh_token: refreshToken, ...body } = tokens;
    void reply.setCookie(REFRESH_COOKIE, refreshToken!, {
      ...this.attributes,
      maxAge: tokens.refresh_expires_in,
    });
    return body;
  }

  /** Tells the browser to drop the cookie (an expiry in the past, RFC 6265bis §5.6). */
  clear(reply: FastifyReply): void {
    void reply.clearCookie(REFRESH_COOKIE, this.attributes);
  }
}
