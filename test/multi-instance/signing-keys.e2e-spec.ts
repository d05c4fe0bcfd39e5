import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { createRemoteJWKSet, decodeProtectedHeader, errors as joseErrors, jwtVerify } from 'jose';
import pg from 'pg';
import {
  type AppProcess,
  callProcess,
  freePort,
  startAppProcess,
  stopAppProcess,
} from '../support/app-process.js';
import { TEST_SECRETS } from '../support/secrets.js';
import { PASSWORD, uniqueUsername } from '../support/requests.js';
import { eventually } from '../support/time.js';

/**
 * Published keys and their rotation, seen the way another service sees them:
 * it discovers the JWKS from Lineage's metadata and verifies access tokens
 * with `jose`, before and after `npm run keys -- rotate` (a real CLI process)
 * while two real Lineage processes serve on one database.
 *
 * The suite gets a database of its own: rotating and revoking keys in the
 * shared e2e database would change the keys under the suites running beside it.
 * The processes run the compiled build (`npm test` builds first).
 */

const ROOT = join(import.meta.dirname, '..', '..');
const run = promisify(execFile);

// Long enough that a token issued before a rotation or revocation is still
// unexpired when the test looks at it again (the CLI takes about a second per run).
const ACCESS_TOKEN_TTL = 12;
const RELOAD_INTERVAL = 1;
// What the server computes (signingKeyRetainMs): TTL + reload interval + 5 s of clock skew.
const RETAIN_MS = (ACCESS_TOKEN_TTL + RELOAD_INTERVAL) * 1000 + 5000;

interface KeyRow {
  kid: string;
  state: string;
  active_from: string;
  verifies_until: string | null;
}

async function createDatabase(): Promise<{ url: string; drop: () => Promise<void> }> {
  const base = process.env.LINEAGE_TEST_DATABASE_URL;
  if (!base) throw new Error('e2e database not prepared (global setup did not run)');
  const name = `lineage_keys_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: base });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(base);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const client = new pg.Client({ connectionString: base });
      await client.connect();
      await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await client.end();
    },
  };
}

describe('published signing keys and rotation (e2e, two processes)', () => {
  let databaseUrl: string;
  let dropDatabase: (() => Promise<void>) | undefined;
  let a: AppProcess | undefined;
  let b: AppProcess | undefined;
  let publicUrl: string;

  const keysCli = async (args: string[], env: Record<string, string> = {}) => {
    try {
      const { stdout } = await run(process.execPath, ['dist/src/cli/keys.js', ...args], {
        cwd: ROOT,
        env: {
          PATH: process.env.PATH,
          NODE_ENV: 'test',
          DATABASE_URL: databaseUrl,
          ACCESS_TOKEN_TTL: String(ACCESS_TOKEN_TTL),
          SIGNING_KEYS_RELOAD_INTERVAL: String(RELOAD_INTERVAL),
          ...TEST_SECRETS,
          ...env,
        },
      });
      return { code: 0, stdout, stderr: '' };
    } catch (error) {
      const failed = error as { code: number; stdout: string; stderr: string };
      return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
    }
  };

  const listKeys = async (): Promise<KeyRow[]> => {
    const { code, stdout, stderr } = await keysCli(['list', '--json']);
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    return JSON.parse(stdout) as KeyRow[];
  };

  const publishedKids = async (instance: AppProcess): Promise<string[]> => {
    const res = await fetch(`${instance.url}/.well-known/jwks.json`);
    expect(res.status).toBe(200);
    return ((await res.json()) as { keys: { kid: string }[] }).keys.map((key) => key.kid);
  };

  const register = async (instance: AppProcess, username: string) => {
    const res = await callProcess(instance, 'POST', '/auth/register', undefined, {
      username,
      password: PASSWORD,
    });
    expect(res.status).toBe(201);
  };

  const login = async (instance: AppProcess, username: string) => {
    const res = await callProcess(instance, 'POST', '/auth/login', undefined, {
      username,
      password: PASSWORD,
    });
    expect(res.status).toBe(200);
    return (res.body as { access_token: string }).access_token;
  };

  const statusWith = async (instance: AppProcess, token: string) => {
    const res = await callProcess(instance, 'GET', '/users/me', token);
    return { status: res.status, body: res.body as { code?: string } };
  };

  const kidOf = (token: string) => decodeProtectedHeader(token).kid;

  beforeAll(async () => {
    ({ url: databaseUrl, drop: dropDatabase } = await createDatabase());
    const ports = [await freePort(), await freePort()];
    // Both name the same issuer, as replicas behind one load balancer do;
    // the published URLs point at A.
    publicUrl = `http://127.0.0.1:${ports[0]}`;
    const env = (port: number) => ({
      DATABASE_URL: databaseUrl,
      PORT: String(port),
      PUBLIC_URL: publicUrl,
      ACCESS_TOKEN_TTL: String(ACCESS_TOKEN_TTL),
      SIGNING_KEYS_RELOAD_INTERVAL: String(RELOAD_INTERVAL),
    });
    // Started together on an empty database: exactly one first key.
    [a, b] = await Promise.all([startAppProcess(env(ports[0])), startAppProcess(env(ports[1]))]);
  }, 60_000);

  afterAll(async () => {
    await Promise.all([stopAppProcess(a), stopAppProcess(b)]);
    await dropDatabase?.();
  }, 30_000);

  it('two instances starting on an empty database create one key and publish it', async () => {
    const keys = await listKeys();
    expect(keys).toHaveLength(1);
    expect(keys[0]).toMatchObject({ state: 'current', verifies_until: null });
    expect(await publishedKids(a!)).toEqual([keys[0].kid]);
    expect(await publishedKids(b!)).toEqual([keys[0].kid]);
  });

  it('publishes the JWKS and RFC 8414 metadata with cache headers', async () => {
    const jwks = await fetch(`${a!.url}/.well-known/jwks.json`);
    expect(jwks.headers.get('cache-control')).toBe('public, max-age=300');
    expect(jwks.headers.get('content-type')).toMatch(/^application\/json/);
    const { keys } = (await jwks.json()) as { keys: Record<string, unknown>[] };
    expect(Object.keys(keys[0]).sort()).toEqual(['alg', 'crv', 'kid', 'kty', 'use', 'x', 'y']);
    expect(keys[0]).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig' });

    const paths = ['/.well-known/oauth-authorization-server', '/.well-known/openid-configuration'];
    const documents = await Promise.all(
      paths.map(async (path) => {
        const res = await fetch(`${a!.url}${path}`);
        expect(res.status).toBe(200);
        expect(res.headers.get('cache-control')).toBe('public, max-age=300');
        return res.json() as Promise<Record<string, unknown>>;
      }),
    );
    expect(documents[1]).toEqual(documents[0]);
    expect(documents[0]).toEqual({
      issuer: publicUrl,
      token_endpoint: `${publicUrl}/oauth/token`,
      grant_types_supported: ['password', 'refresh_token'],
      token_endpoint_auth_methods_supported: ['none'],
      revocation_endpoint: `${publicUrl}/auth/revoke`,
      revocation_endpoint_auth_methods_supported: ['none'],
      introspection_endpoint: `${publicUrl}/oauth/introspect`,
      introspection_endpoint_auth_methods_supported: ['client_secret_basic'],
      // RFC 9449 §5.1: asymmetric algorithms only.
      dpop_signing_alg_values_supported: ['ES256', 'ES384', 'ES512', 'PS256', 'RS256', 'EdDSA'],
      jwks_uri: `${publicUrl}/.well-known/jwks.json`,
      response_types_supported: [],
      access_token_signing_alg_values_supported: ['ES256'],
      service_documentation: `${publicUrl}/docs`,
      lineage_signup_endpoint: `${publicUrl}/auth/register`,
      lineage_login_endpoint: `${publicUrl}/auth/login`,
      lineage_refresh_endpoint: `${publicUrl}/auth/refresh`,
      lineage_logout_endpoint: `${publicUrl}/auth/logout`,
    });
    // RFC 8414 keeps `registration_endpoint` for RFC 7591 client registration.
    expect(documents[0]).not.toHaveProperty('registration_endpoint');
    // No secret material: only public JWK members.
    expect(JSON.stringify(keys)).not.toMatch(/"d"|private/i);
  });

  it('another service verifies tokens with jose from the discovered JWKS, across a rotation', async () => {
    // Discovery, as a resource server configured with the issuer URL does it.
    const metadata = (await (
      await fetch(`${publicUrl}/.well-known/openid-configuration`)
    ).json()) as { issuer: string; jwks_uri: string };
    // jose refetches the set when a token names an unknown kid, at most once per cooldown.
    const jwks = createRemoteJWKSet(new URL(metadata.jwks_uri), {
      cooldownDuration: 500,
      cacheMaxAge: 300_000,
    });
    const verify = (token: string) =>
      jwtVerify(token, jwks, {
        issuer: metadata.issuer,
        audience: 'lineage-api',
        algorithms: ['ES256'],
        typ: 'at+jwt',
      });

    const username = uniqueUsername('rotate');
    await register(a!, username);
    const [oldKey] = await listKeys();
    const oldToken = await login(a!, username);
    expect(kidOf(oldToken)).toBe(oldKey.kid);
    const verified = await verify(oldToken);
    expect(verified.payload).toMatchObject({ iss: publicUrl, aud: 'lineage-api' });
    expect(verified.protectedHeader).toMatchObject({ alg: 'ES256', typ: 'at+jwt' });
    // The other instance verifies it through the same published key set.
    expect((await statusWith(b!, oldToken)).status).toBe(200);

    // Rotate with a lead: the new key is published before it signs.
    const rotated = await keysCli(['rotate', '--activate-in', '6s']);
    expect(rotated).toMatchObject({ code: 0, stderr: '' });
    const created = /^Created (\S+): published now, signs from (\S+)\.$/m.exec(rotated.stdout);
    expect(created).not.toBeNull();
    const newKey = { kid: created![1], activeFrom: Date.parse(created![2]) };
    expect(newKey.kid).not.toBe(oldKey.kid);
    const activeFrom = newKey.activeFrom;
    await eventually(
      'both instances publish the pending key',
      async () => {
        const [onA, onB] = await Promise.all([publishedKids(a!), publishedKids(b!)]);
        return onA.includes(newKey.kid) && onB.includes(newKey.kid);
      },
      { timeoutMs: 3000, intervalMs: 100 },
    );
    expect(await publishedKids(a!)).toEqual([newKey.kid, oldKey.kid]);
    // Until it activates, tokens are still signed with the old key: no
    // token carries the new kid with an `iat` before the key's activation.
    const beforeActivation = await login(b!, username);
    const { iat } = await verify(beforeActivation).then((result) => result.payload);
    if (kidOf(beforeActivation) === newKey.kid) {
      expect(iat! * 1000).toBeGreaterThanOrEqual(Math.floor(activeFrom / 1000) * 1000);
    } else {
      expect(kidOf(beforeActivation)).toBe(oldKey.kid);
    }

    // After activation both instances sign with the new key.
    let newToken = '';
    // Each login is a session (at most MAX_SESSIONS_PER_USER): few attempts.
    await sleep(Math.max(0, activeFrom - Date.now()));
    await eventually(
      'tokens carry the new kid',
      async () => {
        newToken = await login(a!, username);
        return kidOf(newToken) === newKey.kid;
      },
      { timeoutMs: 3000, intervalMs: 100 },
    );
    const fromB = await login(b!, username);
    expect(kidOf(fromB)).toBe(newKey.kid);
    expect((await verify(newToken)).payload.sub).toBe(verified.payload.sub);
    expect((await verify(fromB)).payload.sub).toBe(verified.payload.sub);
    expect((await statusWith(b!, newToken)).status).toBe(200);
    expect((await statusWith(a!, fromB)).status).toBe(200);

    // The old key's tokens still verify until they expire.
    const oldExpiryMs = (verified.payload.exp as number) * 1000;
    expect(Date.now()).toBeLessThan(oldExpiryMs);
    expect((await verify(oldToken)).protectedHeader.kid).toBe(oldKey.kid);
    expect(await statusWith(b!, oldToken)).toMatchObject({ status: 200 });
    expect((await listKeys()).find((key) => key.kid === oldKey.kid)?.state).toBe('retiring');

    // Then they are expired, and later the old key leaves the JWKS, never before
    // every token it signed has expired.
    await sleep(Math.max(0, oldExpiryMs - Date.now() + 100));
    await expect(verify(oldToken)).rejects.toBeInstanceOf(joseErrors.JWTExpired);
    expect((await statusWith(a!, oldToken)).body.code).toBe('token_expired');
    await eventually(
      'the old key leaves the JWKS',
      async () => {
        const [onA, onB] = await Promise.all([publishedKids(a!), publishedKids(b!)]);
        return !onA.includes(oldKey.kid) && !onB.includes(oldKey.kid);
      },
      { timeoutMs: RETAIN_MS + 5000, intervalMs: 100 },
    );
    expect(Date.now()).toBeGreaterThanOrEqual(oldExpiryMs);
    expect(await publishedKids(a!)).toEqual([newKey.kid]);
    expect((await listKeys()).find((key) => key.kid === oldKey.kid)?.state).toBe('expired');
  }, 60_000);

  it('revoking a leaked key stops its tokens at once on every instance; a new key takes over', async () => {
    const username = uniqueUsername('revoke');
    await register(a!, username);
    const token = await login(a!, username);
    const leaked = kidOf(token)!;
    // Accepted once on each instance (and remembered as verified there).
    expect((await statusWith(a!, token)).status).toBe(200);
    expect((await statusWith(b!, token)).status).toBe(200);

    const { exp } = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()) as {
      exp: number;
    };
    const expiresMs = exp * 1000;

    const revoked = await keysCli(['revoke', leaked]);
    expect(revoked).toMatchObject({ code: 0, stderr: '' });
    for (const instance of [a!, b!]) {
      await eventually(
        'the revoked key is refused',
        async () => {
          const { status, body } = await statusWith(instance, token);
          if (status === 200) return false;
          expect({ status, code: body.code }).toEqual({ status: 401, code: 'token_invalid' });
          return true;
        },
        { timeoutMs: RELOAD_INTERVAL * 1000 + 2000, intervalMs: 100 },
      );
      // Refused because the key is gone, not because the token ran out.
      expect(Date.now()).toBeLessThan(expiresMs);
      expect(await publishedKids(instance)).not.toContain(leaked);
    }
    const keys = await listKeys();
    expect(keys.find((key) => key.kid === leaked)?.state).toBe('revoked');
    const replacement = keys.find((key) => key.state === 'current')!;
    expect(replacement.kid).not.toBe(leaked);
    const next = await login(b!, username);
    expect(kidOf(next)).toBe(replacement.kid);
    expect((await statusWith(a!, next)).status).toBe(200);
    // Revoking it again, or a key that does not exist, changes nothing.
    expect((await keysCli(['revoke', leaked])).code).toBe(2);
    expect((await keysCli(['revoke', 'no-such-kid'])).code).toBe(2);
    expect((await listKeys()).filter((key) => key.state === 'current')).toHaveLength(1);
  }, 30_000);

  it('the CLI refuses to add a key under another SIGNING_KEYS_SECRET, and explains usage', async () => {
    const before = await listKeys();
    const wrong = await keysCli(['rotate', '--now'], {
      SIGNING_KEYS_SECRET: 'another-secret-0123456789abcdef0123456789',
    });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain('SIGNING_KEYS_SECRET');
    expect(wrong.stderr).not.toContain('another-secret');
    expect(await listKeys()).toEqual(before);

    const usage = await keysCli(['spin']);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('Usage: npm run keys');
    expect((await keysCli(['rotate', '--activate-in', 'soon'])).code).toBe(2);
    expect(await listKeys()).toEqual(before);
  });

  it('the CLI refuses to revoke the current key under another SIGNING_KEYS_SECRET; the instances keep serving', async () => {
    const secret = 'another-secret-0123456789abcdef0123456789';
    const rows = async () => {
      const client = new pg.Client({ connectionString: databaseUrl });
      await client.connect();
      try {
        const result = await client.query(
          'SELECT kid, private_key, active_from, revoked_at FROM signing_keys ORDER BY kid',
        );
        return result.rows as unknown[];
      } finally {
        await client.end();
      }
    };
    const before = await rows();
    const current = (await listKeys()).find((key) => key.state === 'current')!;

    const wrong = await keysCli(['revoke', current.kid], { SIGNING_KEYS_SECRET: secret });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain(`signing key ${current.kid} cannot be decrypted`);
    expect(wrong.stderr).toContain('SIGNING_KEYS_SECRET');
    expect(wrong.stderr).toContain('nothing was changed');
    expect(wrong.stderr).not.toContain(secret);
    expect(wrong.stdout).toBe('');
    expect(await rows()).toEqual(before);

    // Past a reload on both instances: they still sign with the same key,
    // log in and rotate refresh tokens.
    await sleep(RELOAD_INTERVAL * 1000 * 2 + 500);
    const username = uniqueUsername('wrongrevoke');
    await register(a!, username);
    for (const instance of [a!, b!]) {
      const res = await callProcess(instance, 'POST', '/auth/login', undefined, {
        username,
        password: PASSWORD,
      });
      expect(res.status).toBe(200);
      const tokens = res.body as { access_token: string; refresh_token: string };
      expect(kidOf(tokens.access_token)).toBe(current.kid);
      const refreshed = await callProcess(instance, 'POST', '/auth/refresh', undefined, {
        refresh_token: tokens.refresh_token,
      });
      expect(refreshed.status).toBe(200);
      expect((await statusWith(instance, tokens.access_token)).status).toBe(200);
    }
    expect(await rows()).toEqual(before);
  }, 30_000);

  it('an instance started with another SIGNING_KEYS_SECRET refuses to start, saying why', async () => {
    const secret = 'another-secret-0123456789abcdef0123456789';
    const error = await startAppProcess({
      DATABASE_URL: databaseUrl,
      SIGNING_KEYS_SECRET: secret,
    }).then(
      () => undefined,
      (thrown: unknown) => thrown as Error,
    );
    expect(error?.message).toContain('did not come up');
    expect(error?.message).toContain('cannot be decrypted with SIGNING_KEYS_SECRET');
    expect(error?.message).toContain('No usable signing key: check SIGNING_KEYS_SECRET');
    expect(error?.message).not.toContain(secret);
  }, 30_000);
});
