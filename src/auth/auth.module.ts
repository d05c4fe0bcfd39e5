import { Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { PassportModule } from '@nestjs/passport';
import { AuditModule } from '../audit/audit.module.js';
import { Clock } from '../common/clock.js';
import { UsersModule } from '../users/users.module.js';
import { AccountController } from './account.controller.js';
import { AuthController } from './auth.controller.js';
import { AuthService } from './auth.service.js';
import { RefreshTokenGuard } from './http/refresh-token.guard.js';
import { RefreshCookie } from './http/refresh-cookie.js';
import { SessionHousekeeping } from './sessions/session-housekeeping.service.js';
import { SessionsController } from './sessions.controller.js';
import { AccessTokenGuard } from './http/access-token.guard.js';
import { SessionRevocations } from './sessions/session-revocations.js';
import { SessionLiveness } from './sessions/session-liveness.service.js';
import { SigningKeys } from './signing-keys/signing-keys.service.js';
import { AccessTokenStrategy } from './http/access-token.strategy.js';
import { RefreshTokenStrategy } from './http/refresh-token.strategy.js';
import { SessionRepository } from './sessions/session.repository.js';
import { TokenService } from './tokens/token.service.js';
import { VerifiedAccessTokens } from './tokens/verified-access-tokens.js';
import { WellKnownController } from './signing-keys/well-known.controller.js';

@Module({
  imports: [PassportModule, UsersModule, AuditModule],
  controllers: [AuthController, SessionsController, AccountController, WellKnownController],
  providers: [
    AuthService,
    Clock,
    SigningKeys,
    TokenService,
    SessionRepository,
    SessionLiveness,
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
