import { randomUUID } from 'node:crypto';
import { ConfigService } from '@nestjs/config';
import type { Response } from 'supertest';
import { BODY_LIMIT_BYTES } from '../src/app.factory.js';
import { ErrorCode } from '../src/common/errors.js';
import type { AppConfig } from '../src/config/configuration.js';
import { pendingSchemaChanges } from '../src/database/migrations.js';
import { bearer, claimsOf, me, register } from './support/requests.js';
import { expectError } from './support/errors.js';
import { useTestApp } from './support/test-app.js';

interface OpenApiOperation {
  security?: Record<string, string[]>[];
  parameters?: unknown[];
  requestBody?: unknown;
  responses?: Record<
    string,
    { description?: string; content?: Record<string, { schema?: OpenApiSchema }> }
  >;
}

interface OpenApiSchema {
  $ref?: string;
  enum?: unknown[];
  properties?: Record<string, OpenApiSchema>;
  allOf?: OpenApiSchema[];
}

interface OpenApiDocument {
  openapi: string;
  info: { license?: { name: string; url?: string } };
  servers?: { url: string }[];
  paths: Record<string, Record<string, OpenApiOperation>>;
  components?: {
    securitySchemes?: Record<string, Record<string, unknown>>;
    schemas?: Record<string, OpenApiSchema>;
  };
}

/** The routes that carry @Public(); every other operation needs a bearer token. */
const PUBLIC_OPERATIONS = new Set([
  'POST /auth/register',
  'POST /auth/login',
  'POST /auth/refresh',
  'POST /auth/revoke',
  'GET /health',
  'GET /health/live',
  'GET /health/ready',
  'GET /.well-known/jwks.json',
  'GET /.well-known/oauth-authorization-server',
  'GET /.well-known/openid-configuration',
  'POST /oauth/token',
]);

/** Called by resource servers with their own credentials (HTTP Basic), not by users. */
const RESOURCE_SERVER_OPERATIONS = new Set(['POST /oauth/introspect', 'GET /oauth/revocations']);

/** RFC 6749 §5.2's `error` values, which the OAuth endpoints' descriptions name too. */
const OAUTH_ERRORS = [
  'invalid_request',
  'invalid_client',
  'invalid_grant',
  'unsupported_grant_type',
];

/** Operator endpoints, deliberately left out of the API's document (@ApiExcludeController). */
const UNDOCUMENTED_OPERATIONS = new Set(['GET /metrics']);

const HTTP_METHODS = new Set(['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace']);

const t = useTestApp();

describe('GET /health', () => {
  it('is public and reports the database up', async () => {
    const res = await t.http().get('/health').expect(200);
    expect(res.body).toEqual({ status: 'ok', database: 'up' });
  });
});

describe('GET /users/me', () => {
  it('returns exactly id, username and created_at of the token’s user', async () => {
    const { access_token, username } = await register(t);
    const res = await me(t, access_token).expect(200);

    const body = res.body as { id: string; username: string; created_at: string };
    expect(Object.keys(body).sort()).toEqual(['created_at', 'id', 'username']);
    expect(body.id).toBe(claimsOf(access_token).sub);
    expect(body.username).toBe(username);
    expect(new Date(body.created_at).toISOString()).toBe(body.created_at);
    expect(res.text).not.toMatch(/password|hash/i);
  });

  it('needs a token', async () => {
    const res = await t.http().get('/users/me');
    expectError(res, 401, 'token_missing');
    expect(res.headers['www-authenticate']).toMatch(/^Bearer /);
  });
});

describe('caching (RFC 9111 §5.2.2.5; ASVS 8.2.1)', () => {
  it('every response to an authenticated request is Cache-Control: no-store', async () => {
    const { access_token } = await register(t);
    const auth = bearer(access_token);
    const created = await t.http().post('/todos').set(auth).send({ title: 'private' }).expect(201);
    const id = (created.body as { id: string }).id;
    const responses: [string, Response][] = [
      ['POST /todos', created],
      ['GET /todos', await t.http().get('/todos').set(auth).expect(200)],
      ['GET /todos/:id', await t.http().get(`/todos/${id}`).set(auth).expect(200)],
      [
        'PATCH /todos/:id',
        await t.http().patch(`/todos/${id}`).set(auth).send({ completed: true }).expect(200),
      ],
      ['GET /users/me', await t.http().get('/users/me').set(auth).expect(200)],
      ['GET /users/me/events', await t.http().get('/users/me/events').set(auth).expect(200)],
      ['GET /auth/sessions', await t.http().get('/auth/sessions').set(auth).expect(200)],
      ['DELETE /todos/:id', await t.http().delete(`/todos/${id}`).set(auth).expect(204)],
    ];
    expect(
      responses.map(([route, res]) => [route, res.headers['cache-control'] as unknown]),
    ).toEqual(responses.map(([route]) => [route, 'no-store']));
  });

  it('public, cacheable documents keep their own caching', async () => {
    const jwks = await t.http().get('/.well-known/jwks.json').expect(200);
    expect(jwks.headers['cache-control']).toMatch(/^public, max-age=\d+$/);
    const health = await t.http().get('/health').expect(200);
    expect(health.headers['cache-control']).toBeUndefined();
  });
});

describe('OpenAPI document', () => {
  let doc: OpenApiDocument;

  beforeAll(async () => {
    const res = await t.http().get('/docs-json').expect(200);
    doc = res.body as OpenApiDocument;
  });

  /** "METHOD /path" for every application route Fastify registered, in OpenAPI path syntax. */
  function applicationRoutes(): string[] {
    const routes = t.routes
      .filter((route) => !route.startsWith('HEAD '))
      .filter((route) => {
        const path = route.slice(route.indexOf(' ') + 1);
        return path !== '/docs' && !path.startsWith('/docs/') && !path.startsWith('/docs-');
      })
      .filter((route) => !UNDOCUMENTED_OPERATIONS.has(route))
      .map((route) => route.replace(/:(\w+)/g, '{$1}'));
    return [...new Set(routes)].sort();
  }

  /** "METHOD /path" for every operation the document describes. */
  function documentedOperations(): string[] {
    return Object.entries(doc.paths)
      .flatMap(([path, item]) =>
        Object.keys(item)
          .filter((method) => HTTP_METHODS.has(method))
          .map((method) => `${method.toUpperCase()} ${path}`),
      )
      .sort();
  }

  function operation(route: string): OpenApiOperation | undefined {
    const [method, path] = route.split(' ');
    return doc.paths[path]?.[method.toLowerCase()];
  }

  it('is OpenAPI 3', () => {
    expect(doc.openapi).toMatch(/^3\./);
  });

  it('the route collection saw the application routes', () => {
    // Guards the next test against passing vacuously on an empty or mis-filtered list.
    expect(applicationRoutes()).toEqual(
      expect.arrayContaining([
        'GET /health',
        'GET /users/me',
        'POST /auth/login',
        'GET /todos',
        'PATCH /todos/{id}',
      ]),
    );
  });

  it('documents every registered route, and nothing that is not registered', () => {
    const documented = documentedOperations();
    const missing = applicationRoutes().filter((route) => !documented.includes(route));
    expect(missing).toEqual([]);
    expect(documented).toEqual(applicationRoutes());
  });

  it('declares a bearer security scheme', () => {
    expect(doc.components?.securitySchemes?.bearer).toMatchObject({
      type: 'http',
      scheme: 'bearer',
    });
  });

  it('every non-public operation requires the bearer scheme', () => {
    const protectedRoutes = applicationRoutes().filter(
      (route) => !PUBLIC_OPERATIONS.has(route) && !RESOURCE_SERVER_OPERATIONS.has(route),
    );
    expect(protectedRoutes.length).toBeGreaterThan(0);
    const unsecured = protectedRoutes.filter(
      (route) => !operation(route)?.security?.some((requirement) => 'bearer' in requirement),
    );
    expect(unsecured).toEqual([]);
  });

  it('resource-server operations require the resource_server (Basic) scheme', () => {
    expect(doc.components?.securitySchemes?.resource_server).toMatchObject({
      type: 'http',
      scheme: 'basic',
    });
    for (const route of RESOURCE_SERVER_OPERATIONS) {
      expect(operation(route)?.security).toEqual([{ resource_server: [] }]);
    }
  });

  it('public operations do not claim to need an access token', () => {
    for (const route of PUBLIC_OPERATIONS) {
      const op = operation(route);
      expect(op).toBeDefined();
      // The refresh route documents the refresh-token cookie, never the bearer scheme.
      const expected = route === 'POST /auth/refresh' ? [{ refresh_token: [] }] : [];
      expect(op?.security ?? []).toEqual(expected);
    }
  });

  it('names the deployment (PUBLIC_URL) as its server, and its license', () => {
    const publicUrl = t.app.get(ConfigService<AppConfig, true>).get('publicUrl', { infer: true });
    expect(doc.servers).toEqual([expect.objectContaining({ url: publicUrl })]);
    expect(doc.info.license).toEqual({ name: 'MIT', url: 'https://spdx.org/licenses/MIT.html' });
  });

  it('every operation declares its security: schemes the document defines, or [] for none', () => {
    const schemes = Object.keys(doc.components?.securitySchemes ?? {});
    const undeclared = documentedOperations().filter((route) => {
      const security = operation(route)?.security;
      return (
        security === undefined ||
        security.some((requirement) => Object.keys(requirement).some((s) => !schemes.includes(s)))
      );
    });
    expect(undeclared).toEqual([]);
  });

  /** Whether every alternative `security` of the operation asks for an access token. */
  function needsAccessToken(route: string): boolean {
    // The schemes whose credential is an access token in the Authorization header.
    const schemes = doc.components?.securitySchemes ?? {};
    const accessTokenSchemes = Object.keys(schemes).filter(
      (name) =>
        (schemes[name].type === 'http' && schemes[name].scheme === 'bearer') ||
        schemes[name].type === 'oauth2',
    );
    const security = operation(route)?.security ?? [];
    return (
      security.length > 0 &&
      security.every((requirement) => accessTokenSchemes.some((name) => name in requirement))
    );
  }

  it('what each operation declares is what the access-token guard does', async () => {
    // Without any credential: an operation that needs an access token is
    // refused by the guard before anything else looks at the request; any
    // other one gets past it (to validation, a 404, or an answer).
    const outcomes = await Promise.all(
      documentedOperations().map(async (route) => {
        const [method, path] = route.split(' ');
        const url = path.replace(/\{\w+\}/g, () => randomUUID());
        const res = await t.http()[method.toLowerCase() as 'get'](url);
        const refusedByGuard =
          res.status === 401 && (res.body as { code?: string }).code === ErrorCode.TokenMissing;
        return { route, guarded: needsAccessToken(route), refusedByGuard };
      }),
    );
    expect(outcomes.filter((o) => o.guarded).length).toBeGreaterThan(0);
    expect(outcomes.filter((o) => !o.guarded).length).toBeGreaterThan(0);
    expect(outcomes.filter((o) => o.guarded !== o.refusedByGuard)).toEqual([]);
  });

  it('every operation that takes input or a credential documents how it fails (4xx)', () => {
    // The ones left take nothing a client could get wrong (see
    // client/.redocly.lint-ignore.yaml): no parameter, no body, no credential.
    const silent = documentedOperations().filter((route) => {
      const op = operation(route)!;
      const takesSomething =
        (op.parameters?.length ?? 0) > 0 ||
        op.requestBody !== undefined ||
        (op.security ?? []).some((requirement) => Object.keys(requirement).length > 0);
      return takesSomething && !Object.keys(op.responses ?? {}).some((s) => /^4\d\d$/.test(s));
    });
    expect(silent).toEqual([]);
  });

  it('every operation that needs an access token documents its 401', () => {
    const undocumented = documentedOperations().filter(
      (route) => needsAccessToken(route) && operation(route)?.responses?.['401'] === undefined,
    );
    expect(undocumented).toEqual([]);
  });

  it('every 4xx and 5xx response has the one error shape', () => {
    const errors = documentedOperations().flatMap((route) =>
      Object.entries(operation(route)?.responses ?? {})
        .filter(([status]) => Number(status) >= 400)
        .map(([status, response]) => ({
          response: `${route} ${status}`,
          schema: response.content?.['application/json']?.schema?.$ref,
        })),
    );
    expect(errors.length).toBeGreaterThan(0);
    expect(errors.filter((e) => e.schema !== '#/components/schemas/ErrorResponseDto')).toEqual([]);
  });

  it('documents the refresh-token cookie and the transport header', () => {
    expect(doc.components?.securitySchemes?.refresh_token).toMatchObject({
      type: 'apiKey',
      in: 'cookie',
      name: '__Host-refresh_token',
    });
    const refreshResponses = (
      operation('POST /auth/refresh') as { responses: Record<string, { description: string }> }
    ).responses;
    expect(refreshResponses['400'].description).toContain('cookie_duplicated');
    for (const route of ['POST /auth/register', 'POST /auth/login', 'POST /auth/refresh']) {
      const params =
        (operation(route) as { parameters?: { name: string; in: string }[] }).parameters ?? [];
      expect(params).toContainEqual(
        expect.objectContaining({ name: 'X-Token-Transport', in: 'header' }),
      );
    }
  });

  /** A schema, through its `$ref` (or a one-element `allOf` wrapping one) if it has one. */
  function resolve(schema: OpenApiSchema | undefined): OpenApiSchema | undefined {
    const ref = schema?.$ref ?? (schema?.allOf?.length === 1 ? schema.allOf[0].$ref : undefined);
    return ref ? doc.components?.schemas?.[ref.replace('#/components/schemas/', '')] : schema;
  }

  it('documents every error code the API returns, read from ErrorCode, and no other', () => {
    const errorSchema = doc.components?.schemas?.ErrorResponseDto;
    const documented = resolve(errorSchema?.properties?.code)?.enum;
    expect([...((documented as string[] | undefined) ?? [])].sort()).toEqual(
      Object.values(ErrorCode).sort(),
    );
  });

  it('every code an error response description names is one of ErrorCode', () => {
    const codes = new Set<string>([...Object.values(ErrorCode), ...OAUTH_ERRORS]);
    const named = Object.entries(doc.paths).flatMap(([path, item]) =>
      Object.entries(item).flatMap(([method, op]) =>
        Object.entries(op.responses ?? {})
          .filter(([status]) => Number(status) >= 400)
          .flatMap(([status, response]) =>
            [...(response.description ?? '').matchAll(/`([a-z]+_[a-z_]+)`/g)].map(
              ([, code]) => `${method.toUpperCase()} ${path} ${status} ${code}`,
            ),
          ),
      ),
    );
    expect(named.length).toBeGreaterThan(0);
    expect(named.filter((entry) => !codes.has(entry.split(' ')[3]))).toEqual([]);
  });

  it.each(['/docs', '/docs/'])('GET %s serves the Swagger UI page', async (path) => {
    const res = await t.http().get(path).expect(200);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    expect(res.text).toMatch(/<html/i);
    expect(res.text).toContain('Swagger UI');
  });
});

describe('DOCS_ENABLED=false (the production default)', () => {
  const withoutDocs = useTestApp({ DOCS_ENABLED: 'false' });

  it.each(['/docs', '/docs/', '/docs-json'])('GET %s is 404 not_found', async (path) => {
    expectError(await withoutDocs.http().get(path), 404, 'not_found');
  });

  it('the metadata names no service documentation; the API is unchanged', async () => {
    const metadata = await withoutDocs.http().get('/.well-known/oauth-authorization-server');
    expect(metadata.status).toBe(200);
    expect(metadata.body).not.toHaveProperty('service_documentation');
    const served = await t.http().get('/.well-known/oauth-authorization-server').expect(200);
    expect(served.body).toHaveProperty('service_documentation');
    await withoutDocs.http().get('/health/ready').expect(200);
  });
});

describe('error responses', () => {
  it('an unknown route is 404 not_found', async () => {
    const res = await t.http().get('/no-such-route');
    expectError(res, 404, 'not_found');
  });

  it('an unregistered method on a known path is 404 not_found', async () => {
    const res = await t.http().delete('/health');
    expectError(res, 404, 'not_found');
  });

  it('malformed JSON is 400 bad_request without internals', async () => {
    const res = await t
      .http()
      .post('/auth/login')
      .set('Content-Type', 'application/json')
      .send('{"username": "a", "password": ');
    expectError(res, 400, 'bad_request');
  });

  it('a non-JSON content type is 415 unsupported_media_type', async () => {
    const res = await t
      .http()
      .post('/auth/login')
      .set('Content-Type', 'text/plain')
      .send('username=a&password=b');
    expectError(res, 415, 'unsupported_media_type');
  });

  it('a body over 16 KiB is 413 payload_too_large', async () => {
    expect(BODY_LIMIT_BYTES).toBe(16 * 1024);
    const res = await t
      .http()
      .post('/auth/login')
      .send({ username: 'someone', password: 'p'.repeat(BODY_LIMIT_BYTES) });
    expectError(res, 413, 'payload_too_large');
  });

  it('a body just under 16 KiB reaches validation instead', async () => {
    const res = await t
      .http()
      .post('/auth/login')
      .send({ username: 'someone', password: 'p'.repeat(BODY_LIMIT_BYTES - 100) });
    expectError(res, 400, 'validation_failed');
    expect((res.body as { details?: { field: string }[] }).details).toEqual([
      expect.objectContaining({ field: 'password' }),
    ]);
  });

  it('a validation error carries details in the same shape', async () => {
    const res = await t.http().post('/auth/login').send({ username: 'someone' });
    expectError(res, 400, 'validation_failed');
    const { details } = res.body as { details?: { field: string; messages: string[] }[] };
    expect(details?.map((detail) => detail.field)).toEqual(['password']);
    expect(details?.[0].messages.length).toBeGreaterThan(0);
    expect(details?.[0].messages.join('; ')).toMatch(/^password /);
  });
});

describe('schema', () => {
  it('the migrations produce exactly the schema the entities describe', async () => {
    expect(await pendingSchemaChanges(t.db)).toEqual([]);
  });
});
