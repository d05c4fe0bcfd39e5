import { Injectable } from '@nestjs/common';
import { AuthErrors } from '../auth-errors.js';
import { SessionRevocations } from './session-revocations.js';
import { SessionRepository } from './session.repository.js';

/** Answers "is this session still live?" for every authenticated request. */
@Injectable()
export class SessionLiveness {
  constructor(
    private readonly store: SessionRepository,
    private readonly revocations: SessionRevocations,
  ) {}

  /**
   * A revoked or expired session refuses its access tokens immediately rather
   * than at their expiry (OWASP ASVS 3.3.1: logout invalidates the session).
   *
   * With the in-memory view of ended sessions ready, most requests need no
   * database round trip: "has it ended?" is a map lookup, and the session's
   * owner is read once a minute. Expiry needs no check: an access token never
   * outlives its session (AuthService.tokenResponse). Without the view
   * (starting, or its feed lost), the database answers every time.
   */
  async assertActive(sessionId: string, userId: string, now = new Date()): Promise<void> {
    const viewReady = this.revocations.isReady;
    if (viewReady) {
      if (this.revocations.hasEnded(sessionId)) throw AuthErrors.sessionRevoked();
      const owner = this.revocations.knownOwner(sessionId);
      if (owner !== undefined) {
        // A session is bound to its user (a token naming another user is refused).
        if (owner !== userId) throw AuthErrors.sessionRevoked();
        return;
      }
    }
    const session = await this.store.findSession(sessionId);
    // A validly signed token whose session row is gone: the account was
    // deleted or the session cleaned up after it ended. Either way, revoked.
    if (!session || session.userId !== userId || session.revokedAt)
      throw AuthErrors.sessionRevoked();
    if (session.expiresAt <= now) {
      throw AuthErrors.sessionExpired();
    }
    if (viewReady) this.revocations.rememberOwner(sessionId, session.userId);
  }
}
