import { applyDecorators } from '@nestjs/common';
import { ApiBearerAuth, ApiUnauthorizedResponse } from '@nestjs/swagger';
import { ErrorResponseDto } from './error-response.dto.js';

/**
 * Marks a controller or route as needing an access token. The global guard
 * already enforces it (routes opt out with @Public()); this bundles the
 * OpenAPI security requirement and the documented 401 so both stay in step.
 */
export function Authenticated() {
  return applyDecorators(
    ApiBearerAuth(),
    ApiUnauthorizedResponse({
      type: ErrorResponseDto,
      description:
        'Missing (`token_missing`), malformed or invalid (`token_invalid`) or expired ' +
        '(`token_expired`) access token, or its session ended (`session_revoked`, `session_expired`)',
    }),
  );
}
