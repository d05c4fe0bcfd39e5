import { Injectable } from '@nestjs/common';
import type { ClientInfo } from '../../common/client-info.js';
import { ValidationError } from '../../common/errors.js';
import { AuthErrors } from '../auth-errors.js';
import { AuthService } from '../auth.service.js';
import type { DpopOutcome } from '../dpop/dpop-proofs.service.js';
import { PASSWORD_INPUT_MAX, USERNAME_INPUT_MAX } from '../dto/credentials.dto.js';
import type { TokenResponseDto } from '../dto/token-response.dto.js';
import type { PresentedRefreshToken } from '../sessions/refresh-outcomes.js';
import { SessionRefresh } from '../sessions/session-refresh.service.js';
import type { OAuthParams } from './oauth-params.js';
import type { TokenGrant } from './token-grant.guard.js';

/**
 * The token endpoint's grants (RFC 6749 §4.3 password, §6 refresh), carried
 * out by the very services behind POST /auth/login and POST /auth/refresh:
 * the same sessions, rotation rule, events and metrics. A token from either
 * route refreshes at the other.
 */
@Injectable()
export class OAuthTokens {
  constructor(
    private readonly auth: AuthService,
    private readonly refreshes: SessionRefresh,
  ) {}

  exchange(
    grant: TokenGrant,
    params: OAuthParams,
    presented: PresentedRefreshToken | undefined,
    client: ClientInfo & { clientId: string },
    proof: DpopOutcome,
  ): Promise<TokenResponseDto> {
    if (grant === 'password') {
      const username = bounded(params, 'username', USERNAME_INPUT_MAX);
      const password = bounded(params, 'password', PASSWORD_INPUT_MAX);
      // The session records the client, and its tokens name it.
      return this.auth.login(username, password, client, proof);
    }
    const issuedTo = presented!.claims.client_id;
    // RFC 6749 §6: a refresh token is spent only by the client it was
    // issued to. Checked before the rotation rule, so another client's
    // attempt neither rotates nor ends the session. A session started on the
    // JSON routes names no client and refreshes here for any listed one.
    if (issuedTo !== undefined && issuedTo !== client.clientId) {
      throw AuthErrors.refreshTokenOfAnotherClient();
    }
    return this.refreshes.refresh(presented!, client, proof);
  }
}

function bounded(params: OAuthParams, name: string, max: number): string {
  const value = params.require(name);
  if (value.length > max) {
    const message = `${name} must be at most ${max} characters`;
    throw new ValidationError(message, [{ field: name, messages: [message] }]);
  }
  return value;
}
