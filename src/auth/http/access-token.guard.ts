import { type ExecutionContext, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { AuthGuard } from '@nestjs/passport';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { DpopBinding } from '../dpop/dpop-binding.service.js';
import { DpopProofs } from '../dpop/dpop-proofs.service.js';
import { AuthErrors } from '../auth-errors.js';
import { IS_PUBLIC_KEY } from '../../common/public.decorator.js';
import type { Principal } from '../../common/principal.js';
import { SessionLiveness } from '../sessions/session-liveness.service.js';
import { ACCESS_STRATEGY, accessCredential, accessToken } from './access-token.strategy.js';
import { VerifiedAccessTokens } from '../tokens/verified-access-tokens.js';
import { passportFailure } from './passport-failure.js';

/** The one global guard: every route needs an access token unless marked @Public(). */
@Injectable()
export class AccessTokenGuard extends AuthGuard(ACCESS_STRATEGY) {
  constructor(
    private readonly reflector: Reflector,
    private readonly verified: VerifiedAccessTokens,
    private readonly sessions: SessionLiveness,
    private readonly proofs: DpopProofs,
    private readonly dpop: DpopBinding,
  ) {
    super();
  }

  override async canActivate(context: ExecutionContext): Promise<boolean> {
    const isPublic = this.reflector.getAllAndOverride<boolean>(IS_PUBLIC_KEY, [
      context.getHandler(),
      context.getClass(),
    ]);
    if (isPublic) return true;
    // What a token unlocks is the caller's own data: no cache, the browser's
    // included, may keep it (RFC 9111 §5.2.2.5; OWASP ASVS 8.2.1). Set here,
    // on the one path every protected route takes, rather than by a decorator
    // each route must remember or an interceptor layer on every request.
    void context.switchToHttp().getResponse<FastifyReply>().header('Cache-Control', 'no-store');
    // A token the strategy verified before (and not yet expired) needs only
    // the per-request session check; anything else goes through passport-jwt.
    const request = context.switchToHttp().getRequest<FastifyRequest & { user?: Principal }>();
    const credential = accessCredential(request);
    // Refused as an unusable token, as other malformed bearer values are:
    // 401 token_invalid, where RFC 6750 §3.1 would allow 400 invalid_request,
    // so a client has one way to handle a credential that did not work.
    if (credential === 'malformed') {
      throw AuthErrors.malformedBearer();
    }
    if (credential === 'absent') return (await super.canActivate(context)) as boolean;
    const principal = this.verified.lookup(credential.token);
    if (principal) {
      try {
        await this.sessions.assertActive(principal.sessionId, principal.userId);
      } catch (error) {
        this.verified.forget(credential.token);
        throw error;
      }
      request.user = principal;
    } else {
      await super.canActivate(context);
    }
    // Last: the proof's jti is spent only by a request whose token is good.
    const proof = await this.proofs.evaluate(
      request,
      context.switchToHttp().getResponse<FastifyReply>(),
      credential.token,
    );
    this.dpop.checkResource(request.user!.keyThumbprint, credential.scheme, proof);
    return true;
  }

  override handleRequest<TUser = Principal>(
    err: unknown,
    user: unknown,
    info: unknown,
    context: ExecutionContext,
  ): TUser {
    if (err || !user) {
      const presented = accessToken(context.switchToHttp().getRequest()) !== null;
      throw passportFailure(err, info, 'Access', presented);
    }
    return user as TUser;
  }
}
