import type { FastifyInstance, FastifyRequest } from 'fastify';

export const FORM_CONTENT_TYPE = 'application/x-www-form-urlencoded';

/** A form-encoded body: a repeated name keeps every value, so it can be refused. */
export type FormBody = Record<string, string | string[]>;

/**
 * Parses `application/x-www-form-urlencoded` bodies (WHATWG URL, as RFC 6749
 * Appendix B requires) on the listed routes only, and answers 415 everywhere
 * else. The OAuth endpoints must take forms (RFC 6749 §3.2, RFC 7009 §2.1,
 * RFC 7662 §2.1); no other route does, because an HTML form on another site
 * can post one without a CORS preflight. None of the listed routes reads a
 * cookie or an ambient credential from a form post, so such a post gains nothing.
 *
 * A repeated name keeps all its values (RFC 6749 §3.1: parameters must not be
 * repeated, which the route then refuses in its own error format).
 */
export function registerFormParser(
  instance: FastifyInstance,
  routes: readonly string[],
  bodyLimit: number,
): void {
  const allowed = new Set(routes);
  instance.addContentTypeParser(
    FORM_CONTENT_TYPE,
    { parseAs: 'string', bodyLimit },
    (request: FastifyRequest, body: string | Buffer, done) => {
      if (!allowed.has(request.routeOptions.url ?? '')) {
        done(
          Object.assign(new Error(`Unsupported Media Type: ${FORM_CONTENT_TYPE}`), {
            statusCode: 415,
          }),
        );
        return;
      }
      done(null, parseForm(String(body)));
    },
  );
}

export function parseForm(body: string): FormBody {
  const form: FormBody = Object.create(null) as FormBody;
  for (const [name, value] of new URLSearchParams(body)) {
    const earlier = form[name];
    form[name] = earlier === undefined ? value : [earlier, value].flat();
  }
  return form;
}
