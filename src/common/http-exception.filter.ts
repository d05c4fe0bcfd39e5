import {
  type ArgumentsHost,
  Catch,
  type ExceptionFilter,
  HttpException,
  HttpStatus,
  Logger,
} from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import {
  codeForStatus,
  errorBody,
  type ErrorBody,
  oauthErrorBody,
  wwwAuthenticate,
} from './error-body.js';
import { AppError, ErrorCode } from './errors.js';
import { isDatabaseUnavailable, isUnstorableText } from './pg-errors.js';
import { pathOf } from './request-path.js';

/** Seconds a client should wait before retrying while the database is away. */
export const DATABASE_RETRY_AFTER = 5;

/** Nest puts a string, or a list of strings (its own pipes), in `response.message`. */
function httpExceptionMessage(exception: HttpException): string {
  const response = exception.getResponse();
  if (typeof response === 'string') return response;
  const { message } = response as { message?: unknown };
  if (typeof message === 'string') return message;
  if (Array.isArray(message) && message.every((part) => typeof part === 'string')) {
    return message.join('; ');
  }
  return exception.message;
}

/** Maps anything thrown to the one error shape; 5xx bodies never carry internals. */
export function toErrorBody(exception: unknown): ErrorBody {
  if (exception instanceof AppError) {
    return errorBody(exception.status, exception.code, exception.message, exception.details);
  }
  if (exception instanceof HttpException) {
    const status = exception.getStatus();
    const message = status >= 500 ? 'Internal server error' : httpExceptionMessage(exception);
    return errorBody(status, codeForStatus(status), message);
  }
  // Errors raised by Fastify itself (body parsing, size limits) carry a 4xx statusCode.
  const status = (exception as { statusCode?: unknown } | null)?.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    const message = (exception as Error).message || 'Bad request';
    return errorBody(status, codeForStatus(status), message);
  }
  if (isUnstorableText(exception)) {
    return errorBody(
      HttpStatus.BAD_REQUEST,
      ErrorCode.ValidationFailed,
      'A text field is too long or contains a character that cannot be stored',
    );
  }
  if (isDatabaseUnavailable(exception)) {
    return errorBody(
      HttpStatus.SERVICE_UNAVAILABLE,
      ErrorCode.ServiceUnavailable,
      'Service temporarily unavailable; retry shortly',
    );
  }
  return errorBody(
    HttpStatus.INTERNAL_SERVER_ERROR,
    ErrorCode.InternalError,
    'Internal server error',
  );
}

export function sendError(
  reply: FastifyReply,
  request: FastifyRequest,
  exception: unknown,
  logger: Logger,
  { oauth = false }: { oauth?: boolean } = {},
): void {
  const body = oauth ? oauthErrorBody(toErrorBody(exception)) : toErrorBody(exception);
  // The path without its query string, as on the access line (see pathOf).
  const path = pathOf(request.url);
  if (isUnstorableText(exception)) {
    // The client gets its 400; the log says a DTO is missing a bound.
    logger.warn(
      `${request.method} ${path}: a text value reached the database unchecked (request ${request.id})`,
    );
  } else if (body.statusCode === (HttpStatus.SERVICE_UNAVAILABLE as number)) {
    logger.warn(`${request.method} ${path}: database unavailable (request ${request.id})`);
  } else if (body.statusCode >= 500) {
    logger.error(
      `${request.method} ${path} failed (request ${request.id})`,
      exception instanceof Error ? exception.stack : String(exception),
    );
  }
  const retryAfter =
    exception instanceof AppError
      ? exception.retryAfter
      : body.statusCode === (HttpStatus.SERVICE_UNAVAILABLE as number)
        ? DATABASE_RETRY_AFTER
        : undefined;
  if (retryAfter !== undefined) void reply.header('Retry-After', String(retryAfter));
  if (body.statusCode === (HttpStatus.UNAUTHORIZED as number)) {
    void reply.header('WWW-Authenticate', wwwAuthenticate(body.code, body.message));
  }
  // JSON whatever the route had set: an event stream that fails before its
  // first byte (GET /oauth/revocations) has already named its own type.
  void reply
    .status(body.statusCode)
    .header('Cache-Control', 'no-store')
    .type('application/json; charset=utf-8')
    .send(body);
}

@Catch()
export class AllExceptionsFilter implements ExceptionFilter {
  protected readonly logger = new Logger('Exceptions');
  /** How errors are rendered (see sendError); subclasses for other transports set it. */
  protected readonly format: { oauth?: boolean } = {};

  catch(exception: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    sendError(
      http.getResponse<FastifyReply>(),
      http.getRequest<FastifyRequest>(),
      exception,
      this.logger,
      this.format,
    );
  }
}

/** For the OAuth endpoints (token, revocation, introspection): errors as RFC 6749 §5.2 has them. */
@Catch()
export class OAuthExceptionsFilter extends AllExceptionsFilter {
  protected override readonly format = { oauth: true };
}
