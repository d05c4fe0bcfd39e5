import {
  type CanActivate,
  createParamDecorator,
  type ExecutionContext,
  Injectable,
} from '@nestjs/common';
import { ApiHeader } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { type DpopOutcome, DpopProofs } from './dpop-proofs.service.js';

interface DpopRequest extends FastifyRequest {
  dpop?: DpopOutcome;
}

/**
 * Evaluates the DPoP proof of a token request (login, register, refresh,
 * the token endpoint, revocation) for the handler, which passes the outcome
 * to DpopBinding's rule. Listed after the guards that authenticate the
 * request, so a throttled or unauthenticated request spends no replay-cache
 * entry. Resource requests are the access guard's.
 */
@Injectable()
export class DpopProofGuard implements CanActivate {
  constructor(private readonly proofs: DpopProofs) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const http = context.switchToHttp();
    const request = http.getRequest<DpopRequest>();
    request.dpop = await this.proofs.evaluate(request, http.getResponse<FastifyReply>());
    return true;
  }
}

/** The outcome DpopProofGuard found, as a handler parameter. */
export const DpopProof = createParamDecorator(
  (_data: unknown, ctx: ExecutionContext): DpopOutcome =>
    ctx.switchToHttp().getRequest<DpopRequest>().dpop ?? { kind: 'absent' },
);

/** Documents the optional `DPoP` request header of a token request. */
export const DpopHeader = () =>
  ApiHeader({
    name: 'DPoP',
    required: false,
    description:
      'A DPoP proof (RFC 9449 §4): a `dpop+jwt` JWS over this method and URL, signed by the ' +
      'client’s key. On a login, register or token request it binds the new session to that key ' +
      '(`token_type` is then `DPoP`); a bound session’s refresh and revocation require it.',
  });
