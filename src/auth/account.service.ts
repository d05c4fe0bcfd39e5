import { Injectable, Logger } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { AuditService } from '../audit/audit.service.js';
import type { ClientInfo } from '../common/client-info.js';
import { Clock } from '../common/clock.js';
import type { Principal } from '../common/principal.js';
import { PasswordService } from '../users/password.service.js';
import { UsersService } from '../users/users.service.js';
import { AuthErrors } from './auth-errors.js';
import type { EndedSessions } from './sessions/ended-sessions.js';
import { SessionsService } from './sessions/sessions.service.js';

// Attempts at proving a password while it keeps changing under the proof.
const PASSWORD_PROOF_ATTEMPTS = 3;

/** What a signed-in user does to their own account: change its password, delete it. */
@Injectable()
export class AccountService {
  private readonly logger = new Logger(AccountService.name);

  constructor(
    private readonly users: UsersService,
    private readonly passwords: PasswordService,
    private readonly sessions: SessionsService,
    private readonly audit: AuditService,
    private readonly clock: Clock,
  ) {}

  /**
   * Changes the password and ends every other session (OWASP ASVS 3.3.3); the
   * caller's own session survives. A wrong current password changes nothing.
   */
  async changePassword(
    principal: Principal,
    currentPassword: string,
    newPassword: string,
    client: ClientInfo,
  ): Promise<void> {
    const now = this.clock.now();
    let newHash: string | undefined;
    await this.withPasswordProven(
      principal.userId,
      currentPassword,
      'Current password is incorrect',
      async () => {
        // Hashed only once the current password is proven, and only once.
        newHash ??= await this.passwords.hash(newPassword);
      },
      async (manager, ended) => {
        await this.users.updatePasswordHash(manager, principal.userId, newHash!);
        const revoked = await this.sessions.endAll(
          manager,
          principal.userId,
          'password_changed',
          principal.sessionId,
          ended,
          now,
        );
        await this.audit.record(
          [
            { type: 'password_changed', userId: principal.userId, sessionId: principal.sessionId },
            ...this.sessions.revocationEvents(principal.userId, revoked, 'password_changed'),
          ],
          client,
          now,
          manager,
        );
      },
    );
  }

  /** Deletes the account with its sessions, todos and events, after confirming the password. */
  async deleteAccount(principal: Principal, password: string): Promise<void> {
    await this.withPasswordProven(
      principal.userId,
      password,
      'Password is incorrect',
      () => Promise.resolve(),
      async (manager, ended) => {
        // Deleted with the account: ended, but not a revocation (not counted).
        await this.sessions.lockAllForDeletion(manager, principal.userId, ended);
        await this.users.delete(manager, principal.userId);
      },
    );
    this.logger.log(`Account ${principal.userId} deleted`);
  }

  /**
   * Runs `work` under the user's row lock once `password` is proven. bcrypt
   * runs before the transaction opens, so no pooled connection or row lock
   * ever waits on it (a burst of guesses on one account must not stall the
   * pool). Under the lock the stored hash must still be the one the password
   * was proven against; if it changed meanwhile (a concurrent password
   * change), the password is proven again against the new hash.
   */
  private async withPasswordProven(
    userId: string,
    password: string,
    wrongPasswordMessage: string,
    afterProof: () => Promise<void>,
    work: (manager: EntityManager, ended: EndedSessions) => Promise<void>,
  ): Promise<void> {
    for (let attempt = 1; attempt <= PASSWORD_PROOF_ATTEMPTS; attempt += 1) {
      const proven = await this.users.findPasswordHash(userId);
      if (proven === null) throw AuthErrors.sessionRevoked();
      if (!(await this.passwords.verify(password, proven))) {
        throw AuthErrors.invalidPassword(wrongPasswordMessage);
      }
      await afterProof();
      const done = await this.sessions.transaction(async (manager, ended) => {
        const locked = await this.users.lockForUpdate(manager, userId);
        if (!locked) throw AuthErrors.sessionRevoked();
        if (locked.passwordHash !== proven) return false;
        await work(manager, ended);
        return true;
      });
      if (done) return;
    }
    throw AuthErrors.retryConcurrent('The password was changed concurrently');
  }
}
