import { HttpStatus, Injectable } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { AuditService } from '../../audit/audit.service.js';
import type { ClientInfo } from '../../common/client-info.js';
import { Clock } from '../../common/clock.js';
import { AppError, ErrorCode } from '../../common/errors.js';
import type { AppConfig } from '../../config/configuration.js';
import { type DpopRefusalPlace, MetricsService } from '../../observability/metrics.service.js';
import type { TokenClaims } from '../tokens/token-claims.js';
import type { DpopOutcome } from './dpop-proofs.service.js';

/** Why a request was refused for DPoP: a proof fault, or what the binding lacked. */
export type DpopRefusalReason =
  Extract<DpopOutcome, { kind: 'refused' }>['fault'] | 'missing' | 'key_mismatch' | 'scheme';

/**
 * What each route requires of a request's DPoP proof (RFC 9449), in one
 * place, and what a refusal does: it is counted
 * (`lineage_dpop_refusals_total`), answered `invalid_dpop_proof` (or
 * `use_dpop_nonce`) and never ends a session. A refusal on the token side is
 * a 400, as RFC 9449 §5 has it; on a resource a 401 with a DPoP challenge (§7.1).
 *
 * - A new session is bound to the key of a valid proof; without one it is
 *   unbound, unless DPOP_REQUIRED.
 * - A bound session's refresh, and the revocation of its tokens, need a
 *   valid proof of its key. Checked before the rotation rule, so a stolen
 *   token replayed without the key neither rotates nor counts as reuse: the
 *   rule that would end the session for a replay never sees it. Refused
 *   refreshes are also recorded on the account (`dpop_proof_refused`).
 * - A bound access token is accepted only as `Authorization: DPoP` with a
 *   proof of its key whose `ath` hashes it (§7.1); an unbound one only as Bearer.
 * - Wherever a proof is sent, a broken one is refused, even where none is
 *   needed: a client that means to prove a key must learn that it did not.
 */
@Injectable()
export class DpopBinding {
  private readonly required: boolean;

  constructor(
    config: ConfigService<AppConfig, true>,
    private readonly audit: AuditService,
    private readonly metrics: MetricsService,
    private readonly clock: Clock,
  ) {
    this.required = config.get('dpop', { infer: true }).required;
  }

  /** The key a session started by this request is bound to; undefined for an unbound one. */
  keyForNewSession(proof: DpopOutcome): string | undefined {
    if (proof.kind === 'valid') return proof.jkt;
    if (proof.kind === 'refused') throw this.refuse('session_start', proof.fault, proof.message);
    if (this.required) {
      throw this.refuse('session_start', 'missing', 'A DPoP proof is required to start a session');
    }
    return undefined;
  }

  /** Throws unless `proof` may refresh the session of the token with `claims`. */
  async checkRefresh(claims: TokenClaims, proof: DpopOutcome, client: ClientInfo): Promise<void> {
    const refusal = this.tokenRefusal(claims, proof);
    if (!refusal) return;
    await this.audit.record(
      [
        {
          type: 'dpop_proof_refused',
          userId: claims.sub,
          sessionId: claims.sid,
          reason: refusal.reason,
        },
      ],
      client,
      this.clock.now(),
    );
    throw this.refuse('refresh', refusal.reason, refusal.message);
  }

  /** Throws unless `proof` may revoke the token with `claims` (RFC 7009 with a bound token). */
  checkRevocation(claims: TokenClaims, proof: DpopOutcome): void {
    const refusal = this.tokenRefusal(claims, proof);
    if (refusal) throw this.refuse('revoke', refusal.reason, refusal.message);
  }

  /**
   * Throws unless an access token bound to `keyThumbprint` (or unbound:
   * undefined), sent under `scheme`, may be used with `proof`.
   */
  checkResource(
    keyThumbprint: string | undefined,
    scheme: 'bearer' | 'dpop',
    proof: DpopOutcome,
  ): void {
    if (keyThumbprint === undefined) {
      if (scheme === 'dpop') {
        throw this.refuse(
          'resource',
          'scheme',
          'Access token is not DPoP-bound: send it as Bearer',
        );
      }
      if (proof.kind === 'refused') throw this.refuse('resource', proof.fault, proof.message);
      return;
    }
    if (scheme !== 'dpop') {
      throw this.refuse(
        'resource',
        'scheme',
        'Access token is DPoP-bound: send it as Authorization: DPoP with a DPoP proof',
      );
    }
    const refusal = keyRefusal(keyThumbprint, proof);
    if (refusal) throw this.refuse('resource', refusal.reason, refusal.message);
  }

  private tokenRefusal(
    claims: TokenClaims,
    proof: DpopOutcome,
  ): { reason: DpopRefusalReason; message: string } | undefined {
    const bound = claims.cnf?.jkt;
    if (bound === undefined) {
      return proof.kind === 'refused' ? { reason: proof.fault, message: proof.message } : undefined;
    }
    return keyRefusal(bound, proof);
  }

  private refuse(place: DpopRefusalPlace, reason: DpopRefusalReason, message: string): AppError {
    this.metrics.dpopRefused(place, reason);
    const code = reason === 'nonce' ? ErrorCode.UseDpopNonce : ErrorCode.InvalidDpopProof;
    const status = place === 'resource' ? HttpStatus.UNAUTHORIZED : HttpStatus.BAD_REQUEST;
    return new AppError(status, code, message);
  }
}

/** Why `proof` does not prove the key `bound`, if it does not. */
function keyRefusal(
  bound: string,
  proof: DpopOutcome,
): { reason: DpopRefusalReason; message: string } | undefined {
  switch (proof.kind) {
    case 'absent':
      return { reason: 'missing', message: 'The session is DPoP-bound: a DPoP proof is required' };
    case 'refused':
      return { reason: proof.fault, message: proof.message };
    default:
      return proof.jkt === bound
        ? undefined
        : {
            reason: 'key_mismatch',
            message: 'DPoP proof is signed by another key than the one the session is bound to',
          };
  }
}
