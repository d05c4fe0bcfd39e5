import { createParamDecorator, type ExecutionContext } from '@nestjs/common';

/** Who is calling, as established by the access-token guard. */
export interface Principal {
  userId: string;
  sessionId: string;
  /** The DPoP key thumbprint (`cnf.jkt`) of a bound session's access token. */
  keyThumbprint?: string;
}

export const CurrentPrincipal = createParamDecorator(
  (_data: unknown, ctx: ExecutionContext): Principal =>
    ctx.switchToHttp().getRequest<{ user: Principal }>().user,
);
