import { type ArgumentsHost, Catch, Injectable } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { SessionEndedError } from '../../common/errors.js';
import { AllExceptionsFilter } from '../../common/http-exception.filter.js';
import { presentedRefreshToken, RefreshCookie } from './refresh-cookie.js';

/**
 * The one place a failed refresh drops the refresh cookie, then answers as the
 * global filter does. Bound to the refresh route, so it also sees what the
 * route's guards throw.
 *
 * Only a SessionEndedError clears it: the cookie is dead (revoked, expired,
 * reused, not ours) and keeping it would only repeat the 401. Anything else
 * (503 while the database is away, 500, 429 from the rate limit, 400) says
 * nothing about the token, and a browser that dropped it would be logged out
 * by an outage (OWASP ASVS 5.0 16.5.2).
 */
@Catch()
@Injectable()
export class RefreshCookieFilter extends AllExceptionsFilter {
  constructor(private readonly cookie: RefreshCookie) {
    super();
  }

  override catch(exception: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    if (
      exception instanceof SessionEndedError &&
      presentedRefreshToken(http.getRequest<FastifyRequest>())?.source === 'cookie'
    ) {
      this.cookie.clear(http.getResponse<FastifyReply>());
    }
    super.catch(exception, host);
  }
}
