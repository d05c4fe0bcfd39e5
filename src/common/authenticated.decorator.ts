import { applyDecorators } from '@nestjs/common';
import { ApiBearerAuth, ApiOAuth2, ApiUnauthorizedResponse } from '@nestjs/swagger';
import { ErrorResponseDto } from './error-response.dto.js';

/**
 * Marks a controller or route as needing an access token. The global guard
 * already enforces it (routes opt out with @Public()); this bundles the
 * OpenAPI security requirement and the documented 401 so both stay in step.
 */
/** The OpenAPI security scheme of the OAuth 2 password flow (Swagger UI's Authorize dialog). */
export const OAUTH2_SCHEME = 'oauth2';

export function Authenticated() {
  return applyDecorators(
    // Either scheme: a pasted bearer token, or one Swagger UI got from the token endpoint.
    ApiBearerAuth(),
    ApiOAuth2([], OAUTH2_SCHEME),
    ApiUnauthorizedResponse({
      type: ErrorResponseDto,
      description:
        'Missing (`token_missing`), malformed or invalid (`token_invalid`) or expired ' +
        '(`token_expired`) access token, or its session ended (`session_revoked`, `session_expired`)',
    }),
  );
}
