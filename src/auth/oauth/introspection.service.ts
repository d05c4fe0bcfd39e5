import { Injectable } from '@nestjs/common';
import { Clock } from '../../common/clock.js';
import { AppError } from '../../common/errors.js';
import { ConfigService } from '@nestjs/config';
import type { AppConfig } from '../../config/configuration.js';
import { decideRotation } from '../sessions/rotation.rules.js';
import { presentedGeneration } from '../sessions/session-refresh.service.js';
import { SessionLiveness } from '../sessions/session-liveness.service.js';
import { SessionRepository } from '../sessions/session.repository.js';
import type { TokenClaims } from '../tokens/token-claims.js';
import { TokenService } from '../tokens/token.service.js';

/** An RFC 7662 §2.2 introspection response. */
export interface Introspection {
  active: boolean;
  token_type?: 'Bearer' | 'DPoP';
  client_id?: string;
  /** RFC 9449 §6.2: the key a DPoP-bound token is bound to. */
  cnf?: { jkt: string };
  sub?: string;
  sid?: string;
  aud?: string;
  iss?: string;
  jti?: string;
  iat?: number;
  exp?: number;
}

const INACTIVE: Introspection = { active: false };

/**
 * RFC 7662 token introspection, for resource servers that would rather ask
 * than verify. An access token is active while its signature, claims and
 * expiry verify and its session is live, by the same view the access guard
 * consults (SessionLiveness), so a logout makes it inactive at once, on
 * every instance. A refresh token is active while a refresh with it would
 * yield tokens: the newest of a live session, or its parent (which gets the
 * newest back; see rotation.rules.ts). Anything else is `{active: false}`
 * and nothing more (§2.2), so the answer reveals nothing about a dead token.
 */
@Injectable()
export class Introspector {
  private readonly reuseGrace: number;

  constructor(
    config: ConfigService<AppConfig, true>,
    private readonly tokens: TokenService,
    private readonly liveness: SessionLiveness,
    private readonly store: SessionRepository,
    private readonly clock: Clock,
  ) {
    this.reuseGrace = config.get('auth', { infer: true }).refreshReuseGrace;
  }

  async introspect(token: string, hint: string | undefined): Promise<Introspection> {
    const now = this.clock.now();
    const asAccess = () => this.accessToken(token, now);
    const asRefresh = () => this.refreshToken(token, now);
    if (hint === 'refresh_token') return (await asRefresh()) ?? (await asAccess()) ?? INACTIVE;
    return (await asAccess()) ?? (await asRefresh()) ?? INACTIVE;
  }

  /** Undefined when it is no access token of ours; INACTIVE when it is one of an ended session. */
  private async accessToken(token: string, now: Date): Promise<Introspection | undefined> {
    const claims = await this.tokens.verifyAccessTokenAt(token, now);
    if (!claims) return undefined;
    try {
      await this.liveness.assertActive(claims.sid, claims.sub, now);
    } catch (error) {
      if (error instanceof AppError) return INACTIVE;
      throw error;
    }
    return active(claims, claims.cnf ? 'DPoP' : 'Bearer');
  }

  private async refreshToken(token: string, now: Date): Promise<Introspection | undefined> {
    const claims = this.tokens.verifyRefreshTokenIgnoringExpiry(token);
    if (!claims) return undefined;
    if (claims.exp * 1000 <= now.getTime()) return INACTIVE;
    const state = await this.store.findForRotation(claims.sid);
    if (!state) return INACTIVE;
    const generation = presentedGeneration(state, { claims, token });
    const decision = decideRotation(state, generation, now, this.reuseGrace);
    return decision.kind === 'rotate' || decision.kind === 'reissue' ? active(claims) : INACTIVE;
  }
}

function active(claims: TokenClaims, tokenType?: 'Bearer' | 'DPoP'): Introspection {
  return {
    active: true,
    ...(tokenType ? { token_type: tokenType } : {}),
    ...(claims.client_id === undefined ? {} : { client_id: claims.client_id }),
    ...(claims.cnf ? { cnf: { jkt: claims.cnf.jkt } } : {}),
    sub: claims.sub,
    sid: claims.sid,
    aud: claims.aud,
    iss: claims.iss,
    jti: claims.jti,
    iat: claims.iat,
    exp: claims.exp,
  };
}
