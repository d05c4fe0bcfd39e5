import { createHash, timingSafeEqual } from 'node:crypto';
import {
  applyDecorators,
  type CanActivate,
  createParamDecorator,
  type ExecutionContext,
  HttpStatus,
  Injectable,
  UseGuards,
} from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { ApiBasicAuth, ApiUnauthorizedResponse } from '@nestjs/swagger';
import type { FastifyRequest } from 'fastify';
import { ErrorResponseDto } from '../../common/error-response.dto.js';
import { AppError, ErrorCode } from '../../common/errors.js';
import { Public } from '../../common/public.decorator.js';
import type { AppConfig } from '../../config/configuration.js';

/** The OpenAPI security scheme (HTTP Basic) of the routes behind ResourceServerGuard. */
export const RESOURCE_SERVER_SCHEME = 'resource_server';

/** A resource server (RESOURCE_SERVERS) that proved its credentials. */
export interface ResourceServer {
  id: string;
}

/** A request that passed ResourceServerGuard. */
export type ResourceServerRequest = FastifyRequest & { resourceServer?: ResourceServer };

/** The id and secret a client presented, decoded; not yet checked. */
export interface BasicCredentials {
  id: string;
  secret: string;
}

// RFC 7617 §2: the scheme name is case-insensitive; the credentials are one
// token68 of base64 (RFC 4648 §4; its padding is not insisted on).
const BASIC = /^basic +([A-Za-z0-9+/]+={0,2}) *$/i;

/** application/x-www-form-urlencoded decoding of one value; null when malformed. */
function formDecode(value: string): string | null {
  try {
    return decodeURIComponent(value.replaceAll('+', ' '));
  } catch {
    return null;
  }
}

/**
 * Reads `client_secret_basic` credentials (RFC 6749 §2.3.1): the id and the
 * secret are each form-urlencoded, joined by a colon and sent as HTTP Basic.
 * The first colon separates them: an encoded id holds none. Anything else
 * (another scheme, bad base64, no colon, bad percent-encoding) is null.
 */
export function parseBasicCredentials(header: string | undefined): BasicCredentials | null {
  const match = header ? BASIC.exec(header) : null;
  if (!match) return null;
  const decoded = Buffer.from(match[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return null;
  const id = formDecode(decoded.slice(0, colon));
  const secret = formDecode(decoded.slice(colon + 1));
  return id === null || secret === null ? null : { id, secret };
}

const sha256 = (value: string) => createHash('sha256').update(value, 'utf8').digest();

/**
 * Authenticates the calling service with `client_secret_basic` against
 * RESOURCE_SERVERS, and puts who it is on the request (`resourceServer`,
 * read with @CurrentResourceServer()). For every route a resource server
 * calls: the revocation feed, token introspection (RFC 7662 §2.1 requires
 * the caller to be authorized).
 *
 * The comparison is of SHA-256 digests with timingSafeEqual, against every
 * configured server whatever matched, so neither the time taken nor the
 * answer tells which ids exist or how much of a secret was right (CWE-208).
 * Guessing is what RFC 6749 §2.3.1 asks endpoints to be protected from: the
 * secrets are at least 32 characters (RESOURCE_SERVERS). Failures are 401
 * `invalid_client`, answered with `WWW-Authenticate: Basic` (RFC 6749 §5.2).
 */
@Injectable()
export class ResourceServerGuard implements CanActivate {
  private readonly servers: { id: string; idDigest: Buffer; secretDigest: Buffer }[];

  constructor(config: ConfigService<AppConfig, true>) {
    this.servers = config.get('oauth', { infer: true }).resourceServers.map(({ id, secret }) => ({
      id,
      idDigest: sha256(id),
      secretDigest: sha256(secret),
    }));
  }

  canActivate(context: ExecutionContext): boolean {
    const request = context.switchToHttp().getRequest<ResourceServerRequest>();
    const credentials = parseBasicCredentials(request.headers.authorization);
    if (!credentials) {
      throw new AppError(
        HttpStatus.UNAUTHORIZED,
        ErrorCode.InvalidClient,
        'Resource-server credentials are required: HTTP Basic with the id and secret (RFC 6749 §2.3.1)',
      );
    }
    const id = this.authenticate(credentials);
    if (id === null) {
      throw new AppError(
        HttpStatus.UNAUTHORIZED,
        ErrorCode.InvalidClient,
        'Invalid resource-server credentials',
      );
    }
    request.resourceServer = { id };
    return true;
  }

  /** The id whose id and secret both match, or null; always compares against every server. */
  private authenticate({ id, secret }: BasicCredentials): string | null {
    const idDigest = sha256(id);
    const secretDigest = sha256(secret);
    let found: string | null = null;
    for (const server of this.servers) {
      // Both comparisons always run: `&` does not short-circuit.
      const matches =
        Number(timingSafeEqual(server.idDigest, idDigest)) &
        Number(timingSafeEqual(server.secretDigest, secretDigest));
      if (matches === 1) found = server.id;
    }
    return found;
  }
}

/**
 * Marks a route as called by a resource server (RESOURCE_SERVERS) rather than
 * by a user: ResourceServerGuard instead of the access-token guard, and the
 * OpenAPI security requirement and 401 that go with it.
 */
export function ResourceServerAuthenticated() {
  return applyDecorators(
    Public(),
    UseGuards(ResourceServerGuard),
    ApiBasicAuth(RESOURCE_SERVER_SCHEME),
    ApiUnauthorizedResponse({
      type: ErrorResponseDto,
      description:
        'Missing or wrong resource-server credentials (`invalid_client`), answered with ' +
        '`WWW-Authenticate: Basic realm="lineage"`',
    }),
  );
}

/** The resource server ResourceServerGuard authenticated. */
export const CurrentResourceServer = createParamDecorator(
  (_data: unknown, context: ExecutionContext): ResourceServer => {
    const server = context.switchToHttp().getRequest<ResourceServerRequest>().resourceServer;
    // Only reachable on a route without the guard: a programming error, not a 401.
    if (!server) throw new Error('@CurrentResourceServer() needs @ResourceServerAuthenticated()');
    return server;
  },
);
