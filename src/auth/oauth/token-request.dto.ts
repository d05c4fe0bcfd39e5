import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { TOKEN_GRANTS } from './token-grant.guard.js';

/**
 * The form of a token request (RFC 6749 §4.3.2, §6), for the API document
 * only: the guard and OAuthParams read it by RFC 6749's rules (an empty value
 * is absent, a repeated one refused, an unknown one ignored), which a
 * whitelisting DTO cannot express.
 */
export class TokenRequestDto {
  @ApiProperty({ enum: TOKEN_GRANTS })
  grant_type!: (typeof TOKEN_GRANTS)[number];

  @ApiPropertyOptional({
    description:
      'A client listed in OAUTH_CLIENTS. May instead be sent as HTTP Basic with an empty secret.',
    example: 'swagger-ui',
  })
  client_id?: string;

  @ApiPropertyOptional({ description: 'password grant', example: 'testuser' })
  username?: string;

  @ApiPropertyOptional({ description: 'password grant', example: 'testpass123' })
  password?: string;

  @ApiPropertyOptional({ description: 'refresh_token grant: the newest refresh token' })
  refresh_token?: string;

  @ApiPropertyOptional({
    description: 'Ignored: Lineage issues no scopes (RFC 6749 §3.3 lets a server ignore them)',
  })
  scope?: string;
}
