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

type Env = Record<string, string | undefined>;

function readDuration(
  env: Env,
  name: string,
  fallback: number,
  min: number,
  max = Number.POSITIVE_INFINITY,
): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const seconds = parseDurationSeconds(raw);
  if (seconds === undefined) {
    throw new ConfigError(name, `must be seconds or a duration like 15m, 7d (got "${raw}")`);
  }
  if (seconds < min) throw new ConfigError(name, `must be at least ${min} seconds`);
  if (seconds > max) throw new ConfigError(name, `must be at most ${max} seconds`);
  return seconds;
}

function readInt(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^\d+$/.test(raw)) throw new ConfigError(name, `must be an integer (got "${raw}")`);
  const value = Number(raw);
  if (value < min || value > max) {
    throw new ConfigError(name, `must be between ${min} and ${max} (got ${value})`);
  }
  return value;
}

// NIST SP 800-63B §5.2.2: no more than 100 consecutive failed attempts per account.
const NIST_MAX_FAILURES = 100;

function readAccountBackoff(env: Env): BackoffPolicy {
  if (env.RATE_LIMIT_PER_ACCOUNT_HOURLY !== undefined) {
    // Silently ignoring it would leave an operator believing in a limit that no longer exists.
    throw new ConfigError(
      'RATE_LIMIT_PER_ACCOUNT_HOURLY',
      'is no longer used: set RATE_LIMIT_FREE_FAILURES, RATE_LIMIT_FAILURE_DELAY, ' +
        'RATE_LIMIT_FAILURE_DELAY_MAX and RATE_LIMIT_MAX_FAILURES instead',
    );
  }
  const maxFailures = readInt(
    env,
    'RATE_LIMIT_MAX_FAILURES',
    NIST_MAX_FAILURES,
    1,
    NIST_MAX_FAILURES,
  );
  const freeFailures = readInt(env, 'RATE_LIMIT_FREE_FAILURES', 5, 0, NIST_MAX_FAILURES);
  if (freeFailures >= maxFailures) {
    throw new ConfigError(
      'RATE_LIMIT_FREE_FAILURES',
      `must be less than RATE_LIMIT_MAX_FAILURES (${maxFailures})`,
    );
  }
  // Up to an hour, as NIST SP 800-63B §5.2.2's example; well inside the day failures are remembered.
  const firstDelay = readDuration(env, 'RATE_LIMIT_FAILURE_DELAY', 1, 1);
  const maxDelay = readDuration(env, 'RATE_LIMIT_FAILURE_DELAY_MAX', 15 * 60, 1, 3600);
  if (firstDelay > maxDelay) {
    throw new ConfigError(
      'RATE_LIMIT_FAILURE_DELAY',
      'must not exceed RATE_LIMIT_FAILURE_DELAY_MAX',
    );
  }
  return { freeFailures, firstDelay, maxDelay, maxFailures };
}

function readBoolean(env: Env, name: string, fallback: boolean): boolean {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (raw === 'true' || raw === '1') return true;
  if (raw === 'false' || raw === '0') return false;
  throw new ConfigError(name, `must be true or false (got "${raw}")`);
}

function readDatabaseUrl(env: Env, runtime: RuntimeOverrides): DatabaseConfig {
  const raw = env.DATABASE_URL;
  if (raw) {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw new ConfigError('DATABASE_URL', 'is not a valid URL');
    }
    if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
      throw new ConfigError('DATABASE_URL', 'must be a postgres:// or postgresql:// URL');
    }
    return { url: raw, embedded: false };
  }
  if (runtime.embeddedDatabaseUrl) return { url: runtime.embeddedDatabaseUrl, embedded: true };
  throw new ConfigError('DATABASE_URL', 'is required when the embedded database is not started');
}

function readSecret(
  env: Env,
  name: string,
  generated: string | undefined,
  production: boolean,
): string {
  const raw = env[name];
  if (raw) {
    if (production && raw.length < MIN_PRODUCTION_SECRET_LENGTH) {
      throw new ConfigError(
        name,
        `must be at least ${MIN_PRODUCTION_SECRET_LENGTH} characters when NODE_ENV=production`,
      );
    }
    return raw;
  }
  if (!production && generated) return generated;
  throw new ConfigError(
    name,
    production
      ? 'is required when NODE_ENV=production (use 32+ random characters, e.g. `openssl rand -base64 48`)'
      : 'is required (outside production a generated one is kept under .data/)',
  );
}

/** `value` when it is exactly an http(s) origin (scheme://host[:port], nothing more). */
function httpOrigin(value: string): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return undefined;
  }
  const web = url.protocol === 'https:' || url.protocol === 'http:';
  return web && url.origin === value ? value : undefined;
}

function readPublicUrl(env: Env, port: number, production: boolean): string {
  const raw = env.PUBLIC_URL?.trim();
  if (!raw) {
    if (production) {
      throw new ConfigError(
        'PUBLIC_URL',
        'is required when NODE_ENV=production (the URL clients use, e.g. https://auth.example.com)',
      );
    }
    return `http://localhost:${port}`;
  }
  // No path, query or fragment: endpoints are appended to it (RFC 8414 §2 issuer).
  const origin = httpOrigin(raw.replace(/\/$/, ''));
  if (!origin) {
    throw new ConfigError(
      'PUBLIC_URL',
      `must be scheme://host[:port] without a path, like https://auth.example.com (got "${raw}")`,
    );
  }
  return origin;
}

function readTrustProxy(env: Env): false | number | string[] {
  const raw = env.TRUST_PROXY?.trim();
  if (!raw || raw === 'false') return false;
  if (/^\d+$/.test(raw)) return Number(raw);
  // "true" would believe any client's X-Forwarded-For, which defeats per-IP limits.
  if (raw === 'true') {
    throw new ConfigError(
      'TRUST_PROXY',
      'must name the proxies (addresses/CIDRs) or a hop count, not true',
    );
  }
  const entries = raw
    .split(',')
    .map((entry) => entry.trim())
    .filter(Boolean);
  if (!entries.every((entry) => /^[0-9a-fA-F:.]+(\/\d{1,3})?$/.test(entry))) {
    throw new ConfigError(
      'TRUST_PROXY',
      `must be addresses or CIDRs separated by commas (got "${raw}")`,
    );
  }
  return entries;
}

function readOrigins(env: Env): string[] {
  const raw = env.CORS_ORIGINS?.trim();
  if (!raw) return [];
  return raw.split(',').map((entry) => {
    const origin = entry.trim();
    // "*" is never allowed with credentials.
    if (!httpOrigin(origin)) {
      throw new ConfigError(
        'CORS_ORIGINS',
        `must list origins like https://app.example.com (got "${origin}")`,
      );
    }
    return origin;
  });
}

function readRedisUrl(env: Env): string | null {
  const raw = env.REDIS_URL?.trim();
  if (!raw) return null;
  try {
    const url = new URL(raw);
    if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') throw new Error('scheme');
  } catch {
    throw new ConfigError('REDIS_URL', 'must be a redis:// or rediss:// URL');
  }
  return raw;
}

function readLogLevel(env: Env): LogLevelName {
  const raw = env.LOG_LEVEL?.trim();
  if (!raw) return 'info';
  if (!(LOG_LEVELS as readonly string[]).includes(raw)) {
    throw new ConfigError('LOG_LEVEL', `must be one of ${LOG_LEVELS.join(', ')} (got "${raw}")`);
  }
  return raw as LogLevelName;
}

// Like the signing keys: a short bearer secret could be guessed by a scraper-shaped client.
const MIN_METRICS_TOKEN_LENGTH = 16;

/**
 * Metrics show traffic and security events (login failures, token reuse),
 * reconnaissance for an attacker (OWASP ASVS 14.3.2). Keeping /metrics off the
 * public ingress is a deployment promise this process cannot check, so in
 * production the endpoint always asks for a token; elsewhere it stays open
 * for local scraping.
 */
function readMetricsToken(env: Env, production: boolean): string | null {
  const raw = env.METRICS_TOKEN;
  if (!raw) {
    if (!production) return null;
    throw new ConfigError(
      'METRICS_TOKEN',
      `is required when NODE_ENV=production: GET /metrics shows traffic and security events (use ${MIN_METRICS_TOKEN_LENGTH}+ random characters and give the scraper the same bearer token)`,
    );
  }
  if (raw.length < MIN_METRICS_TOKEN_LENGTH) {
    throw new ConfigError(
      'METRICS_TOKEN',
      `must be at least ${MIN_METRICS_TOKEN_LENGTH} characters`,
    );
  }
  return raw;
}

// RFC 9700 §4.14.2: a refresh token whose successor was already used signals
// theft and ends the session. Two racing clients can present one just after
// that use, so for REFRESH_REUSE_GRACE it is refused without ending the
// session (rotation.rules.ts); it never gets a token, but a thief replaying
// within the window is not detected either. Those races last seconds; a
// minute covers a slow mobile retry. A tenth of REFRESH_TOKEN_TTL keeps
// detection over most of each token's life when lifetimes are short.
const MAX_REUSE_GRACE_SECONDS = 60;
const DEFAULT_REUSE_GRACE_SECONDS = 10;

function readReuseGrace(env: Env, refreshTokenTtl: number): number {
  const bound = Math.min(MAX_REUSE_GRACE_SECONDS, Math.floor(refreshTokenTtl / 10));
  const raw = env.REFRESH_REUSE_GRACE;
  // The default follows the bound down for very short refresh lifetimes.
  if (raw === undefined || raw === '') return Math.min(DEFAULT_REUSE_GRACE_SECONDS, bound);
  const grace = readDuration(env, 'REFRESH_REUSE_GRACE', DEFAULT_REUSE_GRACE_SECONDS, 0);
  if (grace > bound) {
    throw new ConfigError(
      'REFRESH_REUSE_GRACE',
      `must be at most ${bound} seconds (the lesser of ${MAX_REUSE_GRACE_SECONDS} s and a tenth of REFRESH_TOKEN_TTL): ` +
        `a used refresh token replayed within it is refused without revoking the session, so theft goes undetected (got ${grace})`,
    );
  }
  return grace;
}

/**
 * Validates the environment once, at boot, into a typed object. Every problem
 * is reported with the variable's name so the operator knows what to fix.
 */
export function buildConfig(env: Env, runtime: RuntimeOverrides = {}): AppConfig {
  const nodeEnv = env.NODE_ENV || 'development';
  const production = nodeEnv === 'production';
  const database = readDatabaseUrl(env, runtime);

  const refreshSecret = readSecret(
    env,
    'JWT_REFRESH_SECRET',
    runtime.generatedSecrets?.refreshSecret,
    production,
  );
  const signingKeysSecret = readSecret(
    env,
    'SIGNING_KEYS_SECRET',
    runtime.generatedSecrets?.signingKeysSecret,
    production,
  );
  if (signingKeysSecret === refreshSecret) {
    throw new ConfigError('SIGNING_KEYS_SECRET', 'must differ from JWT_REFRESH_SECRET');
  }
  const port = readInt(env, 'PORT', 8000, 0, 65535);
  const publicUrl = readPublicUrl(env, port, production);

  const accessTokenTtl = readDuration(env, 'ACCESS_TOKEN_TTL', 15 * 60, 1);
  const refreshTokenTtl = readDuration(env, 'REFRESH_TOKEN_TTL', 7 * 86400, 1);
  if (refreshTokenTtl < accessTokenTtl) {
    throw new ConfigError('REFRESH_TOKEN_TTL', 'must not be shorter than ACCESS_TOKEN_TTL');
  }

  const sessionMaxAge = readDuration(env, 'SESSION_MAX_AGE', 30 * 86400, 1);
  if (sessionMaxAge < accessTokenTtl) {
    throw new ConfigError('SESSION_MAX_AGE', 'must not be shorter than ACCESS_TOKEN_TTL');
  }
  const cookieSecure = readBoolean(env, 'COOKIE_SECURE', true);
  if (production && !cookieSecure) {
    throw new ConfigError('COOKIE_SECURE', 'cannot be false when NODE_ENV=production');
  }

  return {
    nodeEnv,
    publicUrl,
    port,
    // The embedded default is a developer's machine with a demo account whose
    // password is published: reachable from this machine only unless HOST
    // says otherwise. A real database means a deployment, which listens on
    // every interface (containers publish the port).
    host: env.HOST || (database.embedded ? '127.0.0.1' : '0.0.0.0'),
    http: { trustProxy: readTrustProxy(env), corsOrigins: readOrigins(env) },
    rateLimit: {
      window: readDuration(env, 'RATE_LIMIT_WINDOW', 60, 1),
      perIp: readInt(env, 'RATE_LIMIT_PER_IP', 20, 1, 1_000_000),
      refreshPerIp: readInt(env, 'RATE_LIMIT_REFRESH_PER_IP', 60, 1, 1_000_000),
      account: readAccountBackoff(env),
      redisUrl: readRedisUrl(env),
    },
    database,
    auth: {
      refreshSecret,
      signingKeysSecret,
      signingKeysReloadInterval: readDuration(env, 'SIGNING_KEYS_RELOAD_INTERVAL', 60, 1),
      // A hung feed is noticed within interval + timeout; until then another
      // instance's logout may not be seen here (see SessionRevocations).
      sessionFeedHeartbeatInterval: readDuration(env, 'SESSION_FEED_HEARTBEAT', 2, 1),
      sessionFeedHeartbeatTimeout: readDuration(env, 'SESSION_FEED_TIMEOUT', 3, 1),
      accessTokenTtl,
      revokeExpiredAccessGrace: readDuration(env, 'REVOKE_ACCESS_TOKEN_GRACE', 5 * 60, 0, 3600),
      refreshTokenTtl,
      refreshReuseGrace: readReuseGrace(env, refreshTokenTtl),
      sessionMaxAge,
      maxSessionsPerUser: readInt(env, 'MAX_SESSIONS_PER_USER', 20, 1, 1000),
      cookieSecure,
      bcryptCost: readInt(env, 'BCRYPT_COST', 12, 4, 31),
      // RFC 8414 §2: the issuer is the service's URL; the metadata and every
      // token's `iss` name the same one, which is how a verifier finds the JWKS.
      issuer: env.JWT_ISSUER || publicUrl,
      audience: env.JWT_AUDIENCE || 'lineage-api',
    },
    // The demo account exists only on the embedded development default,
    // never in production or against a real server unless explicitly requested.
    seedDemoUser: readBoolean(env, 'SEED_DEMO_USER', database.embedded && !production),
    housekeeping: {
      interval: readDuration(env, 'HOUSEKEEPING_INTERVAL', 3600, 1),
      sessionRetention: readDuration(env, 'SESSION_RETENTION', 7 * 86400, 0),
      eventRetention: readDuration(env, 'EVENT_RETENTION', 90 * 86400, 0),
    },
    observability: { logLevel: readLogLevel(env), metricsToken: readMetricsToken(env, production) },
  };
}
