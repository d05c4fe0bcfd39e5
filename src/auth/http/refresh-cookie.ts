import type {} from '@fastify/cookie';
import { HttpStatus, Injectable } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { AppError, ErrorCode } from '../../common/errors.js';
import type { AppConfig } from '../../config/configuration.js';
import type { TokenResponseDto } from '../dto/token-response.dto.js';

/** The cookie's name when it is Secure (always in production). */
export const REFRESH_COOKIE = '__Host-refresh_token';
/** Its name with COOKIE_SECURE=false: browsers refuse a `__Host-` cookie without Secure. */
export const PLAIN_REFRESH_COOKIE = 'refresh_token';
/** `__Host-` requires Path=/ (RFC 6265bis §4.1.3.2). */
export const REFRESH_COOKIE_PATH = '/';
export const TOKEN_TRANSPORT_HEADER = 'x-token-transport';
/** The OpenAPI security scheme that documents the cookie. */
export const REFRESH_COOKIE_SCHEME = 'refresh_token';

/** Where a presented refresh token came from; only a cookie is ever cleared. */
export type RefreshTokenSource = 'body' | 'cookie';

export interface LocatedRefreshToken {
  token: string;
  source: RefreshTokenSource;
}

const PRESENTED = Symbol('presented refresh token');

/** A request on the refresh route, once its guard has looked for the token. */
export interface RefreshRequest extends FastifyRequest {
  [PRESENTED]?: LocatedRefreshToken | null;
}

/**
 * The refresh token the refresh guard found in this request, for the
 * strategy that verifies it and the filter that may clear its cookie: the
 * request is searched once (RefreshCookie.locate, called by the guard).
 * Undefined before the guard ran.
 */
export function presentedRefreshToken(
  request: RefreshRequest,
): LocatedRefreshToken | null | undefined {
  return request[PRESENTED];
}

/**
 * The cookie transport for refresh tokens: a client that sends
 * `X-Token-Transport: cookie` gets its refresh token in an HttpOnly cookie,
 * out of reach of page scripts, instead of in the JSON body.
 *
 * CSRF: the cookie is SameSite=Strict (RFC 6265bis §5.4.7), so browsers do
 * not attach it to cross-site requests, and /auth/refresh reads it only when
 * the request also carries the custom X-Token-Transport header, which a
 * cross-site form or a simple cross-origin request cannot set without a CORS
 * preflight that this API does not grant (OWASP CSRF cheat sheet, "custom
 * request headers"). Logout also needs the bearer access token.
 *
 * Cookie tossing: SameSite does not stop a sibling subdomain, which is
 * same-site, from planting a cookie of the same name (RFC 6265 §8.6, "weak
 * integrity"), for instance with a more specific Path so that browsers send it
 * first, to log the victim into the attacker's session (login CSRF). The
 * `__Host-` prefix makes browsers refuse such a cookie from any other host
 * (RFC 6265bis §4.1.3.2: Secure, no Domain, Path=/), and a request that still
 * carries the name twice is refused rather than resolved by order.
 */
@Injectable()
export class RefreshCookie {
  readonly name: string;
  /** The attributes the cookie is set and cleared with (they must match to clear it). */
  private readonly attributes: {
    httpOnly: true;
    secure: boolean;
    sameSite: 'strict';
    path: string;
  };

  constructor(config: ConfigService<AppConfig, true>) {
    const secure = config.get('auth', { infer: true }).cookieSecure;
    this.name = secure ? REFRESH_COOKIE : PLAIN_REFRESH_COOKIE;
    this.attributes = { httpOnly: true, secure, sameSite: 'strict', path: REFRESH_COOKIE_PATH };
  }

  static requested(request: FastifyRequest): boolean {
    const value = request.headers[TOKEN_TRANSPORT_HEADER];
    return typeof value === 'string' && value.trim().toLowerCase() === 'cookie';
  }

  /**
   * Finds the refresh token of a refresh request and keeps it on the request
   * (presentedRefreshToken): the body's `refresh_token`, or else the cookie,
   * but only when the request carries `X-Token-Transport: cookie` (the CSRF
   * defence above). Throws when the cookie it would read is there twice.
   */
  locate(request: RefreshRequest): LocatedRefreshToken | null {
    const found = this.find(request);
    request[PRESENTED] = found;
    return found;
  }

  private find(request: FastifyRequest): LocatedRefreshToken | null {
    const fromBody = (request.body as { refresh_token?: unknown } | undefined)?.refresh_token;
    if (typeof fromBody === 'string' && fromBody.length > 0) {
      return { token: fromBody, source: 'body' };
    }
    if (fromBody !== undefined) return null;
    const fromCookie = RefreshCookie.requested(request) ? this.read(request) : undefined;
    return fromCookie ? { token: fromCookie, source: 'cookie' } : null;
  }

  /** The cookie's value; a request that carries it more than once is refused (400). */
  read(request: FastifyRequest): string | undefined {
    if (this.count(request) > 1) {
      throw new AppError(
        HttpStatus.BAD_REQUEST,
        ErrorCode.CookieDuplicated,
        `The ${this.name} cookie was sent more than once; which one is meant cannot be told`,
      );
    }
    return request.cookies?.[this.name] || undefined;
  }

  /** The cookie's value when the request carries it exactly once. */
  readIfSingle(request: FastifyRequest): string | undefined {
    return this.count(request) > 1 ? undefined : request.cookies?.[this.name] || undefined;
  }

  /**
   * How many times the raw Cookie header names the cookie. The parser keeps
   * only the first pair of a name, and browsers list the cookie with the longer
   * path first (RFC 6265 §5.4), so the parsed value cannot tell a planted
   * cookie from ours. Names are compared as the parser does (trimmed,
   * case-sensitive), so every pair it could return is counted.
   */
  private count(request: FastifyRequest): number {
    const header = request.headers.cookie;
    if (!header) return 0;
    let count = 0;
    for (const pair of header.split(';')) {
      const eq = pair.indexOf('=');
      if (eq !== -1 && pair.slice(0, eq).trim() === this.name) count += 1;
    }
    return count;
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
    void reply.setCookie(this.name, refreshToken!, {
      ...this.attributes,
      maxAge: tokens.refresh_expires_in,
    });
    return body;
  }

  /** Tells the browser to drop the cookie (an expiry in the past, RFC 6265bis §5.6). */
  clear(reply: FastifyReply): void {
    void reply.clearCookie(this.name, this.attributes);
  }
}
