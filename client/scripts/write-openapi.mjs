// Writes client/openapi.json: the OpenAPI document of the compiled app
// (dist/, from `nest build`), built exactly as the running app builds the one
// it serves at /docs-json (buildOpenApiDocument). Nest's preview mode scans
// modules and controllers without instantiating providers, so no database is
// needed. test/client/openapi-drift.e2e-spec.ts checks the result against
// what a real app serves. Run through `npm run client:generate`.
import 'reflect-metadata';
import { writeFile } from 'node:fs/promises';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter } from '@nestjs/platform-fastify';

const dist = new URL('../../dist/src/', import.meta.url);
const { AppModule } = await import(new URL('app.module.js', dist).href);
const { buildOpenApiDocument } = await import(new URL('app.factory.js', dist).href);
const { buildConfig } = await import(new URL('config/environment.js', dist).href);

// Placeholders that pass config validation; preview mode never connects or signs.
// PUBLIC_URL becomes the document's `servers` entry: a host reserved for
// documentation (RFC 2606 §2), as a deployment's own URL would be, where the
// development default (localhost) would fail the lint. The drift test serves
// the document with the same PUBLIC_URL.
const config = buildConfig({
  NODE_ENV: 'test',
  PUBLIC_URL: 'https://lineage.example',
  DATABASE_URL: 'postgres://openapi@127.0.0.1:9/openapi',
  SIGNING_KEYS_SECRET: 'openapi-document-only-not-a-secret-0000000000',
  JWT_REFRESH_SECRET: 'openapi-document-only-not-a-secret-1111111111',
});
const app = await NestFactory.create(AppModule.forRoot(config), new FastifyAdapter(), {
  preview: true,
  logger: false,
});
const document = buildOpenApiDocument(app, config);
await app.close();
await writeFile(
  new URL('../openapi.json', import.meta.url),
  `${JSON.stringify(document, null, 2)}\n`,
);
