import { Inject, Injectable } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Clock } from '../../common/clock.js';
import { pathOf } from '../../common/request-path.js';
import type { AppConfig, DpopConfig } from '../../config/configuration.js';
import { DpopNonces } from './dpop-nonces.js';
import { checkProof, DpopProofError, type ProofFault, ProofKeyCache } from './dpop-proof.js';
import { DpopReplayCache } from './dpop-replay-cache.js';

/** Seconds a proof's `iat` may lie ahead of this server's clock (client clocks drift). */
export const PROOF_IAT_LEEWAY = 5;

/** What a request's `DPoP` header proved: nothing sent, a key, or a refusal and why. */
export type DpopOutcome =
  | { kind: 'absent' }
  | { kind: 'valid'; jkt: string }
  | { kind: 'refused'; fault: ProofFault; message: string };

const ABSENT: DpopOutcome = Object.freeze({ kind: 'absent' });

/**
 * Checks the DPoP proof a request carries (RFC 9449 §4.3): its signature
 * and claims against the request (dpop-proof.ts), the server nonce when
 * DPOP_NONCE requires one (§8, §9), and last, once everything else holds,
 * that its `jti` was never accepted before (DpopReplayCache), so a refused
 * proof spends no cache entry. What a route requires of the outcome is
 * DpopBinding's rule; this only says what the header proved.
 *
 * `htu` is compared with PUBLIC_URL and the request's path: the URL clients
 * use, whatever a proxy in front rewrote the Host to.
 */
@Injectable()
export class DpopProofs {
  private readonly config: DpopConfig;
  private readonly origin: string;
  private readonly nonces: DpopNonces | null;
  private readonly keys = new ProofKeyCache();

  constructor(
    config: ConfigService<AppConfig, true>,
    @Inject(DpopReplayCache) private readonly replays: DpopReplayCache,
    private readonly clock: Clock,
  ) {
    this.config = config.get('dpop', { infer: true });
    this.origin = new URL(config.get('publicUrl', { infer: true })).origin;
    this.nonces = this.config.nonce
      ? new DpopNonces(config.get('auth', { infer: true }).refreshSecret, this.config.proofMaxAge)
      : null;
  }

  /**
   * The outcome of the request's proof; `accessToken` is the one it is sent
   * with, which `ath` must hash. Never throws for a bad proof: the route's
   * rule decides what a refusal means (and records it).
   */
  async evaluate(
    request: FastifyRequest,
    reply: FastifyReply,
    accessToken?: string,
  ): Promise<DpopOutcome> {
    const proof = request.headers.dpop;
    if (proof === undefined) return ABSENT;
    const now = this.clock.now();
    // RFC 9449 §8.2: a fresh nonce may come with any response; it comes with
    // every one to a request that sent a proof, so a client always holds one.
    if (this.nonces) void reply.header('DPoP-Nonce', this.nonces.current(now));
    // RFC 9449 §4.3 check 1: one header, one proof. Node joins repeated
    // headers with ", ", which no compact JWS contains.
    if (typeof proof !== 'string' || proof.includes(',')) {
      return refused('malformed', 'Send exactly one DPoP header with one proof');
    }
    try {
      const checked = checkProof(
        proof,
        {
          htm: request.method,
          htu: `${this.origin}${pathOf(request.url)}`,
          accessToken,
          now,
          maxAge: this.config.proofMaxAge,
          leeway: PROOF_IAT_LEEWAY,
        },
        this.keys,
      );
      if (this.nonces && !(checked.nonce && this.nonces.accepts(checked.nonce, now))) {
        return refused('nonce', 'DPoP proof must carry the nonce of the DPoP-Nonce header');
      }
      // Kept as long as a proof with this jti could pass the iat check.
      const ttlMs = (this.config.proofMaxAge + PROOF_IAT_LEEWAY) * 1000;
      if (!(await this.replays.claim(checked.jkt, checked.jti, ttlMs, now.getTime()))) {
        return refused('replayed', 'DPoP proof was already used (its jti is not new)');
      }
      return { kind: 'valid', jkt: checked.jkt };
    } catch (error) {
      if (error instanceof DpopProofError) return refused(error.fault, error.message);
      throw error;
    }
  }
}

const refused = (fault: ProofFault, message: string): DpopOutcome => ({
  kind: 'refused',
  fault,
  message,
});
