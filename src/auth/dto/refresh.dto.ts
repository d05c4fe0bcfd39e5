import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsOptional, IsString, MaxLength, MinLength } from 'class-validator';

const TOKEN_MAX_LENGTH = 4096;

export class RefreshDto {
  @ApiPropertyOptional({
    description:
      'The refresh token from the last token response. May be omitted when the request sends ' +
      '`X-Token-Transport: cookie` and the `__Host-refresh_token` cookie.',
  })
  @IsOptional()
  @IsString()
  @MinLength(1)
  @MaxLength(TOKEN_MAX_LENGTH)
  refresh_token?: string;
}

export const TOKEN_TYPE_HINTS = ['access_token', 'refresh_token'] as const;

/**
 * RFC 7009 §2.1 revocation request, for the API document: the route reads
 * it by RFC 6749's parameter rules (see OAuthParams).
 */
export class RevokeTokenDto {
  @ApiProperty({ description: 'An access or refresh token to revoke (its whole session ends)' })
  token!: string;

  @ApiPropertyOptional({
    enum: TOKEN_TYPE_HINTS,
    description: 'Which kind to look for first; any other value is ignored',
  })
  token_type_hint?: string;
}

export class LogoutAllDto {
  @ApiPropertyOptional({
    enum: ['all', 'others'],
    default: 'all',
    description: '`others` keeps the calling session',
  })
  @IsOptional()
  @IsIn(['all', 'others'])
  scope: 'all' | 'others' = 'all';
}

export class LogoutDto {
  @ApiPropertyOptional({
    description:
      "A refresh token of the caller's; its session is revoked too (it may be an already rotated one). " +
      'Defaults to the `__Host-refresh_token` cookie.',
  })
  @IsOptional()
  @IsString()
  @MaxLength(TOKEN_MAX_LENGTH)
  refresh_token?: string;
}
