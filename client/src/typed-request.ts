import type { paths } from './schema.js';

/** The methods `request()` sends. */
export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** The OpenAPI operation at `path` for `method`, never when the API has none. */
export type OperationOf<P extends keyof paths, M extends HttpMethod> =
  Lowercase<M> extends keyof paths[P] ? NonNullable<paths[P][Lowercase<M>]> : never;

/** The path templates (`/todos/{id}`) that have an operation for `method`. */
export type PathsFor<M extends HttpMethod> = {
  [P in keyof paths]: [OperationOf<P, M>] extends [never] ? never : P;
}[keyof paths];

type ParamsPart<O> = O extends { parameters: { path: infer X } }
  ? { params: X }
  : { params?: never };

type QueryPart<O> = O extends { parameters: { query?: infer Q } }
  ? [NonNullable<Q>] extends [never]
    ? { query?: never }
    : { query?: NonNullable<Q> }
  : { query?: never };

type JsonBody<R> = R extends { content: { 'application/json': infer B } } ? B : never;

type BodyPart<O> = O extends { requestBody: infer R }
  ? [JsonBody<R>] extends [never]
    ? { body?: never }
    : { body: JsonBody<R> }
  : O extends { requestBody?: infer R }
    ? [JsonBody<NonNullable<R>>] extends [never]
      ? { body?: never }
      : { body?: JsonBody<NonNullable<R>> }
    : { body?: never };

/** What `request()` takes besides method and path, typed from the operation. */
export type RequestOptions<O> = ParamsPart<O> &
  QueryPart<O> &
  BodyPart<O> & {
    /** Extra request headers. Authorization, DPoP and Content-Type are the client's. */
    headers?: Record<string, string>;
    /**
     * Whether sending the request twice has the effect of sending it once,
     * which allows a retry after a network failure (with `retry`). By default
     * as RFC 9110 §9.2.2 says of the method: GET, PUT and DELETE are, POST
     * and PATCH are not.
     */
    idempotent?: boolean;
  };

type SuccessStatus = 200 | 201 | 202 | 204;

/** The JSON body of the operation's success answers; undefined for one without a body (204). */
export type ResponseOf<O> = O extends { responses: infer R }
  ? {
      [S in keyof R & SuccessStatus]: R[S] extends { content: { 'application/json': infer J } }
        ? J
        : undefined;
    }[keyof R & SuccessStatus]
  : never;

/** `options` may be left out when nothing in it is required. */
export type RequestArgs<O> =
  Record<string, never> extends RequestOptions<O>
    ? [options?: RequestOptions<O>]
    : [options: RequestOptions<O>];

/** The URL path with `{name}` placeholders filled in, each value percent-encoded. */
export function fillPath(
  template: string,
  params: Record<string, string | number | boolean> | undefined,
): string {
  return template.replace(/\{([^}]+)\}/g, (_match, name: string) => {
    const value = params?.[name];
    if (value === undefined) {
      throw new TypeError(`request(): missing path parameter "${name}" for ${template}`);
    }
    return encodeURIComponent(String(value));
  });
}
