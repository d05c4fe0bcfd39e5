import { randomUUID } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { type EntityManager, Repository } from 'typeorm';
import { ConflictError, ErrorCode, NotFoundError } from '../common/errors.js';
import { isUniqueViolation } from '../common/pg-errors.js';
import { User } from './user.entity.js';
import { runSql } from '../database/sql.js';
import { usernameKey } from '../common/username.js';

@Injectable()
export class UsersService {
  constructor(@InjectRepository(User) private readonly users: Repository<User>) {}

  /** Inserts a user in the caller's transaction; a taken username is a 409. */
  async create(manager: EntityManager, username: string, passwordHash: string): Promise<User> {
    const user = manager.create(User, {
      id: randomUUID(),
      username,
      usernameKey: usernameKey(username),
      passwordHash,
    });
    try {
      // The unique index decides between concurrent registrations, not a prior SELECT.
      await manager.insert(User, user);
    } catch (error) {
      if (isUniqueViolation(error, 'uq_users_username_key')) {
        throw new ConflictError(ErrorCode.UsernameTaken, 'Username is already taken');
      }
      throw error;
    }
    return user;
  }

  /** The one query that reads the password hash: login. */
  findForLogin(username: string): Promise<Pick<User, 'id' | 'passwordHash'> | null> {
    return this.users
      .createQueryBuilder('u')
      .select(['u.id', 'u.passwordHash'])
      .where('u.usernameKey = :key', { key: usernameKey(username) })
      .getOne();
  }

  /** The public profile (never the password hash); one primary-key read, no ORM hydration. */
  async getById(id: string): Promise<Pick<User, 'id' | 'username' | 'createdAt'>> {
    const result = await runSql<{ id: string; username: string; created_at: Date }>(
      this.users.manager,
      'SELECT id, username, created_at FROM users WHERE id = $1',
      [id],
    );
    const row = result.rows[0];
    if (!row) throw new NotFoundError('User not found');
    return { id: row.id, username: row.username, createdAt: row.created_at };
  }

  /** The stored password hash, read without a lock (bcrypt runs outside any transaction). */
  async findPasswordHash(id: string): Promise<string | null> {
    const result = await runSql<{ password_hash: string }>(
      this.users.manager,
      'SELECT password_hash FROM users WHERE id = $1',
      [id],
    );
    return result.rows[0]?.password_hash ?? null;
  }

  /**
   * Locks the user's row for the rest of the transaction and returns the
   * password hash. Serializes a user's session starts (the session cap),
   * password changes and account deletion. Null when the user is gone.
   * NO KEY UPDATE, not UPDATE: it must not block the KEY SHARE locks that
   * foreign-key checks take (a rotation inserting an audit event), or a
   * rotation and a login of the same user could deadlock.
   */
  async lockForUpdate(
    manager: EntityManager,
    id: string,
  ): Promise<{ passwordHash: string } | null> {
    const result = await runSql<{ password_hash: string }>(
      manager,
      'SELECT password_hash FROM users WHERE id = $1 FOR NO KEY UPDATE',
      [id],
    );
    const row = result.rows[0];
    return row ? { passwordHash: row.password_hash } : null;
  }

  async updatePasswordHash(
    manager: EntityManager,
    id: string,
    passwordHash: string,
  ): Promise<void> {
    await runSql(manager, 'UPDATE users SET password_hash = $2, updated_at = now() WHERE id = $1', [
      id,
      passwordHash,
    ]);
  }

  /** Deletes the account; its sessions, refresh tokens, todos and events go with it (ON DELETE CASCADE). */
  async delete(manager: EntityManager, id: string): Promise<void> {
    await runSql(manager, 'DELETE FROM users WHERE id = $1', [id]);
  }
}
