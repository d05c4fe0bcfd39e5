import type { LogLevelName } from './variables.js';

export interface DatabaseConfig {
  url: string;
  /** True when the URL points at the embedded server this process started. */
  embedded: boolean;
  /** Most connections this instance's pool opens (the session feed holds one more). */
  poolSize: number;
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

/** DPoP (RFC 9449): proof-of-possession for sessions bound to a client's key. */
export interface DpopConfig {
  /** Every new session must be bound: a login or token request without a proof is refused. */
  required: boolean;
  /** Proofs must carry a server nonce (RFC 9449 §8, §9), handed out in `DPoP-Nonce`. */
  nonce: boolean;
  /** Seconds a proof is accepted after its `iat`; also a nonce's window. */
  proofMaxAge: number;
}

export interface AppConfig {
  nodeEnv: string;
  /** Where clients reach the service (scheme, host, port, no path): names the published metadata's URLs. */
  publicUrl: string;
  port: number;
  host: string;
  http: HttpConfig;
  oauth: OAuthConfig;
  dpop: DpopConfig;
  rateLimit: RateLimitConfig;
  database: DatabaseConfig;
  auth: AuthConfig;
  seedDemoUser: boolean;
  housekeeping: HousekeepingConfig;
  observability: ObservabilityConfig;
  /** Whether /docs (Swagger UI) and /docs-json (the OpenAPI document) are served. */
  docsEnabled: boolean;
  shutdown: ShutdownConfig;
}

/** What a stop signal (SIGTERM, SIGINT) sets going; see main.ts. */
export interface ShutdownConfig {
  /** Seconds the instance keeps serving, unready, so load balancers stop sending it requests first. */
  delay: number;
  /** Seconds in-flight requests may take to finish before their connections are closed. */
  drainTimeout: number;
}

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

/** Who may use the OAuth 2 endpoints (RFC 6749 §2). */
export interface OAuthConfig {
  /**
   * Public clients (RFC 6749 §2.1: no secret) allowed at the token endpoint,
   * by the `client_id` they send; any other id is `invalid_client`.
   */
  clients: string[];
  /**
   * Resource servers, which authenticate with `client_secret_basic` to
   * introspect tokens (RFC 7662) and to follow the revocation feed.
   */
  resourceServers: ResourceServerCredentials[];
}

export interface ResourceServerCredentials {
  id: string;
  secret: string;
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
