import { Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { PassportModule } from '@nestjs/passport';
import { AuditModule } from '../audit/audit.module.js';
import type { Redis } from 'ioredis';
import { Clock } from '../common/clock.js';
import { SHARED_REDIS } from '../rate-limit/rate-limit.kinds.js';
import { DpopBinding } from './dpop/dpop-binding.service.js';
import { DpopProofGuard } from './dpop/dpop-proof.guard.js';
import { DpopProofs } from './dpop/dpop-proofs.service.js';
import { DpopReplayCache } from './dpop/dpop-replay-cache.js';
import { UsersModule } from '../users/users.module.js';
import { AccountController } from './account.controller.js';
import { AccountService } from './account.service.js';
import { AuthController } from './auth.controller.js';
import { AuthService } from './auth.service.js';
import { AccessTokenGuard } from './http/access-token.guard.js';
import { AccessTokenStrategy } from './http/access-token.strategy.js';
import { RefreshCookie } from './http/refresh-cookie.js';
import { RefreshTokenGuard } from './http/refresh-token.guard.js';
import { RefreshTokenStrategy } from './http/refresh-token.strategy.js';
import { OAuthClients } from './oauth/oauth-clients.js';
import { OAuthController } from './oauth/oauth.controller.js';
import { OAuthTokens } from './oauth/oauth-tokens.service.js';
import { Introspector } from './oauth/introspection.service.js';
import { ResourceServerGuard } from './oauth/resource-server.guard.js';
import { TokenGrantGuard } from './oauth/token-grant.guard.js';
import { RevocationFeedController } from './oauth/revocation-feed.controller.js';
import { RevocationFeed } from './oauth/revocation-feed.service.js';
import { SessionHousekeeping } from './sessions/session-housekeeping.service.js';
import { SessionLiveness } from './sessions/session-liveness.service.js';
import { SessionRepository } from './sessions/session.repository.js';
import { SessionRevocations } from './sessions/session-revocations.js';
import { SessionRefresh } from './sessions/session-refresh.service.js';
import { SessionsService } from './sessions/sessions.service.js';
import { SessionsController } from './sessions.controller.js';
import { SigningKeys } from './signing-keys/signing-keys.service.js';
import { WellKnownController } from './signing-keys/well-known.controller.js';
import { TokenService } from './tokens/token.service.js';
import { VerifiedAccessTokens } from './tokens/verified-access-tokens.js';

@Module({
  imports: [PassportModule, UsersModule, AuditModule],
  controllers: [
    AuthController,
    SessionsController,
    AccountController,
    WellKnownController,
    OAuthController,
    RevocationFeedController,
  ],
  providers: [
    // Use cases, called by the controllers.
    AuthService,
    AccountService,
    SessionsService,
    SessionRefresh,
    OAuthTokens,
    // The session store, its revocation view and its cleanup.
    SessionRepository,
    SessionRevocations,
    SessionLiveness,
    SessionHousekeeping,
    // What resource servers follow: the ends this instance learns of.
    RevocationFeed,
    // Tokens and the keys that sign them.
    SigningKeys,
    TokenService,
    VerifiedAccessTokens,
    // HTTP: the two passport strategies, their guards, the cookie transport.
    AccessTokenStrategy,
    RefreshTokenStrategy,
    RefreshTokenGuard,
    RefreshCookie,
    // OAuth 2: the token endpoint's clients and guard.
    OAuthClients,
    TokenGrantGuard,
    ResourceServerGuard,
    Introspector,
    // DPoP (RFC 9449): proofs, their replay cache, and what each route requires.
    DpopProofs,
    DpopBinding,
    DpopProofGuard,
    {
      provide: DpopReplayCache,
      inject: [SHARED_REDIS],
      useFactory: (redis: Redis | null) => new DpopReplayCache(redis),
    },
    { provide: APP_GUARD, useClass: AccessTokenGuard },
    Clock,
  ],
  // What readiness (GET /health/ready) checks.
  exports: [SigningKeys, SessionRevocations],
})
export class AuthModule {}
