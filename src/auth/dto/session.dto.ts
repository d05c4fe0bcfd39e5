import { ApiProperty } from '@nestjs/swagger';
import type { LiveSession } from '../sessions/session.repository.js';

export class SessionDto {
  @ApiProperty({
    format: 'uuid',
    description: 'The session id; `sid` in access and refresh tokens',
  })
  id!: string;

  @ApiProperty({ format: 'date-time' })
  created_at!: string;

  @ApiProperty({ format: 'date-time', description: 'Last login or refresh' })
  last_used_at!: string;

  @ApiProperty({
    format: 'date-time',
    description: 'When it ends unless refreshed before (never later than its absolute lifetime)',
  })
  expires_at!: string;

  @ApiProperty({ nullable: true, type: String })
  user_agent!: string | null;

  @ApiProperty({ nullable: true, type: String })
  ip!: string | null;

  @ApiProperty({
    nullable: true,
    type: String,
    description:
      'The OAuth client (`client_id`) that started the session at POST /oauth/token; null for ' +
      'sessions started on the JSON routes (/auth/login, /auth/register)',
  })
  client_id!: string | null;

  @ApiProperty({
    description:
      'True when the session is bound to a DPoP key (RFC 9449): its tokens are useless without it',
  })
  dpop_bound!: boolean;

  @ApiProperty({ description: 'True for the session of the access token making this request' })
  current!: boolean;

  static from(session: LiveSession, currentId: string): SessionDto {
    return {
      id: session.id,
      created_at: session.createdAt.toISOString(),
      last_used_at: session.lastUsedAt.toISOString(),
      expires_at: session.expiresAt.toISOString(),
      user_agent: session.userAgent,
      ip: session.ip,
      client_id: session.clientId,
      dpop_bound: session.dpopBound,
      current: session.id === currentId,
    };
  }
}
