import { jest } from '@jest/globals';
import { createRootLogger } from '../../src/observability/logging.js';
import { UsersService } from '../../src/users/users.service.js';
import {
  bearer,
  logout,
  PASSWORD,
  refresh,
  register,
  todos,
  type Tokens,
} from '../support/requests.js';
import { useTestApp } from '../support/test-app.js';

interface LogLine {
  level: string;
  msg?: string;
  req_id?: string;
  context?: string;
  [field: string]: unknown;
}

/**
 * The application logs exactly as in production (JSON through pino, Nest's
 * lines bridged into it, redaction on), at every level, into memory.
 */
function captureLogs() {
  const raw: string[] = [];
  const logger = createRootLogger('trace', { write: (line: string) => void raw.push(line) });
  return { logger, raw, parsed: () => raw.map((line) => JSON.parse(line) as LogLine) };
}

describe('security: what the logs may contain (ASVS 7.1.1, 7.1.2, 7.1.3)', () => {
  const logs = captureLogs();
  const t = useTestApp({}, { pino: logs.logger });

  it('never logs a password, a token or a cookie, through failures, reuse and logout', async () => {
    const ids: string[] = [];
    const seen = <R extends { headers: Record<string, string> }>(res: R): R => {
      ids.push(res.headers['x-request-id']);
      return res;
    };
    const wrongPassword = 'not the password 9f8e7d';
    const user = await register(t);
    seen(
      await t
        .http()
        .post('/auth/login')
        .send({ username: user.username, password: wrongPassword })
        .expect(401),
    );
    const cookieLogin = seen(
      await t
        .http()
        .post('/auth/login')
        .set('X-Token-Transport', 'cookie')
        .send({ username: user.username, password: PASSWORD })
        .expect(200),
    );
    const cookie = String(cookieLogin.headers['set-cookie']).split(';')[0];
    const rotated = seen(await refresh(t, user.refresh_token).expect(200)).body as Tokens;
    const rotatedTwice = seen(await refresh(t, rotated.refresh_token).expect(200)).body as Tokens;
    const rotatedThrice = seen(await refresh(t, rotatedTwice.refresh_token).expect(200))
      .body as Tokens;
    // Reuse of a token three generations behind: revokes the session and logs a warning.
    const reuse = seen(await refresh(t, user.refresh_token).expect(401));
    seen(await todos(t, `${user.access_token}tampered`).expect(401));
    seen(
      await logout(t, (cookieLogin.body as Tokens).access_token)
        .set('Cookie', cookie)
        .expect(200),
    );
    seen(
      await t
        .http()
        .patch('/users/me/password')
        .set(bearer(rotated.access_token))
        .send({ current_password: wrongPassword, new_password: `${PASSWORD} new` })
        .expect(401),
    );

    const lines = logs.parsed();
    const warning = lines.find((line) => line.msg?.includes('reuse detected'));
    expect(warning).toMatchObject({ level: 'warn', context: 'SessionRefresh' });
    // Nest's lines inside a request carry that request's id too.
    expect(warning?.req_id).toBe(reuse.headers['x-request-id']);

    const secrets = [
      PASSWORD,
      `${PASSWORD} new`,
      wrongPassword,
      user.access_token,
      user.refresh_token,
      rotated.refresh_token,
      rotated.access_token,
      rotatedTwice.refresh_token,
      rotatedTwice.access_token,
      rotatedThrice.refresh_token,
      rotatedThrice.access_token,
      (cookieLogin.body as Tokens).access_token,
      cookie.slice(cookie.indexOf('=') + 1),
      // A token's signature alone would be enough to recognise it.
      user.refresh_token.split('.')[2],
      user.access_token.split('.')[2],
    ];
    expect(logs.raw.length).toBeGreaterThan(ids.length);
    for (const line of logs.raw) for (const secret of secrets) expect(line).not.toContain(secret);

    // One completion line per request, each with the id the response carried.
    const completed = lines.filter((line) => line.msg === 'request completed');
    for (const id of ids) {
      expect(id).toMatch(/^[0-9a-f-]{36}$/);
      expect(completed.filter((line) => line.req_id === id)).toHaveLength(1);
    }
    expect(completed.every((line) => typeof line.req_id === 'string')).toBe(true);
  });

  it('logs a failed request by its path, never its query string, where a careless client may put a token (RFC 6750 §5.3; ASVS 7.1.1)', async () => {
    const user = await register(t);
    // GET /users/me takes no query, so the parameter reaches the handler unchecked.
    const query = { access_token: user.access_token, secret: 'query-secret-5f0c2a' };
    const getById = jest.spyOn(t.app.get(UsersService), 'getById');
    try {
      // A bug (500), then a database that refuses connections (503): both are logged.
      getById.mockRejectedValueOnce(new Error('simulated fault'));
      getById.mockRejectedValueOnce(
        Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }),
      );
      const failed = await t.http().get('/users/me').query(query).set(bearer(user.access_token));
      const unavailable = await t
        .http()
        .get('/users/me')
        .query(query)
        .set(bearer(user.access_token));
      expect([failed.status, unavailable.status]).toEqual([500, 503]);

      const ids = [failed.headers['x-request-id'], unavailable.headers['x-request-id']];
      const lines = logs.parsed().filter((line) => ids.includes(line.req_id ?? ''));
      expect(
        lines.find((line) => line.level === 'error' && line.context === 'Exceptions')?.msg,
      ).toBe(`GET /users/me failed (request ${ids[0]})`);
      expect(
        lines.find((line) => line.level === 'warn' && line.context === 'Exceptions')?.msg,
      ).toBe(`GET /users/me: database unavailable (request ${ids[1]})`);
      const written = logs.raw.filter((line) => ids.some((id) => line.includes(id)));
      for (const line of written) {
        expect(line).not.toContain(query.secret);
        expect(line).not.toContain(user.access_token.split('.')[2]);
        expect(line).not.toContain('?');
      }
    } finally {
      getById.mockRestore();
    }
  });

  it('reuses a safe incoming X-Request-Id and replaces any other', async () => {
    const safe = await t.http().get('/health').set('X-Request-Id', 'edge-01.a_b').expect(200);
    expect(safe.headers['x-request-id']).toBe('edge-01.a_b');
    for (const unsafe of ['x'.repeat(65), 'a b', '"}{"level":"fatal']) {
      const res = await t.http().get('/health').set('X-Request-Id', unsafe).expect(200);
      expect(res.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
      expect(logs.raw.some((line) => line.includes(unsafe))).toBe(false);
    }
    const line = logs.parsed().find((entry) => entry.req_id === 'edge-01.a_b');
    expect(line).toMatchObject({ msg: 'request completed', route: '/health', status_code: 200 });
  });
});
