import { z } from 'zod';
import { parseDurationSeconds } from './duration.js';

/** What LOG_LEVEL may name: pino's levels. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevelName = (typeof LOG_LEVELS)[number];

/*
 * What one variable may hold, as zod schemas. Unset and empty (`VAR=`) both
 * mean "not given"; `trimmed` variables also ignore surrounding blanks. Every
 * message completes "Invalid configuration: VAR ...".
 */

export const given = <T extends z.ZodType>(schema: T) =>
  z.preprocess((value) => (value === '' ? undefined : value), schema.optional());

export const trimmed = <T extends z.ZodType>(schema: T) =>
  z.preprocess(
    (value) => (typeof value === 'string' ? value.trim() || undefined : value),
    schema.optional(),
  );

/** What the operator wrote, quoted, for a message. */
export const got = (input: unknown) => `(got "${String(input)}")`;

/** A whole number from min to max. */
export const integer = (min: number, max: number) =>
  given(
    z
      .string()
      .regex(/^\d+$/, { error: (issue) => `must be an integer ${got(issue.input)}` })
      .transform(Number)
      .refine((value) => value >= min && value <= max, {
        error: (issue) => `must be between ${min} and ${max} (got ${String(issue.input)})`,
      }),
  );

/** Whole seconds ("900") or a duration with a unit ("15m", "7d"), from min to max seconds. */
export const seconds = (min: number, max = Number.POSITIVE_INFINITY) =>
  given(
    z
      .string()
      .transform((raw, ctx) => {
        const value = parseDurationSeconds(raw);
        if (value === undefined) {
          ctx.addIssue(`must be seconds or a duration like 15m, 7d ${got(raw)}`);
          return z.NEVER;
        }
        return value;
      })
      .pipe(
        z
          .number()
          .min(min, `must be at least ${min} seconds`)
          .max(max, `must be at most ${max} seconds`),
      ),
  );

/** true/1 or false/0. */
export const flag = given(
  z.stringbool({
    truthy: ['true', '1'],
    falsy: ['false', '0'],
    case: 'sensitive',
    error: (issue) => `must be true or false ${got(issue.input)}`,
  }),
);

/** A URL, as `new URL` (and so the driver) parses it, with one of these schemes. */
export const url = (schemes: string[], wrongScheme: string, unparsable = wrongScheme) =>
  z.string().superRefine((raw, ctx) => {
    const parsed = URL.parse(raw);
    if (!parsed) ctx.addIssue(unparsable);
    else if (!schemes.includes(parsed.protocol)) ctx.addIssue(wrongScheme);
  });

/** Exactly an http(s) origin: scheme://host[:port], nothing more. */
function isHttpOrigin(value: string): boolean {
  const parsed = URL.parse(value);
  const web = parsed?.protocol === 'https:' || parsed?.protocol === 'http:';
  return web && parsed?.origin === value;
}

const withoutTrailingSlash = (value: string) => value.replace(/\/$/, '');

const HOP_COUNT = /^\d+$/;
const ADDRESS_OR_CIDR = /^[0-9a-fA-F:.]+(\/\d{1,3})?$/;
const proxyList = (raw: string) =>
  raw
    .split(',')
    .map((entry) => entry.trim())
    .filter(Boolean);

/** Where clients reach the service; no path, query or fragment: endpoints are appended to it (RFC 8414 §2 issuer). */
export const publicUrl = trimmed(
  z
    .string()
    .refine((raw) => isHttpOrigin(withoutTrailingSlash(raw)), {
      error: (issue) =>
        `must be scheme://host[:port] without a path, like https://auth.example.com ${got(issue.input)}`,
    })
    .transform(withoutTrailingSlash),
);

/** Whose X-Forwarded-For is believed: "false", a hop count, or addresses/CIDRs. */
export const trustProxy = trimmed(
  z
    .string()
    // "true" would believe any client's X-Forwarded-For, which defeats per-IP limits.
    .refine((raw) => raw !== 'true', {
      error: 'must name the proxies (addresses/CIDRs) or a hop count, not true',
      abort: true,
    })
    .refine(
      (raw) =>
        raw === 'false' ||
        HOP_COUNT.test(raw) ||
        proxyList(raw).every((entry) => ADDRESS_OR_CIDR.test(entry)),
      { error: (issue) => `must be addresses or CIDRs separated by commas ${got(issue.input)}` },
    )
    .transform((raw) =>
      raw === 'false' ? false : HOP_COUNT.test(raw) ? Number(raw) : proxyList(raw),
    ),
);

/** Origins allowed by CORS, comma-separated. */
export const corsOrigins = trimmed(
  z
    .string()
    .transform((raw) => raw.split(',').map((entry) => entry.trim()))
    .pipe(
      z.array(
        // "*" is never allowed with credentials.
        z.string().refine(isHttpOrigin, {
          error: (issue) => `must list origins like https://app.example.com ${got(issue.input)}`,
        }),
      ),
    ),
);

/** What a client or resource-server id may be: RFC 6749 leaves it open; this keeps it printable. */
const CLIENT_ID = /^[A-Za-z0-9._~-]{1,64}$/;

/** Public OAuth client ids, comma-separated. */
export const clientIds = trimmed(
  z
    .string()
    .transform((raw) => raw.split(',').map((entry) => entry.trim()))
    .pipe(
      z.array(
        z.string().regex(CLIENT_ID, {
          error: (issue) =>
            `must list client ids of letters, digits and . _ ~ - (up to 64 each) ${got(issue.input)}`,
        }),
      ),
    ),
);

/** `id:secret` pairs, comma-separated; a secret holds no comma. */
export const resourceServers = (minSecretLength: number) =>
  trimmed(
    z
      .string()
      .transform((raw) => raw.split(',').map((entry) => entry.trim()))
      .pipe(
        z.array(
          z
            .string()
            .transform((entry) => {
              const colon = entry.indexOf(':');
              return colon < 0
                ? { id: entry, secret: '' }
                : { id: entry.slice(0, colon), secret: entry.slice(colon + 1) };
            })
            .refine(({ id }) => CLIENT_ID.test(id), {
              error: 'must list id:secret pairs whose id is letters, digits and . _ ~ - (up to 64)',
            })
            .refine(({ secret }) => secret.length >= minSecretLength, {
              error: `must give each id a secret of at least ${minSecretLength} characters (id:secret)`,
            }),
        ),
      )
      .refine((servers) => new Set(servers.map(({ id }) => id)).size === servers.length, {
        error: 'must not list an id twice',
      }),
  );
