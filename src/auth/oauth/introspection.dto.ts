import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';

/** RFC 7662 §2.1, for the API document (read by OAuthParams). */
export class IntrospectionRequestDto {
  @ApiProperty({ description: 'An access or refresh token' })
  token!: string;

  @ApiPropertyOptional({
    enum: ['access_token', 'refresh_token'],
    description: 'Which kind to look for first; any other value is ignored',
  })
  token_type_hint?: string;
}

/** RFC 7800 §3.1 confirmation, with the RFC 9449 §6.1 member. */
class ConfirmationDto {
  @ApiProperty({ description: 'JWK SHA-256 thumbprint (RFC 7638), base64url' })
  jkt!: string;
}

/** RFC 7662 §2.2. Only `active` when it is false. */
export class IntrospectionDto {
  @ApiProperty()
  active!: boolean;

  @ApiPropertyOptional({
    enum: ['Bearer', 'DPoP'],
    description: 'Access tokens only: `DPoP` for a token bound to a DPoP key',
  })
  token_type?: 'Bearer' | 'DPoP';

  @ApiPropertyOptional({ description: 'The OAuth client of the session, if it has one' })
  client_id?: string;

  @ApiPropertyOptional({
    type: ConfirmationDto,
    description: 'RFC 9449 §6.2: the key a DPoP-bound token is bound to',
  })
  cnf?: ConfirmationDto;

  @ApiPropertyOptional({ format: 'uuid', description: 'The user' })
  sub?: string;

  @ApiPropertyOptional({ format: 'uuid', description: 'The session' })
  sid?: string;

  @ApiPropertyOptional()
  aud?: string;

  @ApiPropertyOptional()
  iss?: string;

  @ApiPropertyOptional()
  jti?: string;

  @ApiPropertyOptional({ description: 'Issued at (seconds since the epoch)' })
  iat?: number;

  @ApiPropertyOptional({ description: 'Expires at (seconds since the epoch)' })
  exp?: number;
}
