import { Injectable } from '@nestjs/common';
import { ErrorCode, UnauthorizedError } from '../common/errors.js';
import { TokenFamilyRepository } from './token-family.repository.js';

/** Answers "is this session still live?" for every authenticated request. */
@Injectable()
export class SessionService {
  constructor(private readonly families: TokenFamilyRepository) {}

  /**
   * A revoked or expired family refuses its access tokens immediately rather
   * than at their expiry (OWASP ASVS 3.3.1: logout invalidates the session).
   */
  async assertActive(familyId: string, userId: string, now = new Date()): Promise<void> {
    const session = await this.families.findSession(familyId);
    // A validly signed token whose session row is gone: the account was
    // deleted or the session cleaned up after it ended. Either way, revoked.
    if (!session || session.userId !== userId || session.revokedAt) {
      throw new UnauthorizedError(ErrorCode.SessionRevoked, 'Session has been revoked');
    }
    if (session.expiresAt <= now) {
      throw new UnauthorizedError(ErrorCode.SessionExpired, 'Session has expired');
    }
  }
}
