import { HttpStatus } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { AppError, ErrorCode, ValidationError } from '../../common/errors.js';
import { FORM_CONTENT_TYPE } from '../../common/form-body.js';

/** The most any OAuth parameter may hold: a token, with room to spare. */
const PARAM_MAX_LENGTH = 4096;

/**
 * The parameters of an OAuth request, read by RFC 6749's rules: an empty
 * value is the same as an absent one (§3.1), a repeated one is refused
 * (§3.1), and unknown ones are ignored (§3.1, §3.2).
 */
export class OAuthParams {
  private static readonly cache = new WeakMap<FastifyRequest, OAuthParams>();

  private constructor(private readonly values: Map<string, string>) {}

  /** The request's parameters, read once however many guards and handlers ask. */
  static of(request: FastifyRequest, options: { json?: boolean } = {}): OAuthParams {
    let params = OAuthParams.cache.get(request);
    if (!params) {
      params = OAuthParams.read(request, options);
      OAuthParams.cache.set(request, params);
    }
    return params;
  }

  /**
   * From a form-encoded body, which RFC 6749 §3.2 requires; JSON too when
   * `json` says so (Lineage's own JSON clients of RFC 7009 revocation).
   */
  private static read(request: FastifyRequest, { json = false } = {}): OAuthParams {
    const type = (request.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
    const accepted = type === FORM_CONTENT_TYPE || (json && type === 'application/json');
    if (!accepted) {
      throw new AppError(
        HttpStatus.BAD_REQUEST,
        ErrorCode.BadRequest,
        `The body must be ${FORM_CONTENT_TYPE}${json ? ' or application/json' : ''}`,
      );
    }
    const body = request.body;
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      throw new ValidationError('The body must hold the request parameters');
    }
    const values = new Map<string, string>();
    for (const [name, value] of Object.entries(body as Record<string, unknown>)) {
      if (Array.isArray(value)) throw invalid(name, `${name} must not be repeated`);
      if (value === undefined || value === null || value === '') continue;
      if (typeof value !== 'string') throw invalid(name, `${name} must be a string`);
      if (value.length > PARAM_MAX_LENGTH) {
        throw invalid(name, `${name} must be at most ${PARAM_MAX_LENGTH} characters`);
      }
      values.set(name, value);
    }
    return new OAuthParams(values);
  }

  get(name: string): string | undefined {
    return this.values.get(name);
  }

  require(name: string): string {
    const value = this.values.get(name);
    if (value === undefined) throw invalid(name, `${name} is required`);
    return value;
  }
}

function invalid(field: string, message: string): ValidationError {
  return new ValidationError(message, [{ field, messages: [message] }]);
}
