import { chmod, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Response, Test } from 'supertest';
import {
  type EmbeddedDatabase,
  startEmbeddedPostgres,
} from '../../src/database/embedded-postgres.js';
import { expectError } from '../support/errors.js';
import { bearer, claimsOf, login, PASSWORD, register, type Tokens } from '../support/requests.js';
import { startTestApp, type TestApp } from '../support/test-app.js';
import { eventually } from '../support/time.js';
import {
  type CookieTokens,
  expectClearedCookie,
  expectCookieKept,
  expectIssuedCookie,
  REFRESH_COOKIE,
} from '../support/cookies.js';

/**
 * Takes PostgreSQL away under a running app: stopped (connections refused),
 * slow (a statement waits on a lock) and frozen (connections and statements
 * never answered). The cluster is this file's own, because the shared e2e
 * database serves other files in parallel; it comes back on the same port with
 * the same data, so the app's pool has to find it again by itself.
 */

interface TodoBody {
  id: string;
  title: string;
}

interface SessionState {
  generation: number;
  revoked_reason: string | null;
}

/** No request may hang: a stuck one fails here rather than at Jest's timeout. */
const REQUEST_TIMEOUT_MS = 15_000;
/**
 * Against a frozen server a request ends when the pool destroys the silent
 * connection (SILENT_SERVER_TIMEOUT_MS, 12 s); a generous bound on top.
 */
const FROZEN_REQUEST_TIMEOUT_MS = 40_000;
const RECOVERY_TIMEOUT_MS = 30_000;
/** More requests at once than the pool has connections (10). */
const BURST = 25;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// Freezing the server takes POSIX signals.
const describeWithSignals = process.platform === 'win32' ? describe.skip : describe;

describe('database outage (e2e)', () => {
  let dir: string | undefined;
  let database: EmbeddedDatabase | undefined;
  let t: TestApp | undefined;
  /** Server processes stopped with SIGSTOP, to be continued whatever happens. */
  let frozen: number[] = [];
  /** The backends of the app's pooled connections when the server froze. */
  let poolBackends: number[] = [];

  // Before the outage: a user with todos and two sessions; the first one's
  // refresh token has rotated once (generation 1: RT1's child RT2 is current).
  let username: string;
  let todoIds: string[];
  let first: Tokens;
  let second: Tokens;
  /** A third session in the cookie transport (a browser): its current refresh cookie. */
  let browserCookie: string;

  const app = (): TestApp => {
    if (!t) throw new Error('the app did not start');
    return t;
  };
  const cluster = (): EmbeddedDatabase => {
    if (!database) throw new Error('the outage cluster did not start');
    return database;
  };
  const bounded = (test: Test, ms = REQUEST_TIMEOUT_MS) =>
    test.timeout({ response: ms, deadline: ms });
  const health = (ms?: number) => bounded(app().http().get('/health'), ms);
  const refresh = (token: string, ms?: number) =>
    bounded(app().http().post('/auth/refresh').send({ refresh_token: token }), ms);
  const cookieRefresh = (value: string, ms?: number) =>
    bounded(
      app()
        .http()
        .post('/auth/refresh')
        .set('X-Token-Transport', 'cookie')
        .set('Cookie', `${REFRESH_COOKIE}=${value}`),
      ms,
    );
  const listTodos = (accessToken: string, ms?: number) =>
    bounded(app().http().get('/todos').set(bearer(accessToken)), ms);
  const createTodo = (accessToken: string, title: string, ms?: number) =>
    bounded(app().http().post('/todos').set(bearer(accessToken)).send({ title }), ms);

  /** 503 service_unavailable in the one error shape, with Retry-After and nothing internal. */
  function expectUnavailable(res: Response): void {
    expect({ status: res.status, body: res.body as unknown }).toMatchObject({
      status: 503,
      body: { statusCode: 503, code: 'service_unavailable' },
    });
    expect(Object.keys(res.body as object).sort()).toEqual([
      'code',
      'error',
      'message',
      'statusCode',
    ]);
    expect(res.headers['retry-after']).toMatch(/^[1-9]\d*$/);
    expect(res.headers['cache-control']).toBe('no-store');
    // No stack, SQL, driver message, address or source path reaches the client.
    expect(res.text).not.toMatch(
      /\n\s+at |node_modules|\.[jt]s:\d+|select |insert |update |econn|timeout|127\.0\.0\.1|postgres|typeorm|connection/i,
    );
  }

  /** Polls /health (bounded) until the app reaches the database again; it never restarts. */
  async function untilHealthy(): Promise<Response> {
    const deadline = Date.now() + RECOVERY_TIMEOUT_MS;
    let res = await health();
    while (res.status !== 200 && Date.now() < deadline) {
      expectUnavailable(res);
      await sleep(250);
      res = await health();
    }
    return res;
  }

  /** The session's row (one per session): the generation it has reached, and whether it ended. */
  async function sessionState(session: Tokens): Promise<SessionState[]> {
    return app().db.query<SessionState[]>(
      'SELECT generation, revoked_reason FROM sessions WHERE id = $1',
      [claimsOf(session.access_token).sid],
    );
  }

  /**
   * Until a statement waits behind backend `holder`'s locks; returns that
   * backend's pid. Asked outside any transaction: inside one, PostgreSQL
   * keeps showing the pg_stat_activity it read first.
   */
  async function waiterBehind(holder: number): Promise<number> {
    const deadline = Date.now() + REQUEST_TIMEOUT_MS;
    for (;;) {
      const waiting = await app().db.query<{ pid: number }[]>(
        'SELECT pid FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))',
        [holder],
      );
      if (waiting.length > 0) return waiting[0].pid;
      if (Date.now() > deadline) throw new Error(`no statement came to wait behind ${holder}`);
      await sleep(25);
    }
  }

  /**
   * Stops the postmaster (no new connection gets an answer) and every client
   * backend (no statement on an open connection does): a hung server or a
   * network partition, where only timeouts end a request. Returns the number
   * of open connections frozen.
   */
  async function freeze(): Promise<number> {
    if (!dir) throw new Error('the outage cluster did not start');
    const backends = await app().db.query<{ pid: number; application_name: string }[]>(
      `SELECT pid, application_name FROM pg_stat_activity WHERE backend_type = 'client backend'`,
    );
    poolBackends = backends
      .filter((backend) => backend.application_name === 'lineage')
      .map((backend) => backend.pid);
    const pidFile = await readFile(join(dir, 'postgres', 'postmaster.pid'), 'utf8');
    const postmaster = Number(pidFile.split('\n')[0]);
    for (const pid of [postmaster, ...backends.map((backend) => backend.pid)]) {
      process.kill(pid, 'SIGSTOP');
      frozen.push(pid);
    }
    return backends.length;
  }

  function thaw(): void {
    for (const pid of frozen) {
      try {
        process.kill(pid, 'SIGCONT');
      } catch {
        // Already gone: nothing to continue.
      }
    }
    frozen = [];
  }

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lineage-outage-'));
    // The cluster may run as the `postgres` system user, which must reach it.
    await chmod(dir, 0o755);
    database = await startEmbeddedPostgres({
      dataDir: join(dir, 'postgres'),
      database: 'lineage_outage',
    });
    t = await startTestApp({ DATABASE_URL: database.url });

    const registered = await register(t);
    username = registered.username;
    todoIds = [];
    for (const title of ['one', 'two', 'three']) {
      const res = await createTodo(registered.access_token, title).expect(201);
      todoIds.push((res.body as TodoBody).id);
    }
    second = await login(t, username);
    browserCookie = expectIssuedCookie(
      await bounded(
        t
          .http()
          .post('/auth/login')
          .set('X-Token-Transport', 'cookie')
          .send({ username, password: PASSWORD }),
      ).expect(200),
    );
    first = (await refresh(registered.refresh_token).expect(200)).body as Tokens;
    expect(await sessionState(first)).toEqual([{ generation: 1, revoked_reason: null }]);
  }, 90_000);

  afterAll(async () => {
    // Whatever failed above: the server running again, the app, the cluster, its files.
    thaw();
    try {
      await t?.close();
    } finally {
      try {
        await database?.stop();
      } finally {
        if (dir) await rm(dir, { recursive: true, force: true });
      }
    }
  }, 60_000);

  describe('while the database is stopped', () => {
    // A refresh cut off mid-rotation. The rotation is one UPDATE of the
    // session's row; here that row is locked, so the UPDATE has begun (it
    // holds its write lock on the table and has found the row) and waits for
    // the row when the server shuts down.
    let cutOff: Response;
    let cutOffWasUpdating: boolean;

    beforeAll(async () => {
      const locker = app().db.createQueryRunner();
      await locker.connect();
      try {
        await locker.startTransaction();
        await locker.query('SELECT 1 FROM sessions WHERE id = $1 FOR UPDATE', [
          claimsOf(first.access_token).sid,
        ]);
        const [{ pid: holder }] = (await locker.query('SELECT pg_backend_pid() AS pid')) as {
          pid: number;
        }[];
        const inFlight = refresh(first.refresh_token).then((res) => res);
        const pid = await waiterBehind(holder);
        const writes = await app().db.query<unknown[]>(
          `SELECT 1 FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
             JOIN pg_stat_activity a ON a.pid = l.pid
            WHERE l.pid = $1 AND c.relname = 'sessions'
              AND l.mode = 'RowExclusiveLock' AND l.granted
              AND a.query ILIKE 'UPDATE sessions%'`,
          [pid],
        );
        cutOffWasUpdating = writes.length > 0;
        await cluster().stop();
        cutOff = await inFlight;
      } finally {
        // Its connection went down with the server; this only hands it back.
        await locker.release();
      }
    }, 60_000);

    it('a refresh cut off mid-rotation answers 503, not 500 (ASVS 5.0 16.5.3)', () => {
      // The premise: the refresh's UPDATE was under way when the server went away.
      expect(cutOffWasUpdating).toBe(true);
      expectUnavailable(cutOff);
    });

    it('GET /health answers 503 service_unavailable with Retry-After (ASVS 5.0 16.5.2)', async () => {
      expectUnavailable(await health());
    });

    it('an authenticated read is 503: the access guard cannot check the session and fails closed, never 401 or 500 (ASVS 4.0.3 4.1.5 / ASVS 5.0 16.5.3)', async () => {
      expectUnavailable(await listTodos(first.access_token));
      expectUnavailable(await listTodos(second.access_token));
      expectUnavailable(
        await bounded(app().http().get('/users/me').set(bearer(first.access_token))),
      );
    });

    it('writes, register, login and refresh are 503 with a generic body (ASVS 5.0 16.5.1, 16.5.2)', async () => {
      expectUnavailable(await createTodo(first.access_token, 'lost?'));
      expectUnavailable(
        await bounded(
          app()
            .http()
            .post('/auth/register')
            .send({ username: `${username}x`, password: PASSWORD }),
        ),
      );
      expectUnavailable(
        await bounded(app().http().post('/auth/login').send({ username, password: PASSWORD })),
      );
      // Presented while the database is away; after recovery it must still rotate.
      expectUnavailable(await refresh(first.refresh_token));
    });

    it('a refresh by cookie answers 503 and leaves the cookie alone: no Set-Cookie clears a token that is still valid (RFC 6265bis §5.6 / ASVS 5.0 16.5.2)', async () => {
      const res = await cookieRefresh(browserCookie);
      expectUnavailable(res);
      expectCookieKept(res);
    });

    it('a burst larger than the connection pool fails fast, every request 503, none left hanging (API4:2023)', async () => {
      const responses = await Promise.all(
        Array.from({ length: BURST }, (_, i) =>
          i % 2 === 0 ? listTodos(second.access_token) : refresh(first.refresh_token),
        ),
      );
      for (const res of responses) expectUnavailable(res);
    });
  });

  describe('after the database returns', () => {
    beforeAll(async () => {
      await cluster().start();
    }, 60_000);

    it(
      'the app recovers by itself: /health is 200 again without a restart (ASVS 5.0 16.5.2)',
      async () => {
        const res = await untilHealthy();
        expect({ status: res.status, body: res.body as unknown }).toEqual({
          status: 200,
          body: { status: 'ok', database: 'up' },
        });
      },
      RECOVERY_TIMEOUT_MS + 2 * REQUEST_TIMEOUT_MS,
    );

    it('no row was lost and none was half-written: exactly the todos from before (ASVS 5.0 16.5.3)', async () => {
      const res = await listTodos(second.access_token).expect(200);
      expect(res.headers['x-total-count']).toBe(String(todoIds.length));
      const ids = (res.body as TodoBody[]).map((todo) => todo.id);
      expect(ids.sort()).toEqual([...todoIds].sort());
    });

    it('no half-rotated session: the refresh token presented during the outage is still the newest and rotates once (RFC 9700 §4.14.2)', async () => {
      // Nothing of the cut-off rotation was kept: RT2 is still the newest.
      // (Checked first: had the rotation committed, presenting RT2 would be
      // answered with the re-issued child, which would hide it.)
      expect(await sessionState(first)).toEqual([{ generation: 1, revoked_reason: null }]);

      const next = (await refresh(first.refresh_token).expect(200)).body as Tokens;
      expect(claimsOf(next.access_token).sid).toBe(claimsOf(first.access_token).sid);
      // A rotation, not a re-issue: the token of the next generation.
      expect(claimsOf(next.refresh_token).gen).toBe(2);
      await listTodos(next.access_token).expect(200);
      expect(await sessionState(first)).toEqual([{ generation: 2, revoked_reason: null }]);
      // The child rotates on as usual.
      first = (await refresh(next.refresh_token).expect(200)).body as Tokens;
    });

    it('the cookie kept through the outage still refreshes; once its session is revoked, a 401 clears it (RFC 6265bis §5.6)', async () => {
      const res = await cookieRefresh(browserCookie).expect(200);
      const next = expectIssuedCookie(res);
      expect(claimsOf(next).sid).toBe(claimsOf(browserCookie).sid);
      await listTodos((res.body as CookieTokens).access_token).expect(200);

      await bounded(app().http().post('/auth/revoke').send({ token: next })).expect(200);
      const ended = await cookieRefresh(next);
      expectError(ended, 401, 'session_revoked');
      expectClearedCookie(ended);
    });

    it('the second session, logins and new writes work again (ASVS 5.0 16.5.2)', async () => {
      second = (await refresh(second.refresh_token).expect(200)).body as Tokens;
      await createTodo(second.access_token, 'after').expect(201);
      const res = await listTodos(second.access_token).expect(200);
      expect(res.headers['x-total-count']).toBe(String(todoIds.length + 1));

      const fresh = await login(app(), username);
      await listTodos(fresh.access_token).expect(200);
    });
  });

  describe('while a statement waits on a lock', () => {
    it(
      'statement_timeout cancels it: the request answers 503 instead of waiting indefinitely (API4:2023 / ASVS 5.0 16.5.2)',
      async () => {
        const locker = app().db.createQueryRunner();
        await locker.connect();
        try {
          await locker.startTransaction();
          // GET /todos must read the todos table (the session check may be
          // answered from memory, so locking sessions would prove nothing).
          await locker.query('LOCK TABLE todos IN ACCESS EXCLUSIVE MODE');
          expectUnavailable(await listTodos(second.access_token));
        } finally {
          await locker.rollbackTransaction();
          await locker.release();
        }
        await listTodos(second.access_token).expect(200);
      },
      2 * REQUEST_TIMEOUT_MS,
    );
  });

  describeWithSignals('while the database hangs (a frozen server)', () => {
    let responses: Response[];
    let stuckConnections: number;

    beforeAll(async () => {
      // The pool keeps idle connections; frozen, they answer no statement.
      await listTodos(second.access_token).expect(200);
      stuckConnections = await freeze();
      try {
        responses = await Promise.all([
          health(FROZEN_REQUEST_TIMEOUT_MS),
          createTodo(second.access_token, 'lost?', FROZEN_REQUEST_TIMEOUT_MS),
          refresh(second.refresh_token, FROZEN_REQUEST_TIMEOUT_MS),
          ...Array.from({ length: BURST }, () =>
            listTodos(second.access_token, FROZEN_REQUEST_TIMEOUT_MS),
          ),
        ]);
      } finally {
        thaw();
      }
    }, 2 * FROZEN_REQUEST_TIMEOUT_MS);

    it('connect and query timeouts end every request with 503, never 500 or a hang (API4:2023 / ASVS 5.0 16.5.2)', () => {
      // Some requests met an open connection, so the query timeout was exercised,
      // not only the connect timeout.
      expect(stuckConnections).toBeGreaterThan(0);
      for (const res of responses) expectUnavailable(res);
    });

    it('the connections that went silent were destroyed, not handed out again (possibly mid-transaction)', async () => {
      expect((await untilHealthy()).status).toBe(200);
      expect(poolBackends.length).toBeGreaterThan(0);
      // A backend leaves pg_stat_activity once it notices its client is gone.
      await eventually(
        'the silent backends to leave pg_stat_activity',
        async () => {
          const left = await app().db.query<unknown[]>(
            `SELECT pid FROM pg_stat_activity WHERE pid = ANY($1)`,
            [poolBackends],
          );
          return left.length === 0;
        },
        // Bounded, not timed: a connection handed out again would stay for good.
        { timeoutMs: 25_000, intervalMs: 250 },
      );
    }, 40_000);

    it(
      'once the server answers again the app recovers by itself, with the session intact (ASVS 5.0 16.5.2 / RFC 9700 §4.14.2)',
      async () => {
        expect((await untilHealthy()).status).toBe(200);
        // The refresh presented while frozen left nothing: one rotation so far, and alive.
        expect(await sessionState(second)).toEqual([{ generation: 1, revoked_reason: null }]);
        second = (await refresh(second.refresh_token).expect(200)).body as Tokens;
        expect(claimsOf(second.refresh_token).gen).toBe(2);
        await createTodo(second.access_token, 'after the freeze').expect(201);
        const res = await listTodos(second.access_token).expect(200);
        expect(res.headers['x-total-count']).toBe(String(todoIds.length + 2));
      },
      RECOVERY_TIMEOUT_MS + 4 * REQUEST_TIMEOUT_MS,
    );
  });
});
