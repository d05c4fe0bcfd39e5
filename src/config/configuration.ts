import { z } from 'zod';
import { parseDurationSeconds } from './duration.js';

export interface DatabaseConfig {
  url: string;
  /** True when the URL points at the embedded server this process started. */
  embedded: boolean;
}

export interface AuthConfig {
  /** HMAC key of refresh tokens, which only this service ever verifies. */
  refreshSecret: string;
  /** Encrypts the access-token signing keys' private halves in PostgreSQL. */
  signingKeysSecret: string;
  /** Seconds between reloads of the signing keys (rotation reaches every instance within it). */
  signingKeysReloadInterval: number;
  /** Seconds between heartbeats on the session feed's LISTEN connection. */
  sessionFeedHeartbeatInterval: number;
  /** Seconds a heartbeat may go unanswered before that connection counts as lost. */
  sessionFeedHeartbeatTimeout: number;
  accessTokenTtl: number;
  /** Seconds after its expiry that POST /auth/revoke still takes an access token (0: never). */
  revokeExpiredAccessGrace: number;
  refreshTokenTtl: number;
  refreshReuseGrace: number;
  /** Absolute session lifetime: rotation never extends a session past it. */
  sessionMaxAge: number;
  maxSessionsPerUser: number;
  /**
   * `Secure` and the `__Host-` prefix on the refresh-token cookie; only plain-http
   * development on a host browsers do not treat as secure turns it off.
   */
  cookieSecure: boolean;
  bcryptCost: number;
  issuer: string;
  audience: string;
}

export interface AppConfig {
  nodeEnv: string;
  /** Where clients reach the service (scheme, host, port, no path): names the published metadata's URLs. */
  publicUrl: string;
  port: number;
  host: string;
  http: HttpConfig;
  rateLimit: RateLimitConfig;
  database: DatabaseConfig;
  auth: AuthConfig;
  seedDemoUser: boolean;
  housekeeping: HousekeepingConfig;
  observability: ObservabilityConfig;
}

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevelName = (typeof LOG_LEVELS)[number];

export interface ObservabilityConfig {
  /** pino level of the JSON logs; `info` logs one line per request. */
  logLevel: LogLevelName;
  /** When set, GET /metrics requires `Authorization: Bearer <metricsToken>`. */
  metricsToken: string | null;
}

export interface HttpConfig {
  /**
   * Which proxies' X-Forwarded-For is believed: false (none, the default), a
   * hop count, or a list of addresses/CIDRs. Decides the client IP that rate
   * limits and the audit trail see.
   */
  trustProxy: false | number | string[];
  /** Origins allowed by CORS; empty means CORS stays off. */
  corsOrigins: string[];
}

export interface RateLimitConfig {
  /** Window for the per-IP limits, in seconds. */
  window: number;
  /** Requests per IP per window on register, login, revoke, password change and account deletion. */
  perIp: number;
  /** Refreshes per IP per window (clients refresh more often than they log in). */
  refreshPerIp: number;
  /**
   * Consecutive wrong passwords per account, whatever the IP: per username on
   * login, per user on password change and deletion (NIST SP 800-63B §5.2.2).
   */
  account: BackoffPolicy;
  /** Counters in Redis (shared by all instances) when set; in memory otherwise. */
  redisUrl: string | null;
}

/** How consecutive failed password checks on one account slow it down (see BackoffSchedule). */
export interface BackoffPolicy {
  /** Consecutive failures that cost nothing (typos, a forgotten caps lock). */
  freeFailures: number;
  /** Seconds to wait after the first failure past the free ones; each further one doubles it. */
  firstDelay: number;
  /** The most a single wait grows to, in seconds. */
  maxDelay: number;
  /** After this many consecutive failures the account takes no attempt until they are forgotten. */
  maxFailures: number;
}

export interface HousekeepingConfig {
  /** Seconds between runs of the cleanup job. */
  interval: number;
  /** How long expired or revoked sessions and their tokens are kept (seconds). */
  sessionRetention: number;
  /** How long audit events are kept (seconds). */
  eventRetention: number;
}

/** Thrown at boot when the environment is unusable; the message names the variable. */
export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    problem: string,
  ) {
    super(`Invalid configuration: ${variable} ${problem}`);
    this.name = 'ConfigError';
  }
}

/** What the process itself supplies when it runs the embedded database. */
export interface RuntimeOverrides {
  embeddedDatabaseUrl?: string;
  generatedSecrets?: { refreshSecret: string; signingKeysSecret: string };
}

// A 256-bit key is what RFC 7518 §3.2 requires for HS256 (and what AES-256
// uses); 32 characters of base64/hex-ish text is the minimum we accept as
// "strong" in production.
const MIN_PRODUCTION_SECRET_LENGTH = 32;

// NIST SP 800-63B §5.2.2: no more than 100 consecutive failed attempts per account.
const NIST_MAX_FAILURES = 100;

// Like the signing keys: a short bearer secret could be guessed by a scraper-shaped client.
const MIN_METRICS_TOKEN_LENGTH = 16;

// RFC 9700 §4.14.2: a refresh token whose successor was already used signals
// theft and ends the session. Two racing clients can present one just after
// that use, so for REFRESH_REUSE_GRACE it is refused without ending the
// session (rotation.rules.ts); it never gets a token, but a thief replaying
// within the window is not detected either. Those races last seconds; a
// minute covers a slow mobile retry. A tenth of REFRESH_TOKEN_TTL keeps
// detection over most of each token's life when lifetimes are short.
const MAX_REUSE_GRACE_SECONDS = 60;
const DEFAULT_REUSE_GRACE_SECONDS = 10;

const reuseGraceBound = (refreshTokenTtl: number) =>
  Math.min(MAX_REUSE_GRACE_SECONDS, Math.floor(refreshTokenTtl / 10));

type Env = Record<string, string | undefined>;

// ---- What one variable may hold ------------------------------------------
// Unset and empty (`VAR=`) both mean "not given"; `trimmed` variables also
// ignore surrounding blanks. Every message completes "Invalid configuration: VAR ...".

const given = <T extends z.ZodType>(schema: T) =>
  z.preprocess((value) => (value === '' ? undefined : value), schema.optional());

const trimmed = <T extends z.ZodType>(schema: T) =>
  z.preprocess(
    (value) => (typeof value === 'string' ? value.trim() || undefined : value),
    schema.optional(),
  );

/** What the operator wrote, quoted, for a message. */
const got = (input: unknown) => `(got "${String(input)}")`;

/** A whole number from min to max. */
const integer = (min: number, max: number) =>
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
const seconds = (min: number, max = Number.POSITIVE_INFINITY) =>
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
const flag = given(
  z.stringbool({
    truthy: ['true', '1'],
    falsy: ['false', '0'],
    case: 'sensitive',
    error: (issue) => `must be true or false ${got(issue.input)}`,
  }),
);

/** A URL, as `new URL` (and so the driver) parses it, with one of these schemes. */
const url = (schemes: string[], wrongScheme: string, unparsable = wrongScheme) =>
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
const publicUrl = trimmed(
  z
    .string()
    .refine((raw) => isHttpOrigin(withoutTrailingSlash(raw)), {
      error: (issue) =>
        `must be scheme://host[:port] without a path, like https://auth.example.com ${got(issue.input)}`,
    })
    .transform(withoutTrailingSlash),
);

/** Whose X-Forwarded-For is believed: "false", a hop count, or addresses/CIDRs. */
const trustProxy = trimmed(
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
const corsOrigins = trimmed(
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

// ---- Every variable --------------------------------------------------------

const environment = z.object({
  NODE_ENV: given(z.string()).default('development'),
  DATABASE_URL: given(
    url(
      ['postgres:', 'postgresql:'],
      'must be a postgres:// or postgresql:// URL',
      'is not a valid URL',
    ),
  ),
  JWT_REFRESH_SECRET: given(z.string()),
  SIGNING_KEYS_SECRET: given(z.string()),
  PORT: integer(0, 65535).default(8000),
  PUBLIC_URL: publicUrl,
  HOST: given(z.string()),
  TRUST_PROXY: trustProxy.default(false),
  CORS_ORIGINS: corsOrigins.default(() => []),

  ACCESS_TOKEN_TTL: seconds(1).default(15 * 60),
  REFRESH_TOKEN_TTL: seconds(1).default(7 * 86400),
  REFRESH_REUSE_GRACE: seconds(0),
  REVOKE_ACCESS_TOKEN_GRACE: seconds(0, 3600).default(5 * 60),
  SESSION_MAX_AGE: seconds(1).default(30 * 86400),
  MAX_SESSIONS_PER_USER: integer(1, 1000).default(20),
  COOKIE_SECURE: flag.default(true),
  SIGNING_KEYS_RELOAD_INTERVAL: seconds(1).default(60),
  // A hung feed is noticed within interval + timeout; until then another
  // instance's logout may not be seen here (see SessionRevocations).
  SESSION_FEED_HEARTBEAT: seconds(1).default(2),
  SESSION_FEED_TIMEOUT: seconds(1).default(3),
  BCRYPT_COST: integer(4, 31).default(12),
  JWT_ISSUER: given(z.string()),
  JWT_AUDIENCE: given(z.string()).default('lineage-api'),

  RATE_LIMIT_WINDOW: seconds(1).default(60),
  RATE_LIMIT_PER_IP: integer(1, 1_000_000).default(20),
  RATE_LIMIT_REFRESH_PER_IP: integer(1, 1_000_000).default(60),
  // Silently ignoring it would leave an operator believing in a limit that no longer exists.
  RATE_LIMIT_PER_ACCOUNT_HOURLY: z
    .never({
      error:
        'is no longer used: set RATE_LIMIT_FREE_FAILURES, RATE_LIMIT_FAILURE_DELAY, ' +
        'RATE_LIMIT_FAILURE_DELAY_MAX and RATE_LIMIT_MAX_FAILURES instead',
    })
    .optional(),
  RATE_LIMIT_MAX_FAILURES: integer(1, NIST_MAX_FAILURES).default(NIST_MAX_FAILURES),
  RATE_LIMIT_FREE_FAILURES: integer(0, NIST_MAX_FAILURES).default(5),
  // Up to an hour, as NIST SP 800-63B §5.2.2's example; well inside the day failures are remembered.
  RATE_LIMIT_FAILURE_DELAY: seconds(1).default(1),
  RATE_LIMIT_FAILURE_DELAY_MAX: seconds(1, 3600).default(15 * 60),
  REDIS_URL: trimmed(url(['redis:', 'rediss:'], 'must be a redis:// or rediss:// URL')),

  SEED_DEMO_USER: flag,
  HOUSEKEEPING_INTERVAL: seconds(1).default(3600),
  SESSION_RETENTION: seconds(0).default(7 * 86400),
  EVENT_RETENTION: seconds(0).default(90 * 86400),
  LOG_LEVEL: trimmed(
    z.enum(LOG_LEVELS, {
      error: (issue) => `must be one of ${LOG_LEVELS.join(', ')} ${got(issue.input)}`,
    }),
  ).default('info'),
  METRICS_TOKEN: given(
    z
      .string()
      .min(MIN_METRICS_TOKEN_LENGTH, `must be at least ${MIN_METRICS_TOKEN_LENGTH} characters`),
  ),
});

type Environment = z.output<typeof environment>;

// ---- The typed object, and the rules between variables ---------------------

/**
 * Maps the variables onto the AppConfig every module reads. DATABASE_URL and
 * the two secrets may come from the process instead: the embedded server it
 * started and, outside production, secrets generated once and kept under
 * .data/ (secrets.ts).
 */
function toAppConfig(env: Environment, runtime: RuntimeOverrides, ctx: z.RefinementCtx): AppConfig {
  const production = env.NODE_ENV === 'production';
  const generated = production ? undefined : runtime.generatedSecrets;
  const required = (variable: keyof Environment, value: string | undefined, problem: string) => {
    if (value) return value;
    ctx.addIssue({ code: 'custom', path: [variable], message: problem });
    return z.NEVER;
  };
  /** Outside production a generated one stands in for a secret left unset. */
  const secret = (variable: `${string}_SECRET` & keyof Environment, generatedValue?: string) =>
    required(
      variable,
      env[variable] ?? generatedValue,
      production
        ? 'is required when NODE_ENV=production (use 32+ random characters, e.g. `openssl rand -base64 48`)'
        : 'is required (outside production a generated one is kept under .data/)',
    );
  const embedded = env.DATABASE_URL === undefined;
  const databaseUrl = required(
    'DATABASE_URL',
    env.DATABASE_URL ?? runtime.embeddedDatabaseUrl,
    'is required when the embedded database is not started',
  );
  const refreshSecret = secret('JWT_REFRESH_SECRET', generated?.refreshSecret);
  const signingKeysSecret = secret('SIGNING_KEYS_SECRET', generated?.signingKeysSecret);
  const publicUrl = required(
    'PUBLIC_URL',
    env.PUBLIC_URL ?? (production ? undefined : `http://localhost:${env.PORT}`),
    'is required when NODE_ENV=production (the URL clients use, e.g. https://auth.example.com)',
  );
  return {
    nodeEnv: env.NODE_ENV,
    publicUrl,
    port: env.PORT,
    // The embedded default is a developer's machine with a demo account whose
    // password is published: reachable from this machine only unless HOST
    // says otherwise. A real database means a deployment, which listens on
    // every interface (containers publish the port).
    host: env.HOST ?? (embedded ? '127.0.0.1' : '0.0.0.0'),
    http: { trustProxy: env.TRUST_PROXY, corsOrigins: env.CORS_ORIGINS },
    rateLimit: {
      window: env.RATE_LIMIT_WINDOW,
      perIp: env.RATE_LIMIT_PER_IP,
      refreshPerIp: env.RATE_LIMIT_REFRESH_PER_IP,
      account: {
        freeFailures: env.RATE_LIMIT_FREE_FAILURES,
        firstDelay: env.RATE_LIMIT_FAILURE_DELAY,
        maxDelay: env.RATE_LIMIT_FAILURE_DELAY_MAX,
        maxFailures: env.RATE_LIMIT_MAX_FAILURES,
      },
      redisUrl: env.REDIS_URL ?? null,
    },
    database: { url: databaseUrl, embedded },
    auth: {
      refreshSecret,
      signingKeysSecret,
      signingKeysReloadInterval: env.SIGNING_KEYS_RELOAD_INTERVAL,
      sessionFeedHeartbeatInterval: env.SESSION_FEED_HEARTBEAT,
      sessionFeedHeartbeatTimeout: env.SESSION_FEED_TIMEOUT,
      accessTokenTtl: env.ACCESS_TOKEN_TTL,
      revokeExpiredAccessGrace: env.REVOKE_ACCESS_TOKEN_GRACE,
      refreshTokenTtl: env.REFRESH_TOKEN_TTL,
      // The default follows the bound down for very short refresh lifetimes.
      refreshReuseGrace:
        env.REFRESH_REUSE_GRACE ??
        Math.min(DEFAULT_REUSE_GRACE_SECONDS, reuseGraceBound(env.REFRESH_TOKEN_TTL)),
      sessionMaxAge: env.SESSION_MAX_AGE,
      maxSessionsPerUser: env.MAX_SESSIONS_PER_USER,
      cookieSecure: env.COOKIE_SECURE,
      bcryptCost: env.BCRYPT_COST,
      // RFC 8414 §2: the issuer is the service's URL; the metadata and every
      // token's `iss` name the same one, which is how a verifier finds the JWKS.
      issuer: env.JWT_ISSUER ?? publicUrl,
      audience: env.JWT_AUDIENCE,
    },
    // The demo account exists only on the embedded development default,
    // never in production or against a real server unless explicitly requested.
    seedDemoUser: env.SEED_DEMO_USER ?? (embedded && !production),
    housekeeping: {
      interval: env.HOUSEKEEPING_INTERVAL,
      sessionRetention: env.SESSION_RETENTION,
      eventRetention: env.EVENT_RETENTION,
    },
    observability: { logLevel: env.LOG_LEVEL, metricsToken: env.METRICS_TOKEN ?? null },
  };
}

/**
 * Metrics show traffic and security events (login failures, token reuse),
 * reconnaissance for an attacker (OWASP ASVS 14.3.2). Keeping /metrics off the
 * public ingress is a deployment promise this process cannot check, so in
 * production the endpoint always asks for a token; elsewhere it stays open
 * for local scraping.
 */
const METRICS_TOKEN_REQUIRED =
  'is required when NODE_ENV=production: GET /metrics shows traffic and security events ' +
  `(use ${MIN_METRICS_TOKEN_LENGTH}+ random characters and give the scraper the same bearer token)`;

/** Rules between variables, checked on the assembled config; each names the variable to fix. */
function rules({ nodeEnv, auth, rateLimit, observability }: AppConfig, ctx: z.RefinementCtx) {
  const refuse = (variable: keyof Environment, problem: string) =>
    ctx.addIssue({ code: 'custom', path: [variable], message: problem });
  const production = nodeEnv === 'production';
  const secrets = [
    ['JWT_REFRESH_SECRET', auth.refreshSecret],
    ['SIGNING_KEYS_SECRET', auth.signingKeysSecret],
  ] as const;
  for (const [variable, secret] of secrets) {
    if (production && secret.length < MIN_PRODUCTION_SECRET_LENGTH) {
      refuse(
        variable,
        `must be at least ${MIN_PRODUCTION_SECRET_LENGTH} characters when NODE_ENV=production`,
      );
    }
  }
  if (auth.signingKeysSecret === auth.refreshSecret) {
    refuse('SIGNING_KEYS_SECRET', 'must differ from JWT_REFRESH_SECRET');
  }
  if (auth.refreshTokenTtl < auth.accessTokenTtl) {
    refuse('REFRESH_TOKEN_TTL', 'must not be shorter than ACCESS_TOKEN_TTL');
  }
  if (auth.sessionMaxAge < auth.accessTokenTtl) {
    refuse('SESSION_MAX_AGE', 'must not be shorter than ACCESS_TOKEN_TTL');
  }
  if (production && !auth.cookieSecure) {
    refuse('COOKIE_SECURE', 'cannot be false when NODE_ENV=production');
  }
  const { freeFailures, maxFailures, firstDelay, maxDelay } = rateLimit.account;
  if (freeFailures >= maxFailures) {
    refuse(
      'RATE_LIMIT_FREE_FAILURES',
      `must be less than RATE_LIMIT_MAX_FAILURES (${maxFailures})`,
    );
  }
  if (firstDelay > maxDelay) {
    refuse('RATE_LIMIT_FAILURE_DELAY', 'must not exceed RATE_LIMIT_FAILURE_DELAY_MAX');
  }
  const bound = reuseGraceBound(auth.refreshTokenTtl);
  if (auth.refreshReuseGrace > bound) {
    refuse(
      'REFRESH_REUSE_GRACE',
      `must be at most ${bound} seconds (the lesser of ${MAX_REUSE_GRACE_SECONDS} s and a tenth of REFRESH_TOKEN_TTL): ` +
        `a used refresh token replayed within it is refused without revoking the session, so theft goes undetected (got ${auth.refreshReuseGrace})`,
    );
  }
  if (production && observability.metricsToken === null) {
    refuse('METRICS_TOKEN', METRICS_TOKEN_REQUIRED);
  }
}

/**
 * Validates the environment once, at boot, into a typed object. Each problem
 * is reported with the variable's name so the operator knows what to fix; the
 * first one found, each variable on its own before the rules between them.
 */
export function buildConfig(env: Env, runtime: RuntimeOverrides = {}): AppConfig {
  const result = environment
    .transform((parsed, ctx) => toAppConfig(parsed, runtime, ctx))
    .superRefine(rules)
    .safeParse(env);
  if (result.success) return result.data;
  const [{ path, message }] = result.error.issues;
  throw new ConfigError(String(path[0]), message);
}
