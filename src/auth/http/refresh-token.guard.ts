import { type ExecutionContext, Injectable } from '@nestjs/common';
import { AuthGuard } from '@nestjs/passport';
import { AppError, ErrorCode, ValidationError } from '../../common/errors.js';
import { MetricsService } from '../../observability/metrics.service.js';
import { type PresentedRefreshToken, OUTCOME_EFFECTS } from '../sessions/refresh-outcomes.js';
import { RefreshCookie, type RefreshRequest } from './refresh-cookie.js';
import { REFRESH_STRATEGY } from './refresh-token.strategy.js';
import { passportFailure } from './passport-failure.js';

/** Guards the refresh route with the `jwt-refresh` strategy. */
@Injectable()
export class RefreshTokenGuard extends AuthGuard(REFRESH_STRATEGY) {
  constructor(
    private readonly cookie: RefreshCookie,
    private readonly metrics: MetricsService,
  ) {
    super();
  }

  override canActivate(context: ExecutionContext) {
    // Guards run before pipes: reject a missing or non-string token as bad input
    // here, rather than letting it surface as a verification failure. A cookie
    // sent twice is refused here too (cookie_duplicated), before any token work.
    if (!this.cookie.locate(context.switchToHttp().getRequest<RefreshRequest>())) {
      const message =
        `refresh_token must be a non-empty string in the body, or sent as the ${this.cookie.name} ` +
        'cookie with the header X-Token-Transport: cookie';
      throw new ValidationError(message, [{ field: 'refresh_token', messages: [message] }]);
    }
    return super.canActivate(context);
  }

  override handleRequest<TUser = PresentedRefreshToken>(
    err: unknown,
    user: unknown,
    info: unknown,
  ): TUser {
    if (err || !user) {
      // Whether the cookie goes with the failure is RefreshCookieFilter's call.
      const failure = passportFailure(err, info, 'Refresh');
      // Tokens refused before the service sees them: bad signature or claims, or past expiry.
      if (failure instanceof AppError) {
        const outcome = failure.code === ErrorCode.SessionExpired ? 'expired' : 'invalid';
        this.metrics.refresh(OUTCOME_EFFECTS[outcome].metric);
      }
      throw failure;
    }
    return user as TUser;
  }
}
