import fastifyCookie from '@fastify/cookie';
import fastifyCors from '@fastify/cors';
import type { LoggerService, LogLevel } from '@nestjs/common';
import type { Logger as PinoLogger } from 'pino';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { DocumentBuilder, type OpenAPIObject, SwaggerModule } from '@nestjs/swagger';
import { AppModule } from './app.module.js';
import { FORM_ROUTES } from './auth/oauth/form-routes.js';
import { OAUTH2_SCHEME } from './common/authenticated.decorator.js';
import { RESOURCE_SERVER_SCHEME } from './auth/oauth/resource-server.guard.js';
import { registerFormParser } from './common/form-body.js';
import { REFRESH_COOKIE, REFRESH_COOKIE_SCHEME } from './auth/http/refresh-cookie.js';
import { declarePublicOperations } from './common/public.decorator.js';
import type { AppConfig } from './config/configuration.js';
import {
  createRootLogger,
  PinoNestLogger,
  RequestLogController,
  RequestLogScope,
  requestIdFor,
} from './observability/logging.js';
import { MetricsService } from './observability/metrics.service.js';

export const BODY_LIMIT_BYTES = 16 * 1024;

/** The OAuth client id of the Swagger UI page. */
export const SWAGGER_UI_CLIENT = 'swagger-ui';

export interface CreateAppOptions {
  /** Nest's logger; by default Nest logs through `pino` below. */
  logger?: LoggerService | LogLevel[] | false;
  /**
   * The JSON logger for request lines and (unless `logger` is given) Nest's
   * lines. Default: stdout at LOG_LEVEL, or nothing when `logger` is given
   * (the e2e suites, which stay quiet unless they capture logs).
   */
  pino?: PinoLogger;
  /** Called with the Fastify instance before routes are registered (tests collect routes). */
  beforeInit?: (adapter: FastifyAdapter) => void;
}

/**
 * The document served at /docs-json; client/scripts/write-openapi.mjs writes
 * the same one, from a fixed config, to client/openapi.json.
 */
export function buildOpenApiDocument(
  app: NestFastifyApplication,
  appConfig: AppConfig,
): OpenAPIObject {
  const config = new DocumentBuilder()
    .setTitle('Lineage')
    .setDescription(
      'Authentication API: short-lived JWT access tokens, rotating single-use refresh tokens ' +
        'grouped in sessions (one per login), immediate logout, and a per-user todo list. ' +
        'Every error has the shape `{statusCode, error, code, message}` with a stable `code`.',
    )
    .setVersion('0.1.0')
    .setLicense('MIT', 'https://spdx.org/licenses/MIT.html')
    // Where clients reach the API: Swagger UI sends its requests there.
    .addServer(appConfig.publicUrl, 'This deployment (PUBLIC_URL)')
    .addBearerAuth({ type: 'http', scheme: 'bearer', bearerFormat: 'JWT' })
    // Swagger UI's Authorize dialog logs in with a username and password at
    // the token endpoint (RFC 6749 §4.3), as the `swagger-ui` client.
    .addOAuth2(
      {
        type: 'oauth2',
        description:
          'Log in with a username and password (client_id `swagger-ui`, no secret). The ' +
          'access token is then sent as a bearer token.',
        flows: { password: { tokenUrl: '/oauth/token', scopes: {} } },
      },
      OAUTH2_SCHEME,
    )
    .addBasicAuth(
      {
        type: 'http',
        scheme: 'basic',
        description:
          'A resource server’s id and secret from RESOURCE_SERVERS (`client_secret_basic`, ' +
          'RFC 6749 §2.3.1): token introspection and the revocation feed.',
      },
      RESOURCE_SERVER_SCHEME,
    )
    .addCookieAuth(
      REFRESH_COOKIE,
      {
        type: 'apiKey',
        in: 'cookie',
        name: REFRESH_COOKIE,
        description:
          'The refresh token in the cookie transport (send `X-Token-Transport: cookie`). HttpOnly, ' +
          'Secure, SameSite=Strict, Path=/; the `__Host-` prefix keeps other hosts of the site from ' +
          'setting it. Named `refresh_token`, without Secure, when COOKIE_SECURE=false ' +
          '(plain-http development only). Sent more than once: 400 `cookie_duplicated`.',
      },
      REFRESH_COOKIE_SCHEME,
    )
    .build();
  return declarePublicOperations(SwaggerModule.createDocument(app, config));
}

const isEventStream = (contentType: unknown) =>
  typeof contentType === 'string' && contentType.startsWith('text/event-stream');

/** A hop count becomes proxy-addr's "trust the first N hops" function. */
function trustProxyOption(trust: AppConfig['http']['trustProxy']) {
  return typeof trust === 'number' ? (_address: string, hop: number) => hop < trust : trust;
}

/** Builds the fully configured application; `main.ts` and the e2e tests share it. */
export async function createApp(
  config: AppConfig,
  options: CreateAppOptions = {},
): Promise<NestFastifyApplication> {
  const pinoLogger =
    options.pino ??
    (options.logger === undefined
      ? createRootLogger(config.observability.logLevel)
      : createRootLogger('silent', { write: () => undefined }));
  const adapter = new FastifyAdapter({
    bodyLimit: BODY_LIMIT_BYTES,
    // X-Forwarded-For is believed only from the configured proxies (TRUST_PROXY):
    // otherwise any client could pick the IP that rate limits and the audit trail see.
    trustProxy: trustProxyOption(config.http.trustProxy),
    // Fastify refuses `__proto__` and `constructor.prototype` keys in JSON
    // bodies (its defaults, pinned here): no prototype pollution through input.
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    // One JSON line per request, with a request id on it and on every line
    // logged while the request runs (OWASP ASVS 7.1.3: events carry what is
    // needed to investigate them). Fastify's own pino integration rather than
    // nestjs-pino: nestjs-pino keeps one root logger per process (the first
    // app's wins, while the e2e suites run several apps with different log
    // sinks) and adds a middleware layer, pino-http's per-request serializers
    // and its own child logger on top of the one Fastify already makes.
    loggerInstance: pinoLogger,
    logController: new RequestLogController(),
    genReqId: requestIdFor,
  });
  // JSON routes take JSON only: any other content type is a 415, not a parsed string.
  adapter.getInstance().removeContentTypeParser('text/plain');
  // ...except the OAuth endpoints, which take forms as their RFCs require.
  registerFormParser(adapter.getInstance(), FORM_ROUTES, BODY_LIMIT_BYTES);
  const metrics = new MetricsService();
  const logScope = new RequestLogScope();
  adapter
    .getInstance()
    .addHook('onRequest', (request, reply, done) => {
      // Echoed so a client or proxy can quote it when reporting a problem.
      void reply.header('X-Request-Id', request.id);
      done();
    })
    .addHook('preHandler', logScope.enter)
    .addHook('onResponse', (request, reply, done) => {
      // An event stream's duration is how long it was followed, not a latency:
      // in the histogram it would only push quantiles into the top bucket.
      if (isEventStream(reply.getHeader('content-type'))) return done();
      metrics.observeRequest(
        request.method,
        // The route pattern (`/todos/:id`), never the URL: one series per route.
        request.routeOptions.url ?? 'unmatched',
        reply.statusCode,
        reply.elapsedTime / 1000,
      );
      done();
    });
  options.beforeInit?.(adapter);
  const app = await NestFactory.create<NestFastifyApplication>(
    AppModule.forRoot(config, metrics),
    adapter,
    {
      logger: options.logger ?? new PinoNestLogger(pinoLogger, logScope),
      bufferLogs: false,
      // Nest's parsers would add application/x-www-form-urlencoded, which an HTML
      // form on another site can post without a CORS preflight. Fastify's own
      // JSON parser (body limit and poisoning options above) is the only one.
      bodyParser: false,
    },
  );
  // Security headers on every response (OWASP ASVS 14.4): Nest's own
  // helmet-equivalent hook, whose header list is resolved once at start
  // rather than by a middleware chain on every request. The CSP allows what
  // the Swagger UI page needs: its own
  // scripts and its inline styles.
  app.useSecurityHeaders({
    contentSecurityPolicy: {
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'", "'unsafe-inline'"],
        imgSrc: ["'self'", 'data:'],
        // Plain-http local development must keep loading the UI's assets.
        upgradeInsecureRequests: null,
      },
    },
  });
  // CORS is off unless origins are listed; then only those, never "*", and
  // credentials (the refresh cookie) only for them.
  if (config.http.corsOrigins.length > 0) {
    await app.register(fastifyCors, {
      origin: config.http.corsOrigins,
      credentials: true,
      methods: ['GET', 'POST', 'PATCH', 'DELETE'],
      allowedHeaders: ['Authorization', 'Content-Type', 'X-Token-Transport', 'DPoP'],
      // RFC 9449 §8: a browser client must be able to read the nonce it is asked to use;
      // and the request id, which a client quotes when it reports a failure.
      exposedHeaders: [
        'X-Total-Count',
        'Retry-After',
        'DPoP-Nonce',
        'WWW-Authenticate',
        'X-Request-Id',
      ],
      maxAge: 600,
    });
  }
  // Parses the Cookie header for the refresh-token cookie transport.
  await app.register(fastifyCookie);
  // DOCS_ENABLED: served by default outside production only (see environment.ts).
  if (config.docsEnabled) {
    SwaggerModule.setup('docs', app, () => buildOpenApiDocument(app, config), {
      jsonDocumentUrl: 'docs-json',
      swaggerOptions: {
        persistAuthorization: true,
        // The client the Authorize dialog logs in as (OAUTH_CLIENTS lists it by default).
        initOAuth: { clientId: SWAGGER_UI_CLIENT },
      },
    });
  }
  await app.init();
  await app.getHttpAdapter().getInstance().ready();
  return app;
}
