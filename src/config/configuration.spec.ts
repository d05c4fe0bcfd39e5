import { parse } from 'pg-connection-string';
import { ConfigError } from './configuration.js';
import { buildConfig } from './environment.js';

const strong = {
  SIGNING_KEYS_SECRET: 'a'.repeat(40),
  JWT_REFRESH_SECRET: 'b'.repeat(40),
};
const base = { DATABASE_URL: 'postgres://u@localhost:5432/db', ...strong };

function errorOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('buildConfig', () => {
  it('applies the documented defaults', () => {
    const config = buildConfig(base);
    expect(config.port).toBe(8000);
    expect(config.auth.accessTokenTtl).toBe(900);
    expect(config.auth.refreshTokenTtl).toBe(7 * 86400);
    expect(config.auth.refreshReuseGrace).toBe(10);
    expect(config.auth.bcryptCost).toBe(12);
    expect(config.database).toEqual({ url: base.DATABASE_URL, embedded: false, poolSize: 10 });
    expect(config.seedDemoUser).toBe(false);
    expect(config.shutdown).toEqual({ delay: 0, drainTimeout: 10 });
    expect(config.docsEnabled).toBe(true);
  });

  it('accepts lifetimes as seconds or with units', () => {
    const config = buildConfig({
      ...base,
      ACCESS_TOKEN_TTL: '5m',
      REFRESH_TOKEN_TTL: '30d',
      REFRESH_REUSE_GRACE: '0',
      PORT: '9000',
      BCRYPT_COST: '4',
    });
    expect(config.auth).toMatchObject({
      accessTokenTtl: 300,
      refreshTokenTtl: 30 * 86400,
      refreshReuseGrace: 0,
      bcryptCost: 4,
    });
    expect(config.port).toBe(9000);
  });

  it.each([
    ['ACCESS_TOKEN_TTL', 'soon'],
    ['ACCESS_TOKEN_TTL', '0'],
    ['REFRESH_REUSE_GRACE', '-1'],
    ['BCRYPT_COST', '3'],
    ['BCRYPT_COST', 'twelve'],
    ['PORT', '70000'],
    ['SEED_DEMO_USER', 'yes'],
    ['DATABASE_URL', 'mysql://localhost/db'],
    ['DATABASE_URL', 'not a url'],
  ])('names %s when it is %p', (variable, value) => {
    expect(errorOf(() => buildConfig({ ...base, [variable]: value })).variable).toBe(variable);
  });

  it.each([
    [
      { ACCESS_TOKEN_TTL: 'abc' },
      'ACCESS_TOKEN_TTL must be seconds or a duration like 15m, 7d (got "abc")',
    ],
    [{ ACCESS_TOKEN_TTL: '0' }, 'ACCESS_TOKEN_TTL must be at least 1 seconds'],
    [{ REVOKE_ACCESS_TOKEN_GRACE: '2h' }, 'REVOKE_ACCESS_TOKEN_GRACE must be at most 3600 seconds'],
    [{ PORT: '80.5' }, 'PORT must be an integer (got "80.5")'],
    [{ PORT: '70000' }, 'PORT must be between 0 and 65535 (got 70000)'],
    [{ COOKIE_SECURE: 'TRUE' }, 'COOKIE_SECURE must be true or false (got "TRUE")'],
    [{ DATABASE_URL: 'not a url' }, 'DATABASE_URL is not a valid URL'],
    [{ DATABASE_URL: 'mysql://h/db' }, 'DATABASE_URL must be a postgres:// or postgresql:// URL'],
    [{ REDIS_URL: 'http://h' }, 'REDIS_URL must be a redis:// or rediss:// URL'],
    [
      { LOG_LEVEL: 'loud' },
      'LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent (got "loud")',
    ],
    [
      { TRUST_PROXY: 'proxy' },
      'TRUST_PROXY must be addresses or CIDRs separated by commas (got "proxy")',
    ],
    [
      { CORS_ORIGINS: 'https://a.example, *' },
      'CORS_ORIGINS must list origins like https://app.example.com (got "*")',
    ],
    [{ METRICS_TOKEN: 'short' }, 'METRICS_TOKEN must be at least 16 characters'],
    [
      { OAUTH_CLIENTS: 'web, my app' },
      'OAUTH_CLIENTS must list client ids of letters, digits and . _ ~ - (up to 64 each) (got "my app")',
    ],
    [
      { RESOURCE_SERVERS: 'billing:short' },
      'RESOURCE_SERVERS must give each id a secret of at least 32 characters (id:secret)',
    ],
    [
      { RESOURCE_SERVERS: `billing:${'s'.repeat(32)},billing:${'t'.repeat(32)}` },
      'RESOURCE_SERVERS must not list an id twice',
    ],
    [
      { RATE_LIMIT_FAILURE_DELAY: '20m' },
      'RATE_LIMIT_FAILURE_DELAY must not exceed RATE_LIMIT_FAILURE_DELAY_MAX',
    ],
  ])('words the refusal of %o for the operator', (env, message) => {
    expect(errorOf(() => buildConfig({ ...base, ...env })).message).toBe(
      `Invalid configuration: ${message}`,
    );
  });

  it('takes an empty variable as unset, and ignores blanks around lists and URLs', () => {
    const config = buildConfig({
      ...base,
      PORT: '',
      ACCESS_TOKEN_TTL: '',
      COOKIE_SECURE: '',
      LOG_LEVEL: ' ',
      TRUST_PROXY: ' 10.0.0.0/8, ::1 ',
      CORS_ORIGINS: ' https://a.example, http://b.example:3000 ',
      REDIS_URL: ' rediss://cache:6380 ',
    });
    expect(config).toMatchObject({
      port: 8000,
      auth: { accessTokenTtl: 900, cookieSecure: true },
      observability: { logLevel: 'info' },
      http: {
        trustProxy: ['10.0.0.0/8', '::1'],
        corsOrigins: ['https://a.example', 'http://b.example:3000'],
      },
      rateLimit: { redisUrl: 'rediss://cache:6380' },
    });
    expect(buildConfig({ ...base, TRUST_PROXY: '2' }).http.trustProxy).toBe(2);
    expect(buildConfig({ ...base, TRUST_PROXY: 'false' }).http.trustProxy).toBe(false);
  });

  it('reads the OAuth clients and resource servers; Swagger UI is the one default client', () => {
    expect(buildConfig(base).oauth).toEqual({ clients: ['swagger-ui'], resourceServers: [] });
    const secret = 'a:b'.repeat(11);
    expect(
      buildConfig({
        ...base,
        OAUTH_CLIENTS: ' web-app , cli ',
        RESOURCE_SERVERS: `billing:${secret}, gateway:${'g'.repeat(40)}`,
      }).oauth,
    ).toEqual({
      clients: ['web-app', 'cli'],
      // Only the first colon separates: the secret keeps its own.
      resourceServers: [
        { id: 'billing', secret },
        { id: 'gateway', secret: 'g'.repeat(40) },
      ],
    });
  });

  it('applies the session and housekeeping defaults', () => {
    const config = buildConfig(base);
    expect(config.auth).toMatchObject({
      sessionMaxAge: 30 * 86400,
      maxSessionsPerUser: 20,
      cookieSecure: true,
    });
    expect(config.housekeeping).toEqual({
      interval: 3600,
      sessionRetention: 7 * 86400,
      eventRetention: 90 * 86400,
    });
  });

  it('reads the session feed heartbeat, 2 s apart and answered within 3 s by default', () => {
    expect(buildConfig(base).auth).toMatchObject({
      sessionFeedHeartbeatInterval: 2,
      sessionFeedHeartbeatTimeout: 3,
    });
    const config = buildConfig({
      ...base,
      SESSION_FEED_HEARTBEAT: '10s',
      SESSION_FEED_TIMEOUT: '1',
    });
    expect(config.auth).toMatchObject({
      sessionFeedHeartbeatInterval: 10,
      sessionFeedHeartbeatTimeout: 1,
    });
  });

  it('reads the session and housekeeping settings', () => {
    const config = buildConfig({
      ...base,
      SESSION_MAX_AGE: '12h',
      MAX_SESSIONS_PER_USER: '3',
      COOKIE_SECURE: 'false',
      HOUSEKEEPING_INTERVAL: '5m',
      SESSION_RETENTION: '0',
      EVENT_RETENTION: '30d',
    });
    expect(config.auth).toMatchObject({
      sessionMaxAge: 43200,
      maxSessionsPerUser: 3,
      cookieSecure: false,
    });
    expect(config.housekeeping).toEqual({
      interval: 300,
      sessionRetention: 0,
      eventRetention: 30 * 86400,
    });
  });

  it.each([
    ['SESSION_MAX_AGE', '1'],
    ['MAX_SESSIONS_PER_USER', '0'],
    ['MAX_SESSIONS_PER_USER', 'many'],
    ['COOKIE_SECURE', 'maybe'],
    ['HOUSEKEEPING_INTERVAL', '0'],
    ['EVENT_RETENTION', '-1'],
    ['SESSION_FEED_HEARTBEAT', '0'],
    ['SESSION_FEED_TIMEOUT', '0'],
    ['SESSION_FEED_TIMEOUT', '500ms'],
  ])('refuses %s=%s, naming it', (variable, value) => {
    expect(errorOf(() => buildConfig({ ...base, [variable]: value })).variable).toBe(variable);
  });

  it('refuses a refresh lifetime shorter than the access lifetime', () => {
    const error = errorOf(() =>
      buildConfig({ ...base, ACCESS_TOKEN_TTL: '1h', REFRESH_TOKEN_TTL: '10m' }),
    );
    expect(error.variable).toBe('REFRESH_TOKEN_TTL');
  });

  it('bounds REFRESH_REUSE_GRACE by a minute and a tenth of REFRESH_TOKEN_TTL, saying why', () => {
    expect(buildConfig({ ...base, REFRESH_REUSE_GRACE: '60' }).auth.refreshReuseGrace).toBe(60);
    const capped = errorOf(() => buildConfig({ ...base, REFRESH_REUSE_GRACE: '61' }));
    expect(capped.variable).toBe('REFRESH_REUSE_GRACE');
    expect(capped.message).toContain('at most 60 seconds');
    expect(capped.message).toContain('replayed');

    const short = { ...base, ACCESS_TOKEN_TTL: '1m', REFRESH_TOKEN_TTL: '5m' };
    expect(buildConfig({ ...short, REFRESH_REUSE_GRACE: '30' }).auth.refreshReuseGrace).toBe(30);
    const near = errorOf(() => buildConfig({ ...short, REFRESH_REUSE_GRACE: '4m' }));
    expect(near.variable).toBe('REFRESH_REUSE_GRACE');
    expect(near.message).toContain('at most 30 seconds');
    expect(near.message).toContain('REFRESH_TOKEN_TTL');
    expect(near.message).toContain('(got 240)');
  });

  it('lowers the default grace to the bound for a very short REFRESH_TOKEN_TTL', () => {
    const short = { ...base, ACCESS_TOKEN_TTL: '1' };
    expect(buildConfig({ ...short, REFRESH_TOKEN_TTL: '30' }).auth.refreshReuseGrace).toBe(3);
    expect(buildConfig({ ...short, REFRESH_TOKEN_TTL: '2' }).auth.refreshReuseGrace).toBe(0);
  });

  it('refuses the same secret for refresh tokens and for the signing keys', () => {
    const error = errorOf(() =>
      buildConfig({ ...base, SIGNING_KEYS_SECRET: strong.JWT_REFRESH_SECRET }),
    );
    expect(error.variable).toBe('SIGNING_KEYS_SECRET');
  });

  it('derives the issuer and the public URL from the port unless given', () => {
    expect(buildConfig({ ...base, PORT: '9000' })).toMatchObject({
      publicUrl: 'http://localhost:9000',
      auth: { issuer: 'http://localhost:9000' },
    });
    const given = buildConfig({ ...base, PUBLIC_URL: 'https://auth.example.com/' });
    expect(given.publicUrl).toBe('https://auth.example.com');
    expect(given.auth.issuer).toBe('https://auth.example.com');
    expect(
      buildConfig({ ...base, PUBLIC_URL: 'https://auth.example.com', JWT_ISSUER: 'lineage' }).auth
        .issuer,
    ).toBe('lineage');
  });

  it.each([
    'auth.example.com',
    'ftp://auth.example.com',
    'https://example.com/auth',
    'https://a/?x',
  ])('refuses PUBLIC_URL=%s', (value) => {
    expect(errorOf(() => buildConfig({ ...base, PUBLIC_URL: value })).variable).toBe('PUBLIC_URL');
  });

  describe('pool and shutdown', () => {
    it('takes DATABASE_POOL_SIZE, SHUTDOWN_DELAY and SHUTDOWN_DRAIN_TIMEOUT', () => {
      const config = buildConfig({
        ...base,
        DATABASE_POOL_SIZE: '25',
        SHUTDOWN_DELAY: '5s',
        SHUTDOWN_DRAIN_TIMEOUT: '1m',
      });
      expect(config.database.poolSize).toBe(25);
      expect(config.shutdown).toEqual({ delay: 5, drainTimeout: 60 });
    });

    it.each([
      [{ DATABASE_POOL_SIZE: '0' }, 'DATABASE_POOL_SIZE must be between 2 and 1000 (got 0)'],
      [{ DATABASE_POOL_SIZE: '1' }, 'DATABASE_POOL_SIZE must be between 2 and 1000 (got 1)'],
      [{ DATABASE_POOL_SIZE: '5000' }, 'DATABASE_POOL_SIZE must be between 2 and 1000 (got 5000)'],
      [{ DATABASE_POOL_SIZE: 'ten' }, 'DATABASE_POOL_SIZE must be an integer (got "ten")'],
      [
        { SHUTDOWN_DELAY: '-1' },
        'SHUTDOWN_DELAY must be seconds or a duration like 15m, 7d (got "-1")',
      ],
      [{ SHUTDOWN_DELAY: '1h' }, 'SHUTDOWN_DELAY must be at most 600 seconds'],
      [{ SHUTDOWN_DRAIN_TIMEOUT: '0' }, 'SHUTDOWN_DRAIN_TIMEOUT must be at least 1 seconds'],
      [
        { SHUTDOWN_DRAIN_TIMEOUT: 'soon' },
        'SHUTDOWN_DRAIN_TIMEOUT must be seconds or a duration like 15m, 7d (got "soon")',
      ],
    ])('refuses %p', (env, message) => {
      expect(errorOf(() => buildConfig({ ...base, ...env })).message).toBe(
        `Invalid configuration: ${message}`,
      );
    });

    it('passes TLS settings in DATABASE_URL through to node-postgres', () => {
      const url = 'postgres://u:p@db.internal:5432/lineage?sslmode=verify-full';
      expect(buildConfig({ ...base, DATABASE_URL: url }).database.url).toBe(url);
      // What node-postgres makes of it: TLS on, certificate and host name verified.
      expect(parse(url).ssl).toEqual({});
      expect(parse(`${url.split('?')[0]}?sslmode=no-verify`).ssl).toEqual({
        rejectUnauthorized: false,
      });
      expect(parse(`${url.split('?')[0]}?ssl=true`).ssl).toBe(true);
      expect(parse(`${url.split('?')[0]}?sslmode=disable`).ssl).toBe(false);
    });
  });

  describe('in production', () => {
    const production = {
      ...base,
      NODE_ENV: 'production',
      PUBLIC_URL: 'https://auth.example.com',
      METRICS_TOKEN: 'm'.repeat(32),
    };

    it('refuses to start without METRICS_TOKEN: /metrics is never public there', () => {
      const error = errorOf(() => buildConfig({ ...production, METRICS_TOKEN: undefined }));
      expect(error.variable).toBe('METRICS_TOKEN');
      expect(error.message).toContain('NODE_ENV=production');
      expect(buildConfig(production).observability.metricsToken).toBe('m'.repeat(32));
      expect(buildConfig(base).observability.metricsToken).toBeNull();
    });

    it('refuses to start without each secret, naming it', () => {
      const noKeys = { ...production, SIGNING_KEYS_SECRET: undefined };
      const noRefresh = { ...production, JWT_REFRESH_SECRET: undefined };
      const generated = {
        generatedSecrets: { signingKeysSecret: 'x'.repeat(64), refreshSecret: 'y'.repeat(64) },
      };
      expect(errorOf(() => buildConfig(noKeys, generated)).variable).toBe('SIGNING_KEYS_SECRET');
      expect(errorOf(() => buildConfig(noRefresh, generated)).variable).toBe('JWT_REFRESH_SECRET');
    });

    it('refuses weak secrets', () => {
      const error = errorOf(() => buildConfig({ ...production, SIGNING_KEYS_SECRET: 'short' }));
      expect(error.variable).toBe('SIGNING_KEYS_SECRET');
      expect(error.message).toContain('32');
    });

    it('needs PUBLIC_URL: the issuer that tokens and metadata name', () => {
      const error = errorOf(() => buildConfig({ ...production, PUBLIC_URL: undefined }));
      expect(error.variable).toBe('PUBLIC_URL');
    });

    it('never seeds the demo user by default', () => {
      expect(buildConfig(production).seedDemoUser).toBe(false);
    });

    it('refuses SEED_DEMO_USER=true: the demo password is published', () => {
      const error = errorOf(() => buildConfig({ ...production, SEED_DEMO_USER: 'true' }));
      expect(error.message).toBe(
        'Invalid configuration: SEED_DEMO_USER cannot be true when NODE_ENV=production: ' +
          'the demo account has a published password',
      );
      expect(buildConfig({ ...production, SEED_DEMO_USER: 'false' }).seedDemoUser).toBe(false);
      // Outside production it still may, against a real server.
      expect(buildConfig({ ...base, SEED_DEMO_USER: 'true' }).seedDemoUser).toBe(true);
    });

    it('serves /docs only with DOCS_ENABLED=true', () => {
      expect(buildConfig(production).docsEnabled).toBe(false);
      expect(buildConfig({ ...production, DOCS_ENABLED: 'true' }).docsEnabled).toBe(true);
      expect(buildConfig({ ...base, NODE_ENV: 'test' }).docsEnabled).toBe(true);
      expect(buildConfig({ ...base, DOCS_ENABLED: 'false' }).docsEnabled).toBe(false);
      expect(errorOf(() => buildConfig({ ...production, DOCS_ENABLED: 'yes' })).message).toBe(
        'Invalid configuration: DOCS_ENABLED must be true or false (got "yes")',
      );
    });

    it('refuses a refresh-token cookie without Secure', () => {
      expect(errorOf(() => buildConfig({ ...production, COOKIE_SECURE: 'false' })).variable).toBe(
        'COOKIE_SECURE',
      );
      expect(buildConfig(production).auth.cookieSecure).toBe(true);
    });
  });

  describe('on the embedded default', () => {
    const runtime = {
      embeddedDatabaseUrl: 'postgres://postgres:pw@127.0.0.1:5555/lineage',
      generatedSecrets: { signingKeysSecret: 'g'.repeat(64), refreshSecret: 'h'.repeat(64) },
    };

    it('uses the embedded server, generated secrets and seeds the demo user', () => {
      const config = buildConfig({}, runtime);
      expect(config.database).toEqual({
        url: runtime.embeddedDatabaseUrl,
        embedded: true,
        poolSize: 10,
      });
      expect(config.auth.signingKeysSecret).toBe(runtime.generatedSecrets.signingKeysSecret);
      expect(config.auth.refreshSecret).toBe(runtime.generatedSecrets.refreshSecret);
      expect(config.seedDemoUser).toBe(true);
    });

    it('lets SEED_DEMO_USER switch the demo user off, and on for a real server', () => {
      expect(buildConfig({ SEED_DEMO_USER: 'false' }, runtime).seedDemoUser).toBe(false);
      expect(buildConfig({ ...base, SEED_DEMO_USER: 'true' }).seedDemoUser).toBe(true);
    });

    it('listens on loopback only, unless HOST says otherwise', () => {
      expect(buildConfig({}, runtime).host).toBe('127.0.0.1');
      expect(buildConfig({ HOST: '0.0.0.0' }, runtime).host).toBe('0.0.0.0');
      expect(buildConfig(base, runtime).host).toBe('0.0.0.0');
      expect(buildConfig({ ...base, HOST: '127.0.0.1' }).host).toBe('127.0.0.1');
    });

    it('prefers DATABASE_URL over the embedded server', () => {
      expect(buildConfig(base, runtime).database.embedded).toBe(false);
    });
  });

  describe('per-account limits and revocation grace', () => {
    it('defaults to 5 free failures, 1 s doubling to 15 min, at most 100, and 5 min of grace', () => {
      const config = buildConfig(base);
      expect(config.rateLimit.account).toEqual({
        freeFailures: 5,
        firstDelay: 1,
        maxDelay: 900,
        maxFailures: 100,
      });
      expect(config.auth.revokeExpiredAccessGrace).toBe(300);
    });

    it.each([
      ['RATE_LIMIT_MAX_FAILURES', '101'],
      ['RATE_LIMIT_MAX_FAILURES', '0'],
      ['RATE_LIMIT_FREE_FAILURES', '100'],
      ['RATE_LIMIT_FAILURE_DELAY', '0'],
      ['RATE_LIMIT_FAILURE_DELAY', '20m'],
      ['RATE_LIMIT_FAILURE_DELAY_MAX', '2h'],
      ['REVOKE_ACCESS_TOKEN_GRACE', '2h'],
      ['REVOKE_ACCESS_TOKEN_GRACE', 'later'],
    ])('names %s when it is %p', (variable, value) => {
      expect(errorOf(() => buildConfig({ ...base, [variable]: value })).variable).toBe(variable);
    });

    it('refuses free failures that reach the outer bound (NIST SP 800-63B §5.2.2)', () => {
      const error = errorOf(() =>
        buildConfig({
          ...base,
          RATE_LIMIT_MAX_FAILURES: '10',
          RATE_LIMIT_FREE_FAILURES: '10',
        }),
      );
      expect(error.variable).toBe('RATE_LIMIT_FREE_FAILURES');
    });

    it('refuses the retired RATE_LIMIT_PER_ACCOUNT_HOURLY, naming what replaces it', () => {
      const error = errorOf(() => buildConfig({ ...base, RATE_LIMIT_PER_ACCOUNT_HOURLY: '100' }));
      expect(error.variable).toBe('RATE_LIMIT_PER_ACCOUNT_HOURLY');
      expect(error.message).toContain('RATE_LIMIT_FREE_FAILURES');
    });

    it('allows refusing every expired access token (grace 0)', () => {
      expect(
        buildConfig({ ...base, REVOKE_ACCESS_TOKEN_GRACE: '0' }).auth.revokeExpiredAccessGrace,
      ).toBe(0);
    });
  });
});
