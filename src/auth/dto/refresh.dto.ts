import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsOptional, IsString, MaxLength, MinLength } from 'class-validator';

const TOKEN_MAX_LENGTH = 4096;

export class RefreshDto {
  @ApiProperty({ description: 'The refresh token from the last token response' })
  @IsString()
  @MinLength(1)
  @MaxLength(TOKEN_MAX_LENGTH)
  refresh_token!: string;
}

export class LogoutDto {
  @ApiPropertyOptional({
    description:
      "A refresh token of the caller's; its session is revoked too (it may be an already rotated one)",
  })
  @IsOptional()
  @IsString()
  @MaxLength(TOKEN_MAX_LENGTH)
  refresh_token?: string;
}
