import { applyDecorators, SetMetadata } from '@nestjs/common';
import { ApiExtension, type OpenAPIObject } from '@nestjs/swagger';

export const IS_PUBLIC_KEY = 'lineage:isPublic';

/**
 * Carries @Public() into the OpenAPI document, on the operation Nest's
 * explorer builds for each route. An operation-level `security: []` cannot be
 * written with @nestjs/swagger's decorators (an empty requirement list is
 * dropped), so the explorer carries this extension and
 * `declarePublicOperations` turns it into one, then removes it.
 */
const PUBLIC_OPERATION = 'x-lineage-public';

/**
 * Opts a route (or every route of a controller) out of the global
 * access-token guard, and documents it as needing no credential: the same
 * decorator opens the route and the document, so the two cannot disagree.
 */
export const Public = () =>
  applyDecorators(SetMetadata(IS_PUBLIC_KEY, true), ApiExtension(PUBLIC_OPERATION, true));

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const;

/**
 * Every operation of a @Public() route declares `security: []` (no
 * credential, OpenAPI 3.0 §4.7.10), unless the route names a scheme of its
 * own (the refresh route's cookie), which it keeps.
 */
export function declarePublicOperations(document: OpenAPIObject): OpenAPIObject {
  for (const item of Object.values(document.paths)) {
    for (const method of METHODS) {
      const operation = item[method] as Record<string, unknown> | undefined;
      if (operation?.[PUBLIC_OPERATION] === undefined) continue;
      delete operation[PUBLIC_OPERATION];
      operation.security ??= [];
    }
  }
  return document;
}
