import {
  Body,
  Controller,
  Header,
  HttpCode,
  HttpStatus,
  Post,
  Req,
  UseGuards,
} from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiBody,
  ApiConflictResponse,
  ApiCreatedResponse,
  ApiOkResponse,
  ApiOperation,
  ApiTags,
  ApiUnauthorizedResponse,
} from '@nestjs/swagger';
import type { FastifyRequest } from 'fastify';
import { ErrorResponseDto } from '../common/error-response.dto.js';
import { Public } from '../common/public.decorator.js';
import { AuthService, type ClientInfo } from './auth.service.js';
import { Authenticated } from './authenticated.decorator.js';
import { CredentialsDto, LoginDto } from './dto/credentials.dto.js';
import { LogoutDto, RefreshDto } from './dto/refresh.dto.js';
import { MessageResponseDto, TokenResponseDto } from './dto/token-response.dto.js';
import { RefreshTokenGuard } from './guards/refresh-token.guard.js';
import { CurrentPrincipal, type Principal } from './principal.js';
import type { PresentedRefreshToken } from './strategies/refresh-token.strategy.js';

function clientInfo(request: FastifyRequest): ClientInfo {
  const userAgent = request.headers['user-agent'];
  return { userAgent: userAgent ? userAgent.slice(0, 512) : null, ip: request.ip || null };
}

@ApiTags('auth')
@ApiBadRequestResponse({
  type: ErrorResponseDto,
  description: 'Malformed body (`validation_failed`)',
})
@Controller('auth')
export class AuthController {
  constructor(private readonly auth: AuthService) {}

  @Public()
  @Post('register')
  // RFC 6749 §5.1: token responses must not be cached.
  @Header('Cache-Control', 'no-store')
  @Header('Pragma', 'no-cache')
  @ApiOperation({ summary: 'Create an account and start a session' })
  @ApiCreatedResponse({ type: TokenResponseDto })
  @ApiConflictResponse({ type: ErrorResponseDto, description: 'Username taken (`username_taken`)' })
  register(
    @Body() body: CredentialsDto,
    @Req() request: FastifyRequest,
  ): Promise<TokenResponseDto> {
    return this.auth.register(body.username, body.password, clientInfo(request));
  }

  @Public()
  @Post('login')
  @HttpCode(HttpStatus.OK)
  @Header('Cache-Control', 'no-store')
  @Header('Pragma', 'no-cache')
  @ApiOperation({ summary: 'Start a session (a new token family) with username and password' })
  @ApiOkResponse({ type: TokenResponseDto })
  @ApiUnauthorizedResponse({
    type: ErrorResponseDto,
    description: 'Bad credentials (`invalid_credentials`)',
  })
  login(@Body() body: LoginDto, @Req() request: FastifyRequest): Promise<TokenResponseDto> {
    return this.auth.login(body.username, body.password, clientInfo(request));
  }

  @Public()
  @UseGuards(RefreshTokenGuard)
  @Post('refresh')
  @HttpCode(HttpStatus.OK)
  @Header('Cache-Control', 'no-store')
  @Header('Pragma', 'no-cache')
  @ApiOperation({
    summary: 'Rotate the refresh token: returns a new access token and a new refresh token',
    description:
      'Each refresh token is single-use. Presenting an already rotated one outside the reuse ' +
      'grace window revokes the whole session (`refresh_token_reused`).',
  })
  @ApiBody({ type: RefreshDto })
  @ApiOkResponse({ type: TokenResponseDto })
  @ApiUnauthorizedResponse({
    type: ErrorResponseDto,
    description:
      '`token_invalid`, `token_expired`, `session_revoked`, `session_expired` or `refresh_token_reused`',
  })
  refresh(
    @Body() _body: RefreshDto,
    @Req() request: FastifyRequest & { user: PresentedRefreshToken },
  ): Promise<TokenResponseDto> {
    return this.auth.refresh(request.user);
  }

  @Authenticated()
  @Post('logout')
  @HttpCode(HttpStatus.OK)
  @ApiOperation({
    summary: 'End the session of the access token (and of the given refresh token)',
    description: 'Both the access token and every refresh token of the session get 401 at once.',
  })
  @ApiBody({ type: LogoutDto, required: false })
  @ApiOkResponse({ type: MessageResponseDto })
  async logout(
    @CurrentPrincipal() principal: Principal,
    @Body() body: LogoutDto,
  ): Promise<MessageResponseDto> {
    await this.auth.logout(principal, body.refresh_token);
    return { message: 'Logged out' };
  }
}
