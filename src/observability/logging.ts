import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { LoggerService } from '@nestjs/common';
import { type FastifyReply, type FastifyRequest, LogController } from 'fastify';
import { type DestinationStream, type Level, type Logger, pino } from 'pino';
import { pathOf } from '../common/request-path.js';
import type { LogLevelName } from '../config/variables.js';

/** The JSON field that carries the request id on every line of a request. */
export const REQUEST_ID_LABEL = 'req_id';
export const REQUEST_ID_HEADER = 'x-request-id';

/** Fields that hold a secret wherever they appear in a logged object. */
const SECRET_FIELDS = [
  'password',
  'current_password',
  'new_password',
  'refresh_token',
  'access_token',
  'token',
];

/**
 * What pino blanks out before a line is written (OWASP ASVS 7.1.1: no
 * credentials or session tokens in logs; ASVS 7.1.2: no other sensitive
 * data). Request bodies are never logged in the first place; these paths are
 * the second line of defence for a header or DTO that some future log call
 * passes along. Paths are explicit or one level deep: pino's redaction cost
 * grows with every wildcard, and it runs on each line.
 */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
  'headers.authorization',
  'headers.cookie',
  ...SECRET_FIELDS,
  ...SECRET_FIELDS.map((field) => `*.${field}`),
];

/**
 * The application's root logger: JSON lines with the level as a label and an
 * ISO time. Production writes through an asynchronous buffer (flushed on
 * shutdown), so a request never waits on stdout; elsewhere writes are
 * synchronous, so nothing is lost when a developer's process dies.
 */
export function createRootLogger(
  level: LogLevelName,
  destination: DestinationStream = pino.destination({
    dest: 1,
    sync: process.env.NODE_ENV !== 'production',
  }),
): Logger {
  return pino(
    {
      level,
      base: undefined,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: REDACT_PATHS, censor: '[Redacted]' },
    },
    destination,
  );
}

const SAFE_REQUEST_ID = /^[A-Za-z0-9._-]{1,64}$/;

/**
 * Fastify's request id: the caller's (or the proxy's) `X-Request-Id` when it
 * is a short token of safe characters, so one id follows a request across
 * services; otherwise a fresh UUID. A client-chosen id is written to every
 * log line of its request, so anything longer or stranger is not trusted
 * (OWASP ASVS 7.3.1: log injection).
 */
export function requestIdFor(raw: IncomingMessage): string {
  const incoming = raw.headers[REQUEST_ID_HEADER];
  return typeof incoming === 'string' && SAFE_REQUEST_ID.test(incoming) ? incoming : randomUUID();
}

/**
 * Fastify's request log lines: one per request, when it completes, with the
 * route pattern, status and time; never headers or bodies. At `debug`
 * (LOG_LEVEL=debug turns them on), errors at `error`. Fastify's
 * "incoming request" line is dropped: it would double the writes for nothing
 * the completion line lacks.
 */
export class RequestLogController extends LogController {
  constructor() {
    super({ requestIdLogLabel: REQUEST_ID_LABEL });
  }

  override incomingRequest(): void {}

  override requestCompleted(
    error: Error | null | undefined,
    request: FastifyRequest,
    reply: FastifyReply,
  ): void {
    // Access lines are `debug`: one JSON line per request costs a measurable
    // share of the throughput of cheap routes, and a load balancer usually
    // keeps access logs already. Failed requests are always logged.
    const level: Level = error || reply.statusCode >= 500 ? 'error' : 'debug';
    const log = request.log as Logger;
    if (!log.isLevelEnabled(level)) return;
    log[level](
      {
        method: request.method,
        route: request.routeOptions.url,
        path: pathOf(request.url),
        status_code: reply.statusCode,
        response_time_ms: Math.round(reply.elapsedTime * 100) / 100,
        ...(error ? { err: error } : {}),
      },
      'request completed',
    );
  }
}

/**
 * The request's logger (with its request id) for code that logs through
 * Nest's `Logger` without access to the request: services, the exception
 * filter. Entered in a preHandler hook, so it covers guards, handlers and
 * filters, and never spans requests.
 */
export class RequestLogScope {
  private readonly storage = new AsyncLocalStorage<Logger>();

  current(): Logger | undefined {
    return this.storage.getStore();
  }

  /** Fastify hook: runs the rest of the request inside its logger's scope. */
  readonly enter = (request: FastifyRequest, _reply: FastifyReply, done: () => void): void => {
    this.storage.run(request.log as Logger, done);
  };
}

/**
 * Nest's `LoggerService` on top of pino: `new Logger(Context).warn(...)`
 * anywhere in the application becomes a JSON line with `context`, and, inside
 * a request, the request id.
 */
export class PinoNestLogger implements LoggerService {
  constructor(
    private readonly root: Logger,
    private readonly scope: RequestLogScope,
  ) {}

  log(message: unknown, ...params: unknown[]): void {
    this.write('info', message, params);
  }

  error(message: unknown, ...params: unknown[]): void {
    // Nest passes (message, stack, context); a lone parameter is the context.
    const stack = params.length >= 2 ? params[0] : undefined;
    this.write('error', message, params, typeof stack === 'string' ? stack : undefined);
  }

  warn(message: unknown, ...params: unknown[]): void {
    this.write('warn', message, params);
  }

  debug(message: unknown, ...params: unknown[]): void {
    this.write('debug', message, params);
  }

  verbose(message: unknown, ...params: unknown[]): void {
    this.write('trace', message, params);
  }

  fatal(message: unknown, ...params: unknown[]): void {
    this.write('fatal', message, params);
  }

  private write(level: Level, message: unknown, params: unknown[], stack?: string): void {
    const logger = this.scope.current() ?? this.root;
    if (!logger.isLevelEnabled(level)) return;
    const last = params[params.length - 1];
    const fields: Record<string, unknown> = {};
    if (typeof last === 'string') fields.context = last;
    if (stack !== undefined) fields.stack = stack;
    if (message instanceof Error) {
      logger[level]({ ...fields, err: message }, message.message);
    } else if (typeof message === 'string') {
      logger[level](fields, message);
    } else {
      logger[level]({ ...fields, data: message });
    }
  }
}
