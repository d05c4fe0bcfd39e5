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
    if (!session || session.userId !== userId) {
      throw new UnauthorizedError(ErrorCode.TokenInvalid, 'Session not found');
    }
    if (session.revokedAt) {
      throw new UnauthorizedError(ErrorCode.SessionRevoked, 'Session has been revoked');
    }
    if (session.expiresAt <= now) {
      throw new UnauthorizedError(ErrorCode.SessionExpired, 'Session has expired');
    }
  }
}
