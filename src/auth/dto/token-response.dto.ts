import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';

/** RFC 6749 §5.1 successful token response. */
export class TokenResponseDto {
  @ApiProperty({ description: 'JWT access token (typ at+jwt), sent as `Authorization: Bearer`' })
  access_token!: string;

  @ApiProperty({
    example: 'Bearer',
    enum: ['Bearer', 'DPoP'],
    description:
      '`DPoP` when the session is bound to the key of the DPoP proof that started it (RFC 9449 §5): ' +
      'its access token is then sent as `Authorization: DPoP` with a proof.',
  })
  token_type!: 'Bearer' | 'DPoP';

  @ApiProperty({ example: 900, description: 'Access token lifetime in seconds' })
  expires_in!: number;

  @ApiPropertyOptional({
    description:
      'Single-use refresh token; each refresh returns a new one. Absent when the request asked for ' +
      'the cookie transport (`X-Token-Transport: cookie`): it is then in the HttpOnly `__Host-refresh_token` cookie.',
  })
  refresh_token?: string;

  @ApiProperty({ example: 604800, description: 'Seconds until the refresh token expires' })
  refresh_expires_in!: number;
}

export class MessageResponseDto {
  @ApiProperty({ example: 'Logged out' })
  message!: string;
}

export class LogoutAllResponseDto {
  @ApiProperty({ example: 'Logged out' })
  message!: string;

  @ApiProperty({ example: 3, description: 'How many sessions this call ended' })
  revoked_sessions!: number;
}
