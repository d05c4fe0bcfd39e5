import { z } from 'zod';
import { type AppConfig, ConfigError, type RuntimeOverrides } from './configuration.js';
import {
  clientIds,
  corsOrigins,
  LOG_LEVELS,
  flag,
  given,
  got,
  integer,
  publicUrl,
  resourceServers,
  seconds,
  trimmed,
  trustProxy,
  url,
} from './variables.js';

// A 256-bit key is what RFC 7518 §3.2 requires for HS256 (and what AES-256
// uses); 32 characters of base64/hex-ish text is the minimum we accept as
// "strong" in production.
const MIN_PRODUCTION_SECRET_LENGTH = 32;

// NIST SP 800-63B §5.2.2: no more than 100 consecutive failed attempts per account.
const NIST_MAX_FAILURES = 100;

// Like the signing keys: a short bearer secret could be guessed by a scraper-shaped client.
const MIN_METRICS_TOKEN_LENGTH = 16;

// A resource server's secret guards introspection and the revocation feed,
// which name sessions and users: as strong as the service's own secrets.
const MIN_RESOURCE_SERVER_SECRET_LENGTH = 32;

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

// PostgreSQL's default max_connections is 100; a pool far beyond that is a typo.
const MAX_POOL_SIZE = 1000;

// ---- Every variable --------------------------------------------------------

const current = {
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
  // The Swagger UI page's Authorize dialog logs in as `swagger-ui`.
  OAUTH_CLIENTS: clientIds.default(() => ['swagger-ui']),
  RESOURCE_SERVERS: resourceServers(MIN_RESOURCE_SERVER_SECRET_LENGTH).default(() => []),

  DPOP_REQUIRED: flag.default(false),
  DPOP_NONCE: flag.default(false),
  // RFC 9449 §11.1: a short window bounds both a pre-made proof's use and the replay cache.
  DPOP_PROOF_MAX_AGE: seconds(5, 300).default(60),

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
  // Unset: served outside production only (the document maps every route for a visitor).
  DOCS_ENABLED: flag,

  // Connections of this instance's pool; the session feed holds one more of its own.
  // At least two: at start the migration lock holds one while the migrations use another.
  DATABASE_POOL_SIZE: integer(2, MAX_POOL_SIZE).default(10),
  // Seconds the instance keeps serving after a stop signal, already unready,
  // while load balancers notice; then the drain.
  SHUTDOWN_DELAY: seconds(0, 600).default(0),
  // How long in-flight requests may take to finish before their connections are closed.
  SHUTDOWN_DRAIN_TIMEOUT: seconds(1, 600).default(10),

  // Read by main.ts and the keys CLI before the rest: where the embedded
  // database and the generated development secrets live.
  LINEAGE_DATA_DIR: given(z.string()),
};

/**
 * Variables that no longer configure anything. Silently ignoring one would
 * leave an operator believing in a setting that no longer exists: each is
 * refused at boot with what replaced it, except JWT_ACCESS_SECRET, which
 * main.ts only warns about (ignoring it is harmless).
 */
const retired = {
  RATE_LIMIT_PER_ACCOUNT_HOURLY: z
    .never({
      error:
        'is no longer used: set RATE_LIMIT_FREE_FAILURES, RATE_LIMIT_FAILURE_DELAY, ' +
        'RATE_LIMIT_FAILURE_DELAY_MAX and RATE_LIMIT_MAX_FAILURES instead',
    })
    .optional(),
};

/** Every variable the process reads to configure itself (.env.example lists exactly these). */
export const ENVIRONMENT_VARIABLES: readonly string[] = Object.keys(current);

/** Names the process still recognises only to refuse or warn about them. */
export const RETIRED_VARIABLES: readonly string[] = [...Object.keys(retired), 'JWT_ACCESS_SECRET'];

const environment = z.object({ ...current, ...retired });

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
    oauth: { clients: env.OAUTH_CLIENTS, resourceServers: env.RESOURCE_SERVERS },
    dpop: {
      required: env.DPOP_REQUIRED,
      nonce: env.DPOP_NONCE,
      proofMaxAge: env.DPOP_PROOF_MAX_AGE,
    },
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
    database: { url: databaseUrl, embedded, poolSize: env.DATABASE_POOL_SIZE },
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
    // The OpenAPI document and Swagger UI describe every route and parameter:
    // useful to developers, reconnaissance elsewhere (OWASP ASVS 14.3.2), so
    // production serves them only when asked to.
    docsEnabled: env.DOCS_ENABLED ?? !production,
    shutdown: { delay: env.SHUTDOWN_DELAY, drainTimeout: env.SHUTDOWN_DRAIN_TIMEOUT },
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
function rules(
  { nodeEnv, auth, rateLimit, observability, seedDemoUser }: AppConfig,
  ctx: z.RefinementCtx,
) {
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
  // Its password is published: in production it would be an account anyone can log in to.
  if (production && seedDemoUser) {
    refuse(
      'SEED_DEMO_USER',
      'cannot be true when NODE_ENV=production: the demo account has a published password',
    );
  }
}

/**
 * Validates the environment once, at boot, into a typed object. Each problem
 * is reported with the variable's name so the operator knows what to fix; the
 * first one found, each variable on its own before the rules between them.
 */
export function buildConfig(
  env: Record<string, string | undefined>,
  runtime: RuntimeOverrides = {},
): AppConfig {
  const result = environment
    .transform((parsed, ctx) => toAppConfig(parsed, runtime, ctx))
    .superRefine(rules)
    .safeParse(env);
  if (result.success) return result.data;
  const [{ path, message }] = result.error.issues;
  throw new ConfigError(String(path[0]), message);
}
