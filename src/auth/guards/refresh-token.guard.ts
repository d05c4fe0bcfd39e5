import { type ExecutionContext, Injectable } from '@nestjs/common';
import { AuthGuard } from '@nestjs/passport';
import { ValidationError } from '../../common/errors.js';
import {
  REFRESH_STRATEGY,
  type PresentedRefreshToken,
} from '../strategies/refresh-token.strategy.js';
import { passportFailure } from './passport-failure.js';

/** Guards the refresh route with the `jwt-refresh` strategy. */
@Injectable()
export class RefreshTokenGuard extends AuthGuard(REFRESH_STRATEGY) {
  override canActivate(context: ExecutionContext) {
    // Guards run before pipes: reject a missing or non-string token as bad input
    // here, rather than letting it surface as a verification failure.
    const body = context.switchToHttp().getRequest<{ body?: unknown }>().body;
    const token = (body as { refresh_token?: unknown } | undefined)?.refresh_token;
    if (typeof token !== 'string' || token.length === 0) {
      throw new ValidationError('refresh_token must be a non-empty string', [
        { field: 'refresh_token', messages: ['refresh_token must be a non-empty string'] },
      ]);
    }
    return super.canActivate(context);
  }

  override handleRequest<TUser = PresentedRefreshToken>(
    err: unknown,
    user: unknown,
    info: unknown,
  ): TUser {
    if (err || !user) throw passportFailure(err, info, 'Refresh');
    return user as TUser;
  }
}
