import { Controller, Get, Header } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import {
  ApiOkResponse,
  ApiOperation,
  ApiProperty,
  ApiPropertyOptional,
  ApiTags,
} from '@nestjs/swagger';
import { Public } from '../../common/public.decorator.js';
import type { AppConfig } from '../../config/configuration.js';
import { DPOP_ALGORITHMS } from '../dpop/dpop-proof.js';
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

const url = (path: string) => `http://localhost:8000${path}`;

/** RFC 8414 §2 authorization server metadata, with Lineage's own routes under `lineage_` names. */
class MetadataDto {
  @ApiProperty({ example: url(''), description: 'The `iss` of every token' })
  issuer!: string;

  @ApiProperty({ example: url('/oauth/token') })
  token_endpoint!: string;

  @ApiProperty({ type: [String], example: ['password', 'refresh_token'] })
  grant_types_supported!: string[];

  @ApiProperty({
    type: [String],
    example: ['none'],
    description: 'Public clients only: a listed `client_id`, no secret',
  })
  token_endpoint_auth_methods_supported!: string[];

  @ApiProperty({ example: url('/auth/revoke'), description: 'RFC 7009' })
  revocation_endpoint!: string;

  @ApiProperty({ type: [String], example: ['none'] })
  revocation_endpoint_auth_methods_supported!: string[];

  @ApiProperty({ example: url('/oauth/introspect'), description: 'RFC 7662' })
  introspection_endpoint!: string;

  @ApiProperty({
    type: [String],
    example: ['client_secret_basic'],
    description: 'Resource servers listed in RESOURCE_SERVERS',
  })
  introspection_endpoint_auth_methods_supported!: string[];

  @ApiProperty({
    type: [String],
    example: [...DPOP_ALGORITHMS],
    description: 'RFC 9449 §5.1: the algorithms a DPoP proof may be signed with',
  })
  dpop_signing_alg_values_supported!: string[];

  @ApiProperty({ example: url('/.well-known/jwks.json') })
  jwks_uri!: string;

  @ApiProperty({
    type: [String],
    example: [],
    description: 'Required by RFC 8414; empty, since there is no authorization endpoint',
  })
  response_types_supported!: string[];

  @ApiProperty({
    type: [String],
    example: [SIGNING_ALG],
    description: 'How access tokens are signed (verify them with jwks_uri)',
  })
  access_token_signing_alg_values_supported!: string[];

  @ApiPropertyOptional({
    example: url('/docs'),
    description: 'Swagger UI; absent where the deployment does not serve it (DOCS_ENABLED)',
  })
  service_documentation?: string;

  @ApiProperty({ example: url('/auth/register'), description: 'Lineage: create an account (JSON)' })
  lineage_signup_endpoint!: string;

  @ApiProperty({ example: url('/auth/login'), description: 'Lineage: log in (JSON)' })
  lineage_login_endpoint!: string;

  @ApiProperty({ example: url('/auth/refresh'), description: 'Lineage: refresh (JSON or cookie)' })
  lineage_refresh_endpoint!: string;

  @ApiProperty({ example: url('/auth/logout'), description: 'Lineage: end the bearer’s session' })
  lineage_logout_endpoint!: string;
}

/**
 * What another service needs to verify Lineage's access tokens by itself:
 * the public keys (RFC 7517 JWK Set) and metadata naming the issuer, the key
 * set and the OAuth endpoints (RFC 8414).
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
      token_endpoint: `${base}/oauth/token`,
      grant_types_supported: ['password', 'refresh_token'],
      // Every client is public (RFC 6749 §2.1); see OAuthClients.
      token_endpoint_auth_methods_supported: ['none'],
      revocation_endpoint: `${base}/auth/revoke`,
      // Holding the token entitles a caller to revoke it (see POST /auth/revoke).
      revocation_endpoint_auth_methods_supported: ['none'],
      introspection_endpoint: `${base}/oauth/introspect`,
      introspection_endpoint_auth_methods_supported: ['client_secret_basic'],
      dpop_signing_alg_values_supported: [...DPOP_ALGORITHMS],
      jwks_uri: `${base}/.well-known/jwks.json`,
      // RFC 8414 requires the member. There is no authorization endpoint,
      // hence no response type; no `registration_endpoint` either, a name
      // RFC 8414 keeps for RFC 7591 client registration, which this is not.
      response_types_supported: [],
      access_token_signing_alg_values_supported: [SIGNING_ALG],
      // RFC 8414 §2: OPTIONAL; named only where /docs is served.
      ...(config.get('docsEnabled', { infer: true })
        ? { service_documentation: `${base}/docs` }
        : {}),
      lineage_signup_endpoint: `${base}/auth/register`,
      lineage_login_endpoint: `${base}/auth/login`,
      lineage_refresh_endpoint: `${base}/auth/refresh`,
      lineage_logout_endpoint: `${base}/auth/logout`,
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
