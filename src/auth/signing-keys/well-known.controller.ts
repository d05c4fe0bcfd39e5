import { Controller, Get, Header } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { ApiOkResponse, ApiOperation, ApiProperty, ApiTags } from '@nestjs/swagger';
import { Public } from '../../common/public.decorator.js';
import type { AppConfig } from '../../config/configuration.js';
import { JWKS_MAX_AGE_SECONDS } from './key-set.js';
import { SIGNING_ALG } from './signing-key.store.js';
import { SigningKeys } from './signing-keys.service.js';

class JwkDto {
  @ApiProperty({ example: 'EC', enum: ['EC'] })
  kty!: 'EC';

  @ApiProperty({ example: 'P-256', enum: ['P-256'] })
  crv!: 'P-256';

  @ApiProperty({ description: 'Public point x, base64url' })
  x!: string;

  @ApiProperty({ description: 'Public point y, base64url' })
  y!: string;

  @ApiProperty({ description: 'Key id (RFC 7638 thumbprint): the `kid` of the tokens it signed' })
  kid!: string;

  @ApiProperty({ example: SIGNING_ALG, enum: [SIGNING_ALG] })
  alg!: string;

  @ApiProperty({ example: 'sig', enum: ['sig'] })
  use!: 'sig';
}

class JwksDto {
  @ApiProperty({ type: [JwkDto] })
  keys!: JwkDto[];
}

class MetadataDto {
  @ApiProperty({ example: 'http://localhost:8000', description: 'The `iss` of every token' })
  issuer!: string;

  @ApiProperty({ example: 'http://localhost:8000/.well-known/jwks.json' })
  jwks_uri!: string;

  @ApiProperty({
    type: [String],
    example: [],
    description: 'None: there is no OAuth authorization endpoint',
  })
  response_types_supported!: string[];

  @ApiProperty({ type: [String], example: [SIGNING_ALG] })
  access_token_signing_alg_values_supported!: string[];

  @ApiProperty({ example: 'http://localhost:8000/auth/register' })
  registration_endpoint!: string;

  @ApiProperty({ example: 'http://localhost:8000/auth/login' })
  login_endpoint!: string;

  @ApiProperty({ example: 'http://localhost:8000/auth/refresh' })
  refresh_endpoint!: string;

  @ApiProperty({ example: 'http://localhost:8000/auth/logout' })
  logout_endpoint!: string;

  @ApiProperty({ example: 'http://localhost:8000/auth/revoke' })
  revocation_endpoint!: string;
}

/**
 * What another service needs to verify Lineage's access tokens by itself:
 * the public keys (RFC 7517 JWK Set) and metadata naming the issuer, the key
 * set and the token endpoints, in the RFC 8414 format.
 */
@ApiTags('discovery')
@Public()
@Controller('.well-known')
export class WellKnownController {
  private readonly metadata: MetadataDto;

  constructor(
    config: ConfigService<AppConfig, true>,
    private readonly keys: SigningKeys,
  ) {
    const base = config.get('publicUrl', { infer: true });
    this.metadata = {
      issuer: config.get('auth', { infer: true }).issuer,
      jwks_uri: `${base}/.well-known/jwks.json`,
      // RFC 8414 requires the member; this service has no authorization endpoint.
      response_types_supported: [],
      access_token_signing_alg_values_supported: [SIGNING_ALG],
      // Lineage's own JSON endpoints. Deliberately not `token_endpoint`: an
      // OAuth client would post form-encoded grants there, which they do not take.
      registration_endpoint: `${base}/auth/register`,
      login_endpoint: `${base}/auth/login`,
      refresh_endpoint: `${base}/auth/refresh`,
      logout_endpoint: `${base}/auth/logout`,
      // RFC 7009 semantics, JSON body.
      revocation_endpoint: `${base}/auth/revoke`,
    };
  }

  @Get('jwks.json')
  @Header('Cache-Control', `public, max-age=${JWKS_MAX_AGE_SECONDS}`)
  @ApiOperation({
    summary: 'Public keys that verify access tokens (RFC 7517 JWK Set)',
    description:
      'Every key whose tokens may still be valid, plus a key about to take over. Verify an ' +
      'access token with the key its `kid` header names, algorithm ES256 only.',
  })
  @ApiOkResponse({ type: JwksDto })
  jwks(): JwksDto {
    return this.keys.publishedKeys();
  }

  @Get('oauth-authorization-server')
  @Header('Cache-Control', `public, max-age=${JWKS_MAX_AGE_SECONDS}`)
  @ApiOperation({ summary: 'Issuer metadata (RFC 8414 format)' })
  @ApiOkResponse({ type: MetadataDto })
  authorizationServerMetadata(): MetadataDto {
    return this.metadata;
  }

  @Get('openid-configuration')
  @Header('Cache-Control', `public, max-age=${JWKS_MAX_AGE_SECONDS}`)
  @ApiOperation({
    summary: 'The same metadata where OpenID-style discovery looks for it',
    description:
      'Lineage issues no ID tokens; the document is the RFC 8414 one, served here because ' +
      'resource-server libraries configured with an issuer URL look here first.',
  })
  @ApiOkResponse({ type: MetadataDto })
  openIdConfiguration(): MetadataDto {
    return this.metadata;
  }
}
