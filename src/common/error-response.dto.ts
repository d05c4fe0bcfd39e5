import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';

class ErrorDetailDto {
  @ApiProperty({ example: 'username' })
  field!: string;

  @ApiProperty({ type: [String] })
  messages!: string[];
}

export class ErrorResponseDto {
  @ApiProperty({ example: 401 })
  statusCode!: number;

  @ApiProperty({ example: 'Unauthorized' })
  error!: string;

  @ApiProperty({
    example: 'token_expired',
    description:
      'Stable machine-readable code: validation_failed, invalid_credentials, username_taken, ' +
      'token_missing, token_invalid, token_expired, session_revoked, session_expired, ' +
      'refresh_token_reused, not_found, payload_too_large, unsupported_media_type, ' +
      'service_unavailable, internal_error',
  })
  code!: string;

  @ApiProperty({ example: 'Access token has expired' })
  message!: string;

  @ApiPropertyOptional({
    type: [ErrorDetailDto],
    description: 'Per-field problems (validation_failed only)',
  })
  details?: ErrorDetailDto[];
}
