import type { RevocationReason } from '../../common/revocation-reasons.js';

/** Sessions a transaction ended, acted on once it has committed. */
export class EndedSessions {
  readonly ids: string[] = [];
  readonly revoked = new Map<RevocationReason, number>();

  /** `reason` when they were revoked; without one they went with their account. */
  add(ids: string[], reason?: RevocationReason): void {
    this.ids.push(...ids);
    if (reason && ids.length > 0)
      this.revoked.set(reason, (this.revoked.get(reason) ?? 0) + ids.length);
  }
}
