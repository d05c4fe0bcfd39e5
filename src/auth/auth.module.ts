import { Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { PassportModule } from '@nestjs/passport';
import { AuditModule } from '../audit/audit.module.js';
import { Clock } from '../common/clock.js';
import { UsersModule } from '../users/users.module.js';
import { AccountController } from './account.controller.js';
import { AuthController } from './auth.controller.js';
import { AuthService } from './auth.service.js';
import { RefreshTokenGuard } from './guards/refresh-token.guard.js';
import { RefreshCookie } from './refresh-cookie.js';
import { SessionHousekeeping } from './session-housekeeping.service.js';
import { SessionsController } from './sessions.controller.js';
import { AccessTokenGuard } from './guards/access-token.guard.js';
import { SessionRevocations } from './session-revocations.js';
import { SessionService } from './session.service.js';
import { SigningKeys } from './signing-keys/signing-keys.service.js';
import { AccessTokenStrategy } from './strategies/access-token.strategy.js';
import { RefreshTokenStrategy } from './strategies/refresh-token.strategy.js';
import { SessionRepository } from './session.repository.js';
import { TokenService } from './token.service.js';
import { VerifiedAccessTokens } from './verified-access-tokens.js';
import { WellKnownController } from './well-known.controller.js';

@Module({
  imports: [PassportModule, UsersModule, AuditModule],
  controllers: [AuthController, SessionsController, AccountController, WellKnownController],
  providers: [
    AuthService,
    Clock,
    SigningKeys,
    TokenService,
    SessionRepository,
    SessionService,
    SessionRevocations,
    VerifiedAccessTokens,
    AccessTokenStrategy,
    RefreshTokenStrategy,
    RefreshTokenGuard,
    RefreshCookie,
    SessionHousekeeping,
    { provide: APP_GUARD, useClass: AccessTokenGuard },
  ],
})
export class AuthModule {}
