import { type ExecutionContext, Injectable } from '@nestjs/common';
import { AuthGuard } from '@nestjs/passport';
import { AppError, ErrorCode, ValidationError } from '../../common/errors.js';
import { MetricsService } from '../../observability/metrics.service.js';
import {
  locateRefreshToken,
  REFRESH_STRATEGY,
  type PresentedRefreshToken,
} from '../strategies/refresh-token.strategy.js';
import { passportFailure } from './passport-failure.js';

/** Guards the refresh route with the `jwt-refresh` strategy. */
@Injectable()
export class RefreshTokenGuard extends AuthGuard(REFRESH_STRATEGY) {
  constructor(private readonly metrics: MetricsService) {
    super();
  }

  override canActivate(context: ExecutionContext) {
    // Guards run before pipes: reject a missing or non-string token as bad input
    // here, rather than letting it surface as a verification failure.
    if (!locateRefreshToken(context.switchToHttp().getRequest())) {
      const message =
        'refresh_token must be a non-empty string in the body, or sent as the refresh_token cookie ' +
        'with the header X-Token-Transport: cookie';
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
      if (failure instanceof AppError)
        this.metrics.refresh(failure.code === ErrorCode.SessionExpired ? 'expired' : 'invalid');
      throw failure;
    }
    return user as TUser;
  }
}
