import { Body, Controller, Delete, HttpCode, HttpStatus, Patch, Res } from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiForbiddenResponse,
  ApiNoContentResponse,
  ApiOperation,
  ApiTags,
} from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { Client, type ClientInfo } from '../common/client-info.js';
import { ErrorResponseDto } from '../common/error-response.dto.js';
import { RateLimited } from '../rate-limit/rate-limit.guard.js';
import { AccountService } from './account.service.js';
import { Authenticated } from '../common/authenticated.decorator.js';
import { ChangePasswordDto, DeleteAccountDto } from './dto/account.dto.js';
import { CurrentPrincipal, type Principal } from '../common/principal.js';
import { RefreshCookie } from './http/refresh-cookie.js';

const wrongPassword = {
  type: ErrorResponseDto,
  description: 'The password given is wrong (`invalid_password`); nothing changed',
};

/**
 * Credential operations on the caller's account. They live with the auth
 * rules because each one ends sessions.
 */
@ApiTags('users')
@Authenticated()
@ApiBadRequestResponse({
  type: ErrorResponseDto,
  description: 'Malformed body (`validation_failed`)',
})
@Controller('users/me')
export class AccountController {
  constructor(
    private readonly account: AccountService,
    private readonly cookie: RefreshCookie,
  ) {}

  // Per user too: a stolen access token must not buy unlimited guesses from rotating addresses.
  @RateLimited('ip', 'password')
  @Patch('password')
  @HttpCode(HttpStatus.NO_CONTENT)
  @ApiOperation({
    summary: 'Change the password',
    description: 'Every other session ends at once; the current one goes on.',
  })
  @ApiNoContentResponse()
  @ApiForbiddenResponse(wrongPassword)
  async changePassword(
    @CurrentPrincipal() principal: Principal,
    @Body() body: ChangePasswordDto,
    @Client() client: ClientInfo,
  ): Promise<void> {
    await this.account.changePassword(principal, body.current_password, body.new_password, client);
  }

  @RateLimited('ip', 'password')
  @Delete()
  @HttpCode(HttpStatus.NO_CONTENT)
  @ApiOperation({ summary: 'Delete the account, its sessions, todos and events' })
  @ApiNoContentResponse()
  @ApiForbiddenResponse(wrongPassword)
  async delete(
    @CurrentPrincipal() principal: Principal,
    @Body() body: DeleteAccountDto,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<void> {
    await this.account.deleteAccount(principal, body.password);
    this.cookie.clear(reply);
  }
}
