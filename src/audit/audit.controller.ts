import { Controller, Get, Query } from '@nestjs/common';
import { ApiBadRequestResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { Authenticated } from '../common/authenticated.decorator.js';
import { ErrorResponseDto } from '../common/error-response.dto.js';
import { CurrentPrincipal, type Principal } from '../common/principal.js';
import { AuditService } from './audit.service.js';
import { AuthEventDto, ListEventsQueryDto } from './audit.dto.js';

@ApiTags('users')
@Authenticated()
@Controller('users/me/events')
export class AuditController {
  constructor(private readonly audit: AuditService) {}

  @Get()
  @ApiOperation({
    summary: "The caller's auth events, newest first",
    description:
      'Registrations, logins (also failed ones), refreshes, logouts, password changes, and every ' +
      'ended session with its reason, so a user can see why they were signed out.',
  })
  @ApiOkResponse({ type: [AuthEventDto] })
  @ApiBadRequestResponse({
    type: ErrorResponseDto,
    description: 'Invalid `limit` or `before`, or an unknown parameter (`validation_failed`)',
  })
  async list(
    @CurrentPrincipal() principal: Principal,
    @Query() query: ListEventsQueryDto,
  ): Promise<AuthEventDto[]> {
    const rows = await this.audit.listForUser(principal.userId, query.limit, query.before);
    return rows.map((row) => AuthEventDto.from(row));
  }
}
