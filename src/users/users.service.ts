import { randomUUID } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { type EntityManager, Repository } from 'typeorm';
import { ConflictError, ErrorCode, NotFoundError } from '../common/errors.js';
import { isUniqueViolation } from '../common/pg-errors.js';
import { User } from './user.entity.js';
import { usernameKey } from './username.js';

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

  async getById(id: string): Promise<User> {
    const user = await this.users.findOne({ where: { id } });
    if (!user) throw new NotFoundError('User not found');
    return user;
  }
}
