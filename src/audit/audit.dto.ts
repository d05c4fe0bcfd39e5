import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsInt, IsOptional, Matches, Max, Min } from 'class-validator';
import { AUTH_EVENT_TYPES, type AuthEventType } from './auth-event.entity.js';
import type { AuthEventRow } from './audit.service.js';

export const EVENT_PAGE_MAX = 100;
export const EVENT_PAGE_DEFAULT = 20;

export class ListEventsQueryDto {
  @ApiPropertyOptional({ minimum: 1, maximum: EVENT_PAGE_MAX, default: EVENT_PAGE_DEFAULT })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(EVENT_PAGE_MAX)
  limit: number = EVENT_PAGE_DEFAULT;

  @ApiPropertyOptional({
    description: 'Only events older than this event id (the last id of the previous page)',
    example: '1042',
  })
  @IsOptional()
  @Matches(/^[1-9]\d{0,17}$/, { message: 'before must be an event id' })
  before?: string;
}

export class AuthEventDto {
  @ApiProperty({ example: '1042', description: 'Increasing event id, usable as `before`' })
  id!: string;

  @ApiProperty({ enum: AUTH_EVENT_TYPES })
  type!: AuthEventType;

  @ApiProperty({ format: 'date-time' })
  occurred_at!: string;

  @ApiProperty({ format: 'uuid', nullable: true, type: String })
  session_id!: string | null;

  @ApiProperty({
    nullable: true,
    type: String,
    description:
      'For session_revoked: logout, logout_all, user_revoked, token_revoked, password_changed, evicted or reuse_detected',
  })
  reason!: string | null;

  @ApiProperty({ nullable: true, type: String })
  ip!: string | null;

  @ApiProperty({ nullable: true, type: String })
  user_agent!: string | null;

  static from(row: AuthEventRow): AuthEventDto {
    return {
      id: row.id,
      type: row.type,
      occurred_at: row.occurredAt.toISOString(),
      session_id: row.sessionId,
      reason: row.reason,
      ip: row.ip,
      user_agent: row.userAgent,
    };
  }
}
