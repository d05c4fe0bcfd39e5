import {
  Body,
  Controller,
  Header,
  HttpCode,
  HttpStatus,
  Post,
  Req,
  Res,
  UseFilters,
  UseGuards,
} from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiBody,
  ApiConflictResponse,
  ApiConsumes,
  ApiCookieAuth,
  ApiCreatedResponse,
  ApiHeader,
  ApiOkResponse,
  ApiOperation,
  ApiTags,
  ApiUnauthorizedResponse,
} from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Client, type ClientInfo } from '../common/client-info.js';
import { ErrorResponseDto } from '../common/error-response.dto.js';
import { FORM_CONTENT_TYPE } from '../common/form-body.js';
import { OAuthExceptionsFilter } from '../common/http-exception.filter.js';
import { Public } from '../common/public.decorator.js';
import { OAuthParams } from './oauth/oauth-params.js';
import { AuthService } from './auth.service.js';
import type { PresentedRefreshToken } from './sessions/refresh-outcomes.js';
import { SessionRefresh } from './sessions/session-refresh.service.js';
import { Authenticated } from '../common/authenticated.decorator.js';
import { CredentialsDto, LoginDto } from './dto/credentials.dto.js';
import { LogoutAllDto, LogoutDto, RefreshDto, RevokeTokenDto } from './dto/refresh.dto.js';
import {
  LogoutAllResponseDto,
  MessageResponseDto,
  TokenResponseDto,
} from './dto/token-response.dto.js';
import { RateLimited, RateLimitedBy } from '../rate-limit/rate-limit.guard.js';
import { LOGIN_LIMITS, REFRESH_LIMITS } from './rate-limits.js';
import { RefreshTokenGuard } from './http/refresh-token.guard.js';
import { CurrentPrincipal, type Principal } from '../common/principal.js';
import { REFRESH_COOKIE_SCHEME, RefreshCookie } from './http/refresh-cookie.js';
import { RefreshCookieFilter } from './http/refresh-cookie.filter.js';
import { DpopHeader, DpopProof, DpopProofGuard } from './dpop/dpop-proof.guard.js';
import type { DpopOutcome } from './dpop/dpop-proofs.service.js';

const TransportHeader = () =>
  ApiHeader({
    name: 'X-Token-Transport',
    required: false,
    enum: ['cookie'],
    description:
      '`cookie`: the refresh token is set as the HttpOnly, Secure, SameSite=Strict cookie ' +
      '`__Host-refresh_token` (Path=/) and left out of the JSON body. On /auth/refresh it also ' +
      'allows the cookie to be read. With COOKIE_SECURE=false (plain-http development only) the ' +
      'cookie is `refresh_token`, without Secure.',
  });

const setCookieHeader = {
  'Set-Cookie': {
    description:
      'Only with `X-Token-Transport: cookie`: `__Host-refresh_token=<token>; ' +
      'Max-Age=<refresh_expires_in>; Path=/; HttpOnly; Secure; SameSite=Strict`',
    schema: { type: 'string' },
  },
};

const clearCookieHeader = {
  'Set-Cookie': {
    description:
      'Clears the refresh-token cookie: `__Host-refresh_token=; Max-Age=0; ' +
      'Expires=Thu, 01 Jan 1970 ...; Path=/`',
    schema: { type: 'string' },
  },
};

@ApiTags('auth')
@ApiBadRequestResponse({
  type: ErrorResponseDto,
  description: 'Malformed body (`validation_failed`)',
})
@Controller('auth')
export class AuthController {
  constructor(
    private readonly auth: AuthService,
    private readonly refreshes: SessionRefresh,
    private readonly cookie: RefreshCookie,
  ) {}

  @Public()
  // Below the rate limit's guard on purpose: a throttled request checks no proof.
  @UseGuards(DpopProofGuard)
  @RateLimited('ip')
  @Post('register')
  // RFC 6749 §5.1: token responses must not be cached.
  @Header('Cache-Control', 'no-store')
  @Header('Pragma', 'no-cache')
  @ApiOperation({ summary: 'Create an account and start a session' })
  @TransportHeader()
  @DpopHeader()
  @ApiCreatedResponse({ type: TokenResponseDto, headers: setCookieHeader })
  @ApiConflictResponse({ type: ErrorResponseDto, description: 'Username taken (`username_taken`)' })
  async register(
    @Body() body: CredentialsDto,
    @Client() client: ClientInfo,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
    @DpopProof() proof: DpopOutcome,
  ): Promise<TokenResponseDto> {
    const tokens = await this.auth.register(body.username, body.password, client, proof);
    return this.cookie.deliver(request, reply, tokens);
  }

  @Public()
  @UseGuards(DpopProofGuard)
  @RateLimitedBy(LOGIN_LIMITS.kinds, LOGIN_LIMITS)
  @Post('login')
  @HttpCode(HttpStatus.OK)
  @Header('Cache-Control', 'no-store')
  @Header('Pragma', 'no-cache')
  @ApiOperation({
    summary: 'Start a session with username and password',
    description:
      'At most MAX_SESSIONS_PER_USER sessions live at once: a new login ends the least recently used one.',
  })
  @TransportHeader()
  @DpopHeader()
  @ApiOkResponse({ type: TokenResponseDto, headers: setCookieHeader })
  @ApiUnauthorizedResponse({
    type: ErrorResponseDto,
    description: 'Bad credentials (`invalid_credentials`)',
  })
  async login(
    @Body() body: LoginDto,
    @Client() client: ClientInfo,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
    @DpopProof() proof: DpopOutcome,
  ): Promise<TokenResponseDto> {
    const tokens = await this.auth.login(body.username, body.password, client, proof);
    return this.cookie.deliver(request, reply, tokens);
  }

  @Public()
  // Clears the cookie when, and only when, the session is over (see the filter).
  @UseFilters(RefreshCookieFilter)
  @UseGuards(RefreshTokenGuard, DpopProofGuard)
  // Below UseGuards on purpose: its guard then runs first, throttling before any token work.
  @RateLimitedBy(REFRESH_LIMITS.kinds, REFRESH_LIMITS)
  @Post('refresh')
  @HttpCode(HttpStatus.OK)
  @Header('Cache-Control', 'no-store')
  @Header('Pragma', 'no-cache')
  @ApiOperation({
    summary: 'Rotate the refresh token: returns a new access token and a new refresh token',
    description:
      'Rotates the session to its next generation. The token the newest one was rotated from gets ' +
      'that same newest token back, at any time (a lost response or a second tab). A token whose ' +
      'successor was already used gets `409 refresh_token_superseded` within a few seconds of that ' +
      'use (two racing clients) and, after them, revokes the whole session (`refresh_token_reused`), ' +
      'as does any older token (RFC 9700 §4.14.2). The token comes from the ' +
      'body, or from the `__Host-refresh_token` cookie when the request sends ' +
      '`X-Token-Transport: cookie`. A request that carries that cookie more than once is refused ' +
      '(`cookie_duplicated`): another host of the site may have planted one.',
  })
  @TransportHeader()
  @DpopHeader()
  @ApiCookieAuth(REFRESH_COOKIE_SCHEME)
  @ApiBadRequestResponse({
    type: ErrorResponseDto,
    description:
      'Malformed body or no refresh token (`validation_failed`); the cookie sent more than once ' +
      '(`cookie_duplicated`), which clears neither; a DPoP-bound session without a valid proof of ' +
      'its key (`invalid_dpop_proof`, `use_dpop_nonce`), which leaves the session as it was',
  })
  @ApiBody({ type: RefreshDto, required: false })
  @ApiOkResponse({ type: TokenResponseDto, headers: setCookieHeader })
  @ApiUnauthorizedResponse({
    type: ErrorResponseDto,
    description:
      '`token_invalid`, `session_revoked`, `session_expired` or `refresh_token_reused`: the session ' +
      'is over, and a cookie that was presented is cleared. No other error (409, 429, 5xx) clears it.',
  })
  @ApiConflictResponse({
    type: ErrorResponseDto,
    description:
      '`refresh_token_superseded`: a newer refresh token of this session was used moments ago. ' +
      'The session goes on; present the newest token (the cookie jar already holds it).',
  })
  async refresh(
    @Body() _body: RefreshDto,
    @Client() client: ClientInfo,
    @Req() request: FastifyRequest & { user: PresentedRefreshToken },
    @Res({ passthrough: true }) reply: FastifyReply,
    @DpopProof() proof: DpopOutcome,
  ): Promise<TokenResponseDto> {
    const tokens = await this.refreshes.refresh(request.user, client, proof);
    return this.cookie.deliver(request, reply, tokens);
  }

  @Authenticated()
  @Post('logout')
  @HttpCode(HttpStatus.OK)
  @ApiOperation({
    summary: 'End the session of the access token (and of the given refresh token)',
    description:
      'Both the access token and every refresh token of the session get 401 at once. The refresh ' +
      'token defaults to the `__Host-refresh_token` cookie, which the response clears; a cookie ' +
      'sent more than once names no session (the bearer token’s still ends).',
  })
  @ApiBody({ type: LogoutDto, required: false })
  @ApiOkResponse({ type: MessageResponseDto, headers: clearCookieHeader })
  async logout(
    @CurrentPrincipal() principal: Principal,
    @Body() body: LogoutDto,
    @Client() client: ClientInfo,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<MessageResponseDto> {
    // The bearer token already authenticates this request, so the cookie is
    // read without the transport header: a forged cross-site request has no bearer token.
    // An ambiguous cookie is left out rather than refused: a planted one must not
    // be able to block logout, and the bearer's session ends either way.
    const refreshToken = body.refresh_token ?? this.cookie.readIfSingle(request);
    await this.auth.logout(principal, refreshToken, client);
    this.cookie.clear(reply);
    return { message: 'Logged out' };
  }

  @Authenticated()
  @Post('logout-all')
  @HttpCode(HttpStatus.OK)
  @ApiOperation({
    summary: 'End all of the caller’s sessions, or all but the current one',
    description: 'Every affected access and refresh token gets 401 at once.',
  })
  @ApiBody({ type: LogoutAllDto, required: false })
  @ApiOkResponse({ type: LogoutAllResponseDto, headers: clearCookieHeader })
  async logoutAll(
    @CurrentPrincipal() principal: Principal,
    @Body() body: LogoutAllDto,
    @Client() client: ClientInfo,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<LogoutAllResponseDto> {
    const revoked = await this.auth.logoutAll(principal, body.scope, client);
    if (body.scope === 'all') this.cookie.clear(reply);
    return { message: 'Logged out', revoked_sessions: revoked };
  }

  @Public()
  @UseGuards(DpopProofGuard)
  @RateLimited('ip')
  // RFC 7009 §2.2.1: its errors are RFC 6749 §5.2's.
  @UseFilters(OAuthExceptionsFilter)
  @Post('revoke')
  @HttpCode(HttpStatus.OK)
  @ApiOperation({
    summary: 'Revoke a token (RFC 7009)',
    description:
      'Ends the session of the given refresh or access token. Form-encoded as RFC 7009 §2.1 ' +
      'requires, or JSON. An access token is taken up to REVOKE_ACCESS_TOKEN_GRACE past its ' +
      'expiry, not later. Answers 200 whether or not the token was valid, known or already ' +
      'revoked (RFC 7009 §2.2), so it reveals nothing about it. An unknown `token_type_hint` ' +
      'is ignored (§2.2.1), and so is `client_id`: holding a token is what entitles a caller ' +
      'to end its session, so anyone who finds a leaked token can revoke it, unless its session ' +
      'is DPoP-bound: then only with a DPoP proof of its key (`invalid_dpop_proof` otherwise).',
  })
  @DpopHeader()
  @ApiConsumes(FORM_CONTENT_TYPE, 'application/json')
  @ApiBody({ type: RevokeTokenDto })
  @ApiOkResponse({ description: 'Revoked, or nothing to revoke' })
  @ApiBadRequestResponse({
    type: ErrorResponseDto,
    description:
      'No token, or a parameter repeated (`invalid_request`); a token of a DPoP-bound session ' +
      'without a proof of its key (`invalid_dpop_proof`, `use_dpop_nonce`)',
  })
  async revoke(
    @Req() request: FastifyRequest,
    @Client() client: ClientInfo,
    @DpopProof() proof: DpopOutcome,
  ): Promise<void> {
    const params = OAuthParams.of(request, { json: true });
    const token = params.require('token');
    await this.auth.revokeToken(token, params.get('token_type_hint'), client, proof);
  }
}
