import {
  Controller,
  Delete,
  Get,
  HttpCode,
  HttpStatus,
  Param,
  ParseUUIDPipe,
  Res,
} from '@nestjs/common';
import {
  ApiNoContentResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiTags,
} from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { Client, type ClientInfo } from '../common/client-info.js';
import { ErrorResponseDto } from '../common/error-response.dto.js';
import { NotFoundError } from '../common/errors.js';
import { SessionsService } from './sessions/sessions.service.js';
import { Authenticated } from '../common/authenticated.decorator.js';
import { SessionDto } from './dto/session.dto.js';
import { CurrentPrincipal, type Principal } from '../common/principal.js';
import { RefreshCookie } from './http/refresh-cookie.js';

@ApiTags('sessions')
@Authenticated()
@Controller('auth/sessions')
export class SessionsController {
  constructor(
    private readonly sessions: SessionsService,
    private readonly cookie: RefreshCookie,
  ) {}

  @Get()
  @ApiOperation({ summary: "The caller's live sessions (devices), most recently used first" })
  @ApiOkResponse({ type: [SessionDto] })
  async list(@CurrentPrincipal() principal: Principal): Promise<SessionDto[]> {
    const sessions = await this.sessions.list(principal.userId);
    return sessions.map((session) => SessionDto.from(session, principal.sessionId));
  }

  @Delete(':id')
  @HttpCode(HttpStatus.NO_CONTENT)
  @ApiOperation({
    summary: 'End one of the caller’s sessions',
    description:
      'Its access and refresh tokens get 401 at once. Ending the current session clears the cookie.',
  })
  @ApiNoContentResponse()
  @ApiNotFoundResponse({
    type: ErrorResponseDto,
    description: 'Not a live session of the caller (`not_found`), including other users’ ids',
  })
  async revoke(
    @CurrentPrincipal() principal: Principal,
    // A malformed id cannot name a session: the same 404 as any unknown one.
    @Param(
      'id',
      new ParseUUIDPipe({ exceptionFactory: () => new NotFoundError('No such session') }),
    )
    id: string,
    @Client() client: ClientInfo,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<void> {
    await this.sessions.endOwn(principal.userId, id, client);
    if (id === principal.sessionId) this.cookie.clear(reply);
  }
}
