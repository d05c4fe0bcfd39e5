import type { Response } from 'supertest';
import { BODY_LIMIT_BYTES } from '../src/app.factory.js';
import { ErrorCode } from '../src/common/errors.js';
import { pendingSchemaChanges } from '../src/database/migrations.js';
import { bearer, claimsOf, me, register } from './support/requests.js';
import { expectError } from './support/errors.js';
import { useTestApp } from './support/test-app.js';

interface OpenApiOperation {
  security?: Record<string, string[]>[];
  responses?: Record<string, { description?: string }>;
}

interface OpenApiSchema {
  $ref?: string;
  enum?: unknown[];
  properties?: Record<string, OpenApiSchema>;
  allOf?: OpenApiSchema[];
}

interface OpenApiDocument {
  openapi: string;
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
  'GET /.well-known/jwks.json',
  'GET /.well-known/oauth-authorization-server',
  'GET /.well-known/openid-configuration',
]);

/** Called by resource servers (RESOURCE_SERVERS) with HTTP Basic, not by users. */
const RESOURCE_SERVER_OPERATIONS = new Set(['GET /oauth/revocations']);

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

  it('resource-server operations require the Basic scheme, never an access token', () => {
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
    const codes = new Set<string>(Object.values(ErrorCode));
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
