import { HttpStatus, Injectable } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import type { FastifyRequest } from 'fastify';
import { AppError, ErrorCode, ValidationError } from '../../common/errors.js';
import type { AppConfig } from '../../config/configuration.js';
import { parseBasicCredentials } from './resource-server.guard.js';
import type { OAuthParams } from './oauth-params.js';

export const invalidClient = (message: string) =>
  new AppError(HttpStatus.UNAUTHORIZED, ErrorCode.InvalidClient, message);

/**
 * The public clients (RFC 6749 §2.1) the token endpoint serves: apps that
 * cannot keep a secret (browser, mobile and command-line apps, Swagger UI).
 * A client names itself by `client_id` and is accepted only if OAUTH_CLIENTS
 * lists it, so an operator knows every app that holds sessions and can retire
 * one; an unlisted id is `invalid_client`, never a fresh client.
 *
 * A public client has no secret to prove, so its id is an identifier, not a
 * credential (RFC 6749 §10.1): it is recorded on the session and binds the
 * session's refresh tokens to that client (§6), which keeps a token issued to
 * one app from being spent by another, but it is no defence against an
 * attacker who holds the token. Binding to a key the client holds (DPoP) is.
 */
@Injectable()
export class OAuthClients {
  private readonly ids: ReadonlySet<string>;

  constructor(config: ConfigService<AppConfig, true>) {
    this.ids = new Set(config.get('oauth', { infer: true }).clients);
  }

  /**
   * The client of a token request: `client_id` in the body (RFC 6749 §2.3.1's
   * body form, as public clients send it), or in HTTP Basic with an empty
   * secret (what Swagger UI and some libraries send for a public client).
   * Using both is refused if they disagree (§2.3: one method per request); a
   * secret is refused, since no client here has one.
   */
  identify(request: FastifyRequest, params: OAuthParams): string {
    const header = request.headers.authorization;
    const basic =
      header && /^basic(\s|$)/i.test(header) ? parseBasicCredentials(header) : undefined;
    if (basic === null) throw invalidClient('Malformed Basic credentials');
    if (basic?.secret || params.get('client_secret')) {
      throw invalidClient('Public clients authenticate without a secret');
    }
    const fromBody = params.get('client_id');
    if (basic && fromBody !== undefined && basic.id !== fromBody) {
      throw new ValidationError('client_id differs between the body and the Basic credentials');
    }
    const id = basic?.id || fromBody;
    if (!id) throw invalidClient('client_id is required');
    if (!this.ids.has(id)) throw invalidClient('Unknown client');
    return id;
  }
}
