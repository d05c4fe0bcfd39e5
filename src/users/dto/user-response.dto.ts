import { ApiProperty } from '@nestjs/swagger';
import type { User } from '../user.entity.js';

export class UserResponseDto {
  @ApiProperty({ format: 'uuid' })
  id!: string;

  @ApiProperty({ example: 'testuser' })
  username!: string;

  @ApiProperty({ format: 'date-time' })
  created_at!: string;

  static from(user: Pick<User, 'id' | 'username' | 'createdAt'>): UserResponseDto {
    return { id: user.id, username: user.username, created_at: user.createdAt.toISOString() };
  }
}
