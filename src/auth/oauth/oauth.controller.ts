import {
  Controller,
  Header,
  HttpCode,
  HttpStatus,
  Post,
  Req,
  UseFilters,
  UseGuards,
} from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiBody,
  ApiConsumes,
  ApiOkResponse,
  ApiOperation,
  ApiTags,
  ApiUnauthorizedResponse,
} from '@nestjs/swagger';
import type { FastifyRequest } from 'fastify';
import { Client, type ClientInfo } from '../../common/client-info.js';
import { ErrorResponseDto } from '../../common/error-response.dto.js';
import { FORM_CONTENT_TYPE } from '../../common/form-body.js';
import { OAuthExceptionsFilter } from '../../common/http-exception.filter.js';
import { Public } from '../../common/public.decorator.js';
import { RateLimitedBy } from '../../rate-limit/rate-limit.guard.js';
import { TokenResponseDto } from '../dto/token-response.dto.js';
import { LOGIN_LIMITS, REFRESH_LIMITS } from '../rate-limits.js';
import type { PresentedRefreshToken } from '../sessions/refresh-outcomes.js';
import { type Introspection, Introspector } from './introspection.service.js';
import { IntrospectionDto, IntrospectionRequestDto } from './introspection.dto.js';
import { DpopHeader, DpopProof, DpopProofGuard } from '../dpop/dpop-proof.guard.js';
import type { DpopOutcome } from '../dpop/dpop-proofs.service.js';
import { OAuthParams } from './oauth-params.js';
import { ResourceServerAuthenticated } from './resource-server.guard.js';
import { OAuthTokens } from './oauth-tokens.service.js';
import { TokenGrantGuard, tokenRequestLimits, type TokenRequest } from './token-grant.guard.js';
import { TokenRequestDto } from './token-request.dto.js';

/**
 * The OAuth 2 endpoints standard clients speak (oauth4webapi, openid-client,
 * AppAuth, Postman, gateways, Swagger UI's Authorize dialog): form-encoded,
 * answering errors as RFC 6749 §5.2 has them.
 */
@ApiTags('oauth')
@UseFilters(OAuthExceptionsFilter)
@Controller('oauth')
export class OAuthController {
  constructor(
    private readonly tokens: OAuthTokens,
    private readonly introspector: Introspector,
  ) {}

  @Public()
  @UseGuards(TokenGrantGuard, DpopProofGuard)
  // Below UseGuards on purpose: the rate limit then runs first, before any token or client work.
  @RateLimitedBy(
    [...LOGIN_LIMITS.kinds, ...REFRESH_LIMITS.kinds],
    tokenRequestLimits(LOGIN_LIMITS, REFRESH_LIMITS),
  )
  @Post('token')
  @HttpCode(HttpStatus.OK)
  // RFC 6749 §5.1: token responses must not be cached.
  @Header('Cache-Control', 'no-store')
  @Header('Pragma', 'no-cache')
  @ApiOperation({
    summary: 'OAuth 2 token endpoint: password and refresh_token grants (RFC 6749 §4.3, §6)',
    description:
      'Form-encoded, for standard OAuth clients. The same sessions, rotation rule, rate limits ' +
      'and events as POST /auth/login and POST /auth/refresh; a refresh token from either ' +
      'refreshes at the other. The client names itself by `client_id` (one of OAUTH_CLIENTS); ' +
      'a refresh token issued to one client is refused to another. Errors follow RFC 6749 §5.2 ' +
      '(`error`, `error_description`) and keep `code` and `message`.',
  })
  @ApiConsumes(FORM_CONTENT_TYPE)
  @DpopHeader()
  @ApiBody({ type: TokenRequestDto })
  @ApiOkResponse({ type: TokenResponseDto })
  @ApiBadRequestResponse({
    type: ErrorResponseDto,
    description:
      '`invalid_grant` (wrong credentials; a refresh token reused, revoked, expired, superseded ' +
      'or issued to another client), `invalid_request`, `unsupported_grant_type`, ' +
      '`invalid_dpop_proof` and `use_dpop_nonce` (RFC 9449 §5, §8)',
  })
  @ApiUnauthorizedResponse({
    type: ErrorResponseDto,
    description: '`invalid_client`: no client_id, an unlisted one, or a secret',
  })
  token(
    @Req() request: TokenRequest & { user?: PresentedRefreshToken },
    @Client() client: ClientInfo,
    @DpopProof() proof: DpopOutcome,
  ): Promise<TokenResponseDto> {
    return this.tokens.exchange(
      request.grant,
      OAuthParams.of(request),
      request.user,
      { ...client, clientId: request.oauthClient },
      proof,
    );
  }

  @ResourceServerAuthenticated()
  @Post('introspect')
  @HttpCode(HttpStatus.OK)
  @Header('Cache-Control', 'no-store')
  @ApiOperation({
    summary: 'Token introspection for resource servers (RFC 7662)',
    description:
      'Authenticated with a resource server’s credentials (RESOURCE_SERVERS, ' +
      '`client_secret_basic`). An access token is active while it verifies and its session is ' +
      'live: a logout makes it inactive at once, on every instance. A refresh token is active ' +
      'while a refresh with it would succeed. Anything else is `{"active": false}`.',
  })
  @ApiConsumes(FORM_CONTENT_TYPE, 'application/json')
  @ApiBody({ type: IntrospectionRequestDto })
  @ApiOkResponse({ type: IntrospectionDto })
  @ApiBadRequestResponse({
    type: ErrorResponseDto,
    description: 'No token, or a parameter repeated (`invalid_request`)',
  })
  introspect(@Req() request: FastifyRequest): Promise<Introspection> {
    const params = OAuthParams.of(request, { json: true });
    return this.introspector.introspect(params.require('token'), params.get('token_type_hint'));
  }
}
