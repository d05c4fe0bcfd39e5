import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import type { Response } from 'supertest';
import { ConfigError } from '../../src/config/configuration.js';
import { buildConfig } from '../../src/config/environment.js';
import { usernameKey } from '../../src/common/username.js';
import {
  bearer,
  listEvents,
  PASSWORD,
  refresh,
  register,
  revoke,
  type Tokens,
  uniqueUsername,
} from '../support/requests.js';
import { expectError } from '../support/errors.js';
import { startTestApp, type TestApp, useTestApp } from '../support/test-app.js';
import { eventually } from '../support/time.js';

/**
 * Abuse resistance: throttling (per IP, per refresh, per account), which
 * client address is believed, limits shared across instances, no user
 * enumeration through login, security headers and CORS.
 *
 * Each app keeps its own in-memory counters (unless REDIS_URL), so a test that
 * needs a fresh budget starts its own app. Accounts are created through
 * `setup`, an app with the harness's very high limits, so creating them
 * spends none of the budget under test.
 */

const WINDOW = 60;
const DAY = 86400;
const WRONG = 'wrong password 123';
const TEST_REDIS_URL = process.env.TEST_REDIS_URL;

const setup = useTestApp();

/** Starts an app with `env`, runs `fn`, and always closes the app (its pool and timers). */
async function withApp(env: Record<string, string>, fn: (t: TestApp) => Promise<void>) {
  const t = await startTestApp(env);
  try {
    await fn(t);
  } finally {
    await t.close();
  }
}

function attempt(t: TestApp, username: string, password: string, forwardedFor?: string) {
  const req = t.http().post('/auth/login');
  if (forwardedFor) void req.set('X-Forwarded-For', forwardedFor);
  return req.send({ username, password });
}

/** 429 `rate_limited` with an integer Retry-After within the limit's window (RFC 6585 §4). */
function expectRateLimited(res: Response, windowSeconds: number): void {
  expectError(res, 429, 'rate_limited');
  expect(res.body).toMatchObject({ error: 'Too Many Requests' });
  const retryAfter = res.headers['retry-after'];
  expect(retryAfter).toMatch(/^\d+$/);
  expect(Number(retryAfter)).toBeGreaterThan(0);
  expect(Number(retryAfter)).toBeLessThanOrEqual(windowSeconds);
  expect(res.body).toMatchObject({ message: `Too many attempts; retry in ${retryAfter} s` });
  // Retry-After is the one rate-limit header: no X-RateLimit-* or per-limit variants.
  expect(
    Object.keys(res.headers).filter((name) => /^(x-)?rate-?limit|^retry-after-/.test(name)),
  ).toEqual([]);
}

describe('throttling per client address (ASVS 2.2.1, API4:2023)', () => {
  const limited = {
    RATE_LIMIT_WINDOW: String(WINDOW),
    RATE_LIMIT_PER_IP: '5',
    RATE_LIMIT_REFRESH_PER_IP: '3',
  };

  it('answers the 6th login from one address in a window with 429 and Retry-After, without checking the password (ASVS 2.2.1, API4:2023)', async () => {
    const user = await register(setup);
    await withApp(limited, async (t) => {
      for (let i = 0; i < 5; i++) {
        expectError(await attempt(t, user.username, WRONG), 401, 'invalid_credentials');
      }
      // The right password changes nothing: a throttled request never reaches the check.
      expectRateLimited(await attempt(t, user.username, PASSWORD), WINDOW);
      expectRateLimited(await attempt(t, uniqueUsername(), WRONG), WINDOW);
    });
    const types = (await listEvents(setup, user.access_token)).map((e) => e.type);
    expect(types.filter((type) => type === 'login_failed')).toHaveLength(5);
    expect(types).not.toContain('login_succeeded');
  });

  it('throttles registration per address: the 6th account is not created (ASVS 2.2.1, API4:2023)', async () => {
    const sixth = uniqueUsername();
    await withApp(limited, async (t) => {
      for (let i = 0; i < 5; i++) await register(t);
      const res = await t
        .http()
        .post('/auth/register')
        .send({ username: sixth, password: PASSWORD });
      expectRateLimited(res, WINDOW);
    });
    await attempt(setup, sixth, PASSWORD).expect(401);
  });

  it('throttles password changes per address: a throttled change with the right password changes nothing (ASVS 2.2.1, API4:2023)', async () => {
    const user = await register(setup);
    await withApp(limited, async (t) => {
      const change = (current: string) =>
        t
          .http()
          .patch('/users/me/password')
          .set(bearer(user.access_token))
          .send({ current_password: current, new_password: 'a brand new password' });
      for (let i = 0; i < 5; i++) {
        expectError(await change(WRONG), 403, 'invalid_password');
      }
      expectRateLimited(await change(PASSWORD), WINDOW);
    });
    await attempt(setup, user.username, PASSWORD).expect(200);
    await attempt(setup, user.username, 'a brand new password').expect(401);
  });

  it('throttles token revocation per address: the 6th revoke is 429 and ends no session (ASVS 2.2.1, API4:2023)', async () => {
    const user = await register(setup);
    await withApp(limited, async (t) => {
      for (let i = 0; i < 5; i++) await revoke(t, { token: `garbage-${i}` }).expect(200);
      expectRateLimited(await revoke(t, { token: user.refresh_token }), WINDOW);
    });
    await refresh(setup, user.refresh_token).expect(200);
  });

  it('gives refresh its own budget, spent before the token is verified: garbage counts, a throttled valid token is not consumed (ASVS 2.2.1, API4:2023)', async () => {
    const user = await register(setup);
    await withApp(limited, async (t) => {
      // The login budget spent to the end leaves refresh untouched.
      for (let i = 0; i < 5; i++) await attempt(t, user.username, WRONG).expect(401);
      expectRateLimited(await attempt(t, user.username, WRONG), WINDOW);

      expectError(await refresh(t, 'garbage'), 401, 'token_invalid');
      expectError(await refresh(t, 'not.a.jwt'), 401, 'token_invalid');
      const rotated = await refresh(t, user.refresh_token).expect(200);
      const next = (rotated.body as Tokens).refresh_token;
      // Over the budget a garbage token is 429, not 401: no token work happens first.
      expectRateLimited(await refresh(t, 'garbage'), WINDOW);
      expectRateLimited(await refresh(t, next), WINDOW);
      // The throttled request did not consume the token: it still rotates elsewhere.
      await refresh(setup, next).expect(200);
    });
  });
});

describe('per-account backoff on wrong passwords, whatever the client address (NIST SP 800-63B §5.2.2, ASVS 2.2.1, API2:2023)', () => {
  // A first wait of a minute, so no assertion races the clock.
  const DELAY = 60;
  const env = {
    TRUST_PROXY: '127.0.0.1',
    RATE_LIMIT_FREE_FAILURES: '3',
    RATE_LIMIT_FAILURE_DELAY: `${DELAY}s`,
    RATE_LIMIT_FAILURE_DELAY_MAX: '10m',
  };

  it('never counts successful logins: 26 rounds of 3 failures and a success from rotating addresses, never a 429 (NIST SP 800-63B §5.2.2)', async () => {
    const owner = await register(setup);
    await withApp(env, async (t) => {
      const statuses = new Set<number>();
      for (let round = 0; round < 26; round++) {
        for (let i = 1; i <= 3; i++) {
          const res = await attempt(t, owner.username, WRONG, `203.0.113.${i}`);
          statuses.add(res.status);
        }
        // The success forgives the failures before it: the next three are free again.
        statuses.add((await attempt(t, owner.username, PASSWORD, '198.51.100.1')).status);
      }
      expect([...statuses].sort()).toEqual([200, 401]);
    });
  });

  it('makes the account wait after its free failures, the right password too, with a short Retry-After, and leaves other accounts alone (ASVS 2.2.1)', async () => {
    const victim = await register(setup);
    const bystander = await register(setup);
    await withApp(env, async (t) => {
      for (let i = 1; i <= 3; i++) {
        await attempt(t, victim.username, WRONG, `203.0.113.${i}`).expect(401);
      }
      // The first failure past the free ones is still answered; it sets the wait.
      await attempt(t, victim.username, WRONG, '203.0.113.4').expect(401);
      expectRateLimited(await attempt(t, victim.username, PASSWORD, '203.0.113.5'), DELAY);
      expectRateLimited(await attempt(t, victim.username, PASSWORD, '198.51.100.99'), DELAY);
      await attempt(t, bystander.username, PASSWORD, '203.0.113.5').expect(200);
    });
    const types = (await listEvents(setup, victim.access_token)).map((e) => e.type);
    expect(types.filter((type) => type === 'login_failed')).toHaveLength(4);
  });

  it('lets exactly the free failures and one more through when 20 wrong guesses arrive at once from 20 addresses', async () => {
    const victim = await register(setup);
    await withApp(env, async (t) => {
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          attempt(t, victim.username, WRONG, `203.0.113.${i + 1}`),
        ),
      );
      const statuses = results.map((res) => res.status).sort();
      expect(statuses).toEqual([...Array<number>(4).fill(401), ...Array<number>(16).fill(429)]);
      for (const res of results.filter((r) => r.status === 429)) expectRateLimited(res, DELAY);
    });
  });

  it('lets the owner in once the wait is over, which also resets the count', async () => {
    const owner = await register(setup);
    const shortDelay = {
      ...env,
      RATE_LIMIT_FREE_FAILURES: '1',
      RATE_LIMIT_FAILURE_DELAY: '1s',
    };
    await withApp(shortDelay, async (t) => {
      await attempt(t, owner.username, WRONG, '203.0.113.1').expect(401);
      await attempt(t, owner.username, WRONG, '203.0.113.2').expect(401);
      // Refused with 429 until the one-second delay has passed (the limiter's own time).
      const res = await eventually(
        'the delay to pass',
        async () => {
          const answer = await attempt(t, owner.username, PASSWORD, '198.51.100.1');
          if (answer.status !== 429) return answer;
          expectRateLimited(answer, 1);
          return undefined;
        },
        { timeoutMs: 15_000, intervalMs: 200 },
      );
      expect(res.status).toBe(200);
      // Counted from zero again: one free failure, answered at once.
      await attempt(t, owner.username, WRONG, '203.0.113.3').expect(401);
    });
  });

  it('refuses the account for the rest of the day once it reaches the outer bound of consecutive failures (NIST SP 800-63B §5.2.2)', async () => {
    const victim = await register(setup);
    await withApp({ ...env, RATE_LIMIT_MAX_FAILURES: '4' }, async (t) => {
      for (let i = 1; i <= 4; i++) {
        await attempt(t, victim.username, WRONG, `203.0.113.${i}`).expect(401);
      }
      const res = await attempt(t, victim.username, PASSWORD, '198.51.100.1');
      expectRateLimited(res, DAY);
      expect(Number(res.headers['retry-after'])).toBeGreaterThan(DAY - 3600);
    });
  });

  it('counts case and width variants of a username as one account (ASVS 2.2.1)', async () => {
    const { username } = await register(setup, uniqueUsername('Alice'));
    const variants = [
      username.toLowerCase(),
      username.toUpperCase(),
      // Fullwidth "Ａ" folds to "A" under NFKC, as usernames do.
      `\uFF21${username.slice(1)}`,
      username,
    ];
    await withApp(env, async (t) => {
      for (const [i, variant] of variants.entries()) {
        await attempt(t, variant, WRONG, `203.0.113.${i + 10}`).expect(401);
      }
      expectRateLimited(await attempt(t, username.toLowerCase(), PASSWORD, '203.0.113.20'), DELAY);
    });
  });

  it('limits an unknown username exactly like an existing one, so the limiter reveals nothing (ASVS 2.2.1, WSTG-IDNT-04)', async () => {
    const existing = await register(setup);
    const unknown = uniqueUsername();
    await withApp(env, async (t) => {
      for (let i = 1; i <= 4; i++) {
        await attempt(t, existing.username, WRONG, `203.0.113.${i}`).expect(401);
        await attempt(t, unknown, WRONG, `203.0.113.${i}`).expect(401);
      }
      const a = await attempt(t, existing.username, WRONG, '203.0.113.77');
      const b = await attempt(t, unknown, WRONG, '203.0.113.77');
      expectRateLimited(a, DELAY);
      expectRateLimited(b, DELAY);
      // The seconds left may tick between the two answers; nothing else may differ.
      const shape = (res: Response) => ({ ...(res.body as object), message: undefined });
      expect(shape(b)).toEqual(shape(a));
    });
  });

  it('gives a malformed login back: it checks no password, so it is not a failure', async () => {
    const owner = await register(setup);
    await withApp({ ...env, RATE_LIMIT_FREE_FAILURES: '0' }, async (t) => {
      for (let i = 0; i < 3; i++) {
        const res = await t
          .http()
          .post('/auth/login')
          .send({ username: owner.username, password: 42 });
        expect(res.status).toBe(400);
        expect(res.body).toMatchObject({ statusCode: 400, code: 'validation_failed' });
      }
      await attempt(t, owner.username, PASSWORD).expect(200);
    });
  });

  it('counts wrong passwords on password change and deletion per user, from any address: the right one then waits too and changes nothing (ASVS 2.2.1)', async () => {
    const user = await register(setup);
    const bystander = await register(setup);
    await withApp(env, async (t) => {
      const change = (access: string, current: string, from: string) =>
        t
          .http()
          .patch('/users/me/password')
          .set('X-Forwarded-For', from)
          .set(bearer(access))
          .send({ current_password: current, new_password: 'a brand new password' });
      for (let i = 1; i <= 4; i++) {
        expectError(
          await change(user.access_token, WRONG, `203.0.113.${i}`),
          403,
          'invalid_password',
        );
      }
      expectRateLimited(await change(user.access_token, PASSWORD, '198.51.100.1'), DELAY);
      // One counter for both routes: deleting cannot be used to keep guessing.
      const deleted = await t
        .http()
        .delete('/users/me')
        .set('X-Forwarded-For', '198.51.100.2')
        .set(bearer(user.access_token))
        .send({ password: PASSWORD });
      expectRateLimited(deleted, DELAY);
      await change(bystander.access_token, PASSWORD, '203.0.113.1').expect(204);
    });
    await attempt(setup, user.username, PASSWORD).expect(200);
    await attempt(setup, user.username, 'a brand new password').expect(401);
  });
});

describe('which client address is believed (ASVS 2.2.1, API4:2023)', () => {
  const LOCALHOST = /^(::ffff:)?127\.0\.0\.1$/;

  it('ignores a spoofed X-Forwarded-For by default: rotating it does not reset the per-IP counter', async () => {
    await withApp({ RATE_LIMIT_PER_IP: '5' }, async (t) => {
      for (let i = 1; i <= 5; i++) {
        await attempt(t, uniqueUsername(), WRONG, `203.0.113.${i}`).expect(401);
      }
      expectRateLimited(await attempt(t, uniqueUsername(), WRONG, '203.0.113.6'), WINDOW);
    });
  });

  it('believes X-Forwarded-For from a trusted proxy (TRUST_PROXY): each forwarded client has its own counter', async () => {
    await withApp({ RATE_LIMIT_PER_IP: '5', TRUST_PROXY: '127.0.0.1' }, async (t) => {
      for (let i = 0; i < 5; i++) {
        await attempt(t, uniqueUsername(), WRONG, '203.0.113.1').expect(401);
      }
      expectRateLimited(await attempt(t, uniqueUsername(), WRONG, '203.0.113.1'), WINDOW);
      await attempt(t, uniqueUsername(), WRONG, '203.0.113.2').expect(401);
      // Only the right-most untrusted hop counts: what the client itself wrote to the
      // left of the proxy's entry cannot pick its counter.
      expectRateLimited(
        await attempt(t, uniqueUsername(), WRONG, '198.51.100.1, 203.0.113.1'),
        WINDOW,
      );
    });
  });

  it('records the believed address in the audit trail: the forwarded one only behind a trusted proxy (ASVS 7.2.1)', async () => {
    await withApp({ TRUST_PROXY: '127.0.0.1' }, async (t) => {
      const res = await t
        .http()
        .post('/auth/register')
        .set('X-Forwarded-For', '198.51.100.7')
        .send({ username: uniqueUsername(), password: PASSWORD })
        .expect(201);
      const [registered] = await listEvents(t, (res.body as Tokens).access_token);
      expect(registered).toMatchObject({ type: 'registered', ip: '198.51.100.7' });
    });
    const res = await setup
      .http()
      .post('/auth/register')
      .set('X-Forwarded-For', '198.51.100.8')
      .send({ username: uniqueUsername(), password: PASSWORD })
      .expect(201);
    const [registered] = await listEvents(setup, (res.body as Tokens).access_token);
    expect(registered.type).toBe('registered');
    expect(registered.ip).toMatch(LOCALHOST);
  });

  it('answers a forwarded address that is not a plain IP without a 5xx: a port is dropped, junk recorded as unknown', async () => {
    await withApp({ TRUST_PROXY: '127.0.0.1' }, async (t) => {
      // A trusted hop may pass on junk; some proxies append ":port"; inet has no zone ids.
      const cases: [string, string | null][] = [
        ['not-an-ip', null],
        ['203.0.113.5:51234', '203.0.113.5'],
        ['[2001:db8::5]:443', '2001:db8::5'],
        ['fe80::1%eth0', null],
      ];
      for (const [forwarded, recordedIp] of cases) {
        const user = await register(setup);
        await attempt(t, user.username, WRONG, forwarded).expect(401);
        const ok = await attempt(t, user.username, PASSWORD, forwarded).expect(200);
        const recorded = await listEvents(t, (ok.body as Tokens).access_token);
        expect(recorded.slice(0, 2).map((e) => [e.type, e.ip])).toEqual([
          ['login_succeeded', recordedIp],
          ['login_failed', recordedIp],
        ]);
      }
    });
  });

  it('counts an IPv6 client by its /64: rotating addresses inside it share one counter, the next /64 has its own (RFC 6177)', async () => {
    await withApp({ TRUST_PROXY: '127.0.0.1', RATE_LIMIT_PER_IP: '5' }, async (t) => {
      const inOne64 = [
        '2001:db8:1:2::1',
        '2001:db8:1:2::2',
        '2001:db8:1:2:a:b:c:d',
        '2001:db8:1:2:ffff:ffff:ffff:ffff',
        '2001:0db8:0001:0002:0000:0000:0000:0042',
      ];
      for (const address of inOne64) {
        await attempt(t, uniqueUsername(), WRONG, address).expect(401);
      }
      expectRateLimited(await attempt(t, uniqueUsername(), WRONG, '2001:db8:1:2::abcd'), WINDOW);
      await attempt(t, uniqueUsername(), WRONG, '2001:db8:1:3::1').expect(401);
    });
  });

  it('counts an IPv4-mapped IPv6 address as the IPv4 client it names (RFC 4291 §2.5.5.2)', async () => {
    await withApp({ TRUST_PROXY: '127.0.0.1', RATE_LIMIT_PER_IP: '3' }, async (t) => {
      for (const address of ['203.0.113.50', '::ffff:203.0.113.50', '::ffff:cb00:7132']) {
        await attempt(t, uniqueUsername(), WRONG, address).expect(401);
      }
      expectRateLimited(await attempt(t, uniqueUsername(), WRONG, '203.0.113.50'), WINDOW);
      await attempt(t, uniqueUsername(), WRONG, '203.0.113.51').expect(401);
    });
  });

  it('counts a client behind a port-appending proxy as one address (ASVS 2.2.1)', async () => {
    await withApp({ TRUST_PROXY: '127.0.0.1', RATE_LIMIT_PER_IP: '3' }, async (t) => {
      const statuses: number[] = [];
      for (let port = 50000; port < 50005; port += 1) {
        const res = await attempt(t, uniqueUsername('port'), WRONG, `203.0.113.9:${port}`);
        statuses.push(res.status);
      }
      expect(statuses).toEqual([401, 401, 401, 429, 429]);
    });
  });
});

const describeRedis = TEST_REDIS_URL ? describe : describe.skip;
const redisTitle = TEST_REDIS_URL
  ? 'limits shared by instances through Redis (ASVS 2.2.1, API4:2023)'
  : 'limits shared by instances through Redis — SKIPPED: set TEST_REDIS_URL (e.g. redis://127.0.0.1:6379)';

describeRedis(redisTitle, () => {
  const DELAY = 60;
  const env = {
    REDIS_URL: TEST_REDIS_URL ?? '',
    RATE_LIMIT_FREE_FAILURES: '3',
    RATE_LIMIT_FAILURE_DELAY: `${DELAY}s`,
  };
  const a = useTestApp(env);
  const b = useTestApp(env);

  it('counts one account’s failures on every instance: after the 4th overall either refuses, the right password too (ASVS 2.2.1, API4:2023)', async () => {
    // Fresh, because Redis keeps counters across test runs for a day.
    const { username } = await register(setup);
    for (const t of [a, b, a, b]) await attempt(t, username, WRONG).expect(401);
    expectRateLimited(await attempt(a, username, PASSWORD), DELAY);
    expectRateLimited(await attempt(b, username, PASSWORD), DELAY);
  });

  it('lets the free failures and one more through when wrong guesses arrive at once on both instances', async () => {
    const { username } = await register(setup);
    const results = await Promise.all(
      Array.from({ length: 12 }, (_, i) => attempt(i % 2 ? a : b, username, WRONG)),
    );
    const statuses = results.map((res) => res.status).sort();
    expect(statuses).toEqual([...Array<number>(4).fill(401), ...Array<number>(8).fill(429)]);
  });

  it('forgets an account’s failures on every instance once it logs in on one', async () => {
    const { username } = await register(setup);
    for (const t of [a, b, a]) await attempt(t, username, WRONG).expect(401);
    await attempt(b, username, PASSWORD).expect(200);
    for (const t of [a, b, a]) await attempt(t, username, WRONG).expect(401);
    await attempt(b, username, PASSWORD).expect(200);
  });

  it('counts one address’s requests on every instance: after the budget, either refuses (ASVS 2.2.1, API4:2023)', async () => {
    // Redis keeps counters for a window across test runs: an address of this run's own.
    const group = () => Math.floor(Math.random() * 0x10000).toString(16);
    const address = `2001:db8:${group()}:${group()}::1`;
    const limited = { ...env, TRUST_PROXY: '127.0.0.1', RATE_LIMIT_PER_IP: '3' };
    await withApp(limited, async (c) => {
      await withApp(limited, async (d) => {
        for (const t of [c, d, c]) {
          await attempt(t, uniqueUsername(), WRONG, address).expect(401);
        }
        expectRateLimited(await attempt(d, uniqueUsername(), WRONG, address), WINDOW);
        expectRateLimited(await attempt(c, uniqueUsername(), WRONG, address), WINDOW);
      });
    });
  });

  it('keeps no username in Redis, only a digest', async () => {
    const username = uniqueUsername('Stored');
    await attempt(a, username, WRONG).expect(401);
    const redis = new Redis(TEST_REDIS_URL ?? '');
    try {
      const keys = await redis.keys('lineage:rl:*');
      const digest = createHash('sha256').update(usernameKey(username)).digest('base64url');
      expect(keys).toContain(`lineage:rl:failures:login:${digest}`);
      expect(keys.filter((key) => key.toLowerCase().includes(username.toLowerCase()))).toEqual([]);
    } finally {
      redis.disconnect();
    }
  });
});

describe('rate limits while Redis is unreachable (ASVS 2.2.1, API4:2023)', () => {
  it('keeps logins working on per-instance memory counters, never a 5xx, and still limits', async () => {
    const user = await register(setup);
    const other = await register(setup);
    await withApp(
      {
        REDIS_URL: 'redis://127.0.0.1:1',
        RATE_LIMIT_FREE_FAILURES: '2',
        RATE_LIMIT_FAILURE_DELAY: '60s',
      },
      async (t) => {
        await attempt(t, other.username, PASSWORD).expect(200);
        for (let i = 0; i < 3; i++) await attempt(t, user.username, WRONG).expect(401);
        expectRateLimited(await attempt(t, user.username, PASSWORD), 60);
        await attempt(t, other.username, PASSWORD).expect(200);
      },
    );
  });

  it('keeps the per-address limits on per-instance memory counters, never a 5xx', async () => {
    await withApp({ REDIS_URL: 'redis://127.0.0.1:1', RATE_LIMIT_PER_IP: '3' }, async (t) => {
      for (let i = 0; i < 3; i++) await attempt(t, uniqueUsername(), WRONG).expect(401);
      expectRateLimited(await attempt(t, uniqueUsername(), WRONG), WINDOW);
    });
  });
});

describe('no user enumeration through login (ASVS V2, API2:2023, OWASP WSTG-IDNT-04)', () => {
  const median = (values: number[]) => {
    const sorted = [...values].sort((x, y) => x - y);
    const mid = Math.floor(sorted.length / 2);
    return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  };
  /** Everything but what differs per response by nature. */
  const comparable = (res: Response) => {
    const headers = { ...res.headers } as Record<string, unknown>;
    delete headers.date;
    delete headers['x-request-id'];
    return { status: res.status, text: res.text, headers };
  };

  it('answers an unknown username exactly like a wrong password (timing reported, not asserted)', async () => {
    // The real cost, so the dummy-hash comparison for unknown users is meaningful.
    await withApp({ BCRYPT_COST: '10' }, async (t) => {
      const { username } = await register(t);
      const known: number[] = [];
      const unknown: number[] = [];
      const time = async (samples: number[], name: string) => {
        const start = performance.now();
        const res = await attempt(t, name, WRONG);
        samples.push(performance.now() - start);
        return res;
      };
      // Warm-up, so connection and JIT costs fall on neither side.
      await attempt(t, username, WRONG);
      await attempt(t, uniqueUsername(), WRONG);
      for (let i = 0; i < 30; i++) {
        const existing = await time(known, username);
        const missing = await time(unknown, uniqueUsername());
        expectError(existing, 401, 'invalid_credentials');
        expect(comparable(missing)).toEqual(comparable(existing));
      }
      const knownMs = median(known);
      const unknownMs = median(unknown);
      console.log(
        `login timing over 30 interleaved tries (BCRYPT_COST=10): wrong password median ` +
          `${knownMs.toFixed(1)} ms, unknown user median ${unknownMs.toFixed(1)} ms, ` +
          `ratio ${(unknownMs / knownMs).toFixed(3)}`,
      );
    });
  });
});

describe('security headers (ASVS 14.4, API8:2023)', () => {
  const expectSecurityHeaders = (res: Response) => {
    const csp = String(res.headers['content-security-policy']);
    expect(csp).toMatch(/(^|;)\s*script-src 'self'(;|$)/);
    expect(csp).toMatch(/(^|;)\s*default-src 'self'(;|$)/);
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['x-frame-options']).toMatch(/^(DENY|SAMEORIGIN)$/);
    expect(res.headers['strict-transport-security']).toMatch(/max-age=\d{7,}/);
    expect(res.headers['referrer-policy']).toBeDefined();
    expect(res.headers).not.toHaveProperty('x-powered-by');
  };

  it('sends them on JSON responses, including errors (ASVS 14.4.3–14.4.7)', async () => {
    expectSecurityHeaders(await setup.http().get('/health').expect(200));
    expectSecurityHeaders(await setup.http().get('/no-such-route').expect(404));
  });

  it('sends them on /docs, whose page and scripts still load under the CSP (ASVS 14.4.3)', async () => {
    const page = await setup.http().get('/docs').expect(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expectSecurityHeaders(page);
    // script-src 'self' forbids inline scripts: every script must be a same-origin file.
    const scripts = [...page.text.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/g)];
    expect(scripts.length).toBeGreaterThan(0);
    for (const [, attributes, inline] of scripts) {
      expect(inline.trim()).toBe('');
      expect(attributes).toMatch(/src="(\.\/|\/)?[\w./-]+\.js"/);
      expect(attributes).not.toMatch(/src="(https?:)?\/\//);
    }
    for (const asset of ['/docs/swagger-ui-bundle.js', '/docs/swagger-ui-init.js']) {
      const res = await setup.http().get(asset).expect(200);
      expect(res.headers['content-type']).toMatch(/javascript/);
      expect(res.headers['x-content-type-options']).toBe('nosniff');
    }
  });

  it('marks token responses and error responses no-store (RFC 6749 §5.1, ASVS 8.2.1)', async () => {
    const user = await register(setup);
    const ok = await attempt(setup, user.username, PASSWORD).expect(200);
    expect(ok.headers['cache-control']).toBe('no-store');
    expect(ok.headers.pragma).toBe('no-cache');
    const refreshed = await refresh(setup, (ok.body as Tokens).refresh_token).expect(200);
    expect(refreshed.headers['cache-control']).toBe('no-store');
    expectError(await attempt(setup, user.username, WRONG), 401, 'invalid_credentials');
    expectError(await setup.http().get('/users/me'), 401, 'token_missing');
  });
});

describe('CORS (ASVS 14.5.3, API8:2023)', () => {
  const allowHeaders = (res: Response) =>
    Object.keys(res.headers).filter((name) => name.startsWith('access-control-'));
  const preflight = (t: TestApp, origin: string) =>
    t
      .http()
      .options('/auth/refresh')
      .set('Origin', origin)
      .set('Access-Control-Request-Method', 'POST')
      .set('Access-Control-Request-Headers', 'authorization, content-type, x-token-transport');

  it('is off by default: no Access-Control-* header for any origin, simple request or preflight', async () => {
    const simple = await setup.http().get('/health').set('Origin', 'https://evil.example');
    expect(simple.status).toBe(200);
    expect(allowHeaders(simple)).toEqual([]);
    const pre = await preflight(setup, 'https://evil.example');
    expect(pre.status).toBeGreaterThanOrEqual(400);
    expect(allowHeaders(pre)).toEqual([]);
  });

  it('allows exactly the listed origins with credentials, never "*" (ASVS 14.5.3)', async () => {
    const app = 'https://app.example.com';
    await withApp({ CORS_ORIGINS: app }, async (t) => {
      const simple = await t.http().get('/health').set('Origin', app).expect(200);
      expect(simple.headers['access-control-allow-origin']).toBe(app);
      expect(simple.headers['access-control-allow-credentials']).toBe('true');
      expect(simple.headers.vary).toMatch(/origin/i);
      expect(simple.headers['access-control-expose-headers']).toMatch(/retry-after/i);
      expect(simple.headers['access-control-expose-headers']).toMatch(/x-request-id/i);

      const pre = await preflight(t, app);
      expect(pre.status).toBeLessThan(300);
      expect(pre.headers['access-control-allow-origin']).toBe(app);
      expect(pre.headers['access-control-allow-credentials']).toBe('true');
      const allowed = String(pre.headers['access-control-allow-headers']).toLowerCase();
      expect(allowed).toContain('x-token-transport');
      expect(allowed).toContain('authorization');

      for (const other of [
        'https://evil.example',
        'https://app.example.com.evil.example',
        'http://app.example.com',
        'null',
      ]) {
        const get = await t.http().get('/health').set('Origin', other);
        expect(get.headers['access-control-allow-origin']).toBeUndefined();
        const otherPre = await preflight(t, other);
        // @fastify/cors still sends Allow-Credentials here; without Allow-Origin the
        // browser refuses the preflight all the same (Fetch standard, CORS check).
        expect(otherPre.headers['access-control-allow-origin']).toBeUndefined();
      }
      for (const res of [simple, pre]) {
        expect(Object.values(res.headers)).not.toContain('*');
      }
    });
  });
});

describe('configuration refuses unsafe trust settings (ASVS 14.1.3, 14.5.3, API8:2023)', () => {
  const base = {
    DATABASE_URL: 'postgres://localhost/lineage',
    SIGNING_KEYS_SECRET: 'a'.repeat(40),
    JWT_REFRESH_SECRET: 'b'.repeat(40),
  };
  const refusal = (env: Record<string, string>) => {
    try {
      buildConfig({ ...base, ...env });
    } catch (error) {
      return error;
    }
    return undefined;
  };

  it.each([
    ['CORS_ORIGINS', '*'],
    ['CORS_ORIGINS', 'https://app.example.com,*'],
    ['CORS_ORIGINS', 'null'],
    ['TRUST_PROXY', 'true'],
    ['TRUST_PROXY', 'TRUE'],
  ])('refuses %s=%s, naming the variable', (variable, value) => {
    const error = refusal({ [variable]: value });
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).variable).toBe(variable);
    expect((error as ConfigError).message).toContain(variable);
  });

  it('trusts no proxy unless told', () => {
    expect(buildConfig(base).http.trustProxy).toBe(false);
    expect(buildConfig(base).http.corsOrigins).toEqual([]);
  });
});
