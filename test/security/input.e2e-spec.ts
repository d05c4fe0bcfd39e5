import { randomUUID } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  bearer,
  claimsOf,
  login,
  logout,
  me,
  PASSWORD,
  refresh,
  register,
  todos,
  type Tokens,
  uniqueUsername,
} from '../support/requests.js';
import {
  type ErrorBody,
  expectError,
  expectErrorBody,
  expectValidationFailed,
  LEAKS,
} from '../support/errors.js';
import { type TestApp, useTestApp } from '../support/test-app.js';

/**
 * Hostile input through HTTP: injection metacharacters, mass assignment,
 * other users' ids, oversized and malformed bodies, prototype pollution,
 * look-alike usernames and bcrypt's 72-byte edge. Each test names the
 * requirement it checks.
 */

type Json = Record<string, unknown>;
interface Res {
  status: number;
  body: unknown;
  headers: Record<string, string | string[] | undefined>;
}
interface TodoBody {
  id: string;
  title: string;
  description: string | null;
  completed: boolean;
  created_at: string;
  updated_at: string;
}

/** Every error response this file provoked, checked again by the last test. */
const errorBodies: { label: string; status: number; body: unknown }[] = [];

/**
 * Never a 5xx; an error has the one shape (expectErrorBody), and its body is
 * kept for the last test. Returns the body.
 */
function expectSafe(res: Res, label = ''): Json {
  const body = res.body as Json;
  if (res.status >= 400) errorBodies.push({ label, status: res.status, body });
  expect(res.status).toBeLessThan(500);
  if (res.status >= 400) expectErrorBody(res);
  return body;
}

/** expectError, and the body kept for the last test. */
function expectRefused(res: Res, status: number, code: string): ErrorBody {
  expectSafe(res, `${status} ${code}`);
  return expectError(res, status, code);
}

/** 400 validation_failed naming `field` in its details, the body kept for the last test. */
function expectInvalid(res: Res, field?: string): ErrorBody {
  expectSafe(res, `400 validation_failed`);
  return expectValidationFailed(res, field);
}

/** Classic SQL (and LIKE) metacharacters, plus the NUL byte PostgreSQL refuses in text. */
const INJECTIONS = [
  "' OR '1'='1",
  "admin' --",
  '"; DROP TABLE users; --',
  "'); DELETE FROM todos; --",
  '1; SELECT pg_sleep(5)',
  '\\',
  "\\'",
  '%',
  '_',
  '%_%',
  '\u0000',
  'nul\u0000inside',
];
const hasNul = (value: string) => value.includes('\u0000');

describe('security: hostile input (e2e)', () => {
  const t = useTestApp();
  /** Owner of the data the attacks aim at. */
  let alice: Tokens & { username: string };
  let aliceTodo: TodoBody;
  /** A second user, the BOLA attacker. */
  let mallory: Tokens & { username: string };

  beforeAll(async () => {
    alice = await register(t);
    mallory = await register(t);
    aliceTodo = (
      await t
        .http()
        .post('/todos')
        .set(bearer(alice.access_token))
        .send({ title: 'alice private', description: 'secret' })
        .expect(201)
    ).body as TodoBody;
  });

  const asAlice = () => bearer(alice.access_token);
  const asMallory = () => bearer(mallory.access_token);
  const todoCount = async (token: string) => {
    const res = await todos(t, token).expect(200);
    return Number(res.headers['x-total-count']);
  };

  describe('injection metacharacters in every string field (ASVS 5.3.4)', () => {
    it.each(INJECTIONS.map((value) => [JSON.stringify(value), value]))(
      'register with username %s is refused by the allow-list (ASVS 5.1.3)',
      async (_label, value) => {
        const res = await t
          .http()
          .post('/auth/register')
          .send({ username: value, password: PASSWORD });
        expectInvalid(res, 'username');
      },
    );

    it.each(INJECTIONS.map((value) => [JSON.stringify(value), value]))(
      'register with password %s is stored as typed or refused, and logs in verbatim (ASVS 5.3.4, ASVS 2.1.4)',
      async (_label, value) => {
        const username = uniqueUsername('sqlpw');
        const password = `${value}-padding`;
        const res = await t.http().post('/auth/register').send({ username, password });
        if (hasNul(value)) {
          // PostgreSQL cannot store U+0000 and bcrypt implementations differ on it: refused.
          expectInvalid(res, 'password');
          return;
        }
        expect(res.status).toBe(201);
        await login(t, username, password);
        expectRefused(
          await t.http().post('/auth/login').send({ username, password: value }),
          401,
          'invalid_credentials',
        );
      },
    );

    it.each(INJECTIONS.map((value) => [JSON.stringify(value), value]))(
      'login with username or password %s is a clean 401 or 400, never a 500 (ASVS 5.3.4)',
      async (_label, value) => {
        const asUsername = await t
          .http()
          .post('/auth/login')
          .send({ username: value, password: PASSWORD });
        const asPassword = await t
          .http()
          .post('/auth/login')
          .send({ username: alice.username, password: value });
        const asSuffix = await t
          .http()
          .post('/auth/login')
          .send({ username: `${alice.username}${value}`, password: PASSWORD });
        for (const res of [asUsername, asPassword, asSuffix]) {
          if (hasNul(value)) expectInvalid(res);
          else expectRefused(res, 401, 'invalid_credentials');
        }
      },
    );

    it.each(INJECTIONS.map((value) => [JSON.stringify(value), value]))(
      'todo title and description %s are stored and returned verbatim, or refused (ASVS 5.3.4)',
      async (_label, value) => {
        const created = await t
          .http()
          .post('/todos')
          .set(asAlice())
          .send({ title: value, description: value });
        if (hasNul(value)) {
          expectInvalid(created, 'title');
          return;
        }
        expect(created.status).toBe(201);
        const todo = created.body as TodoBody;
        expect(todo.title).toBe(value);
        expect(todo.description).toBe(value);
        const fetched = await t.http().get(`/todos/${todo.id}`).set(asAlice()).expect(200);
        expect((fetched.body as TodoBody).title).toBe(value);

        const patched = await t
          .http()
          .patch(`/todos/${todo.id}`)
          .set(asAlice())
          .send({ title: `${value}!`, description: `!${value}` })
          .expect(200);
        expect(patched.body).toMatchObject({ title: `${value}!`, description: `!${value}` });
        await t.http().delete(`/todos/${todo.id}`).set(asAlice()).expect(204);
      },
    );

    it('a NUL byte in a todo update is a 400, and the todo is unchanged (ASVS 5.1.3)', async () => {
      for (const body of [{ title: 'a\u0000b' }, { description: '\u0000' }]) {
        const res = await t.http().patch(`/todos/${aliceTodo.id}`).set(asAlice()).send(body);
        expectInvalid(res, Object.keys(body)[0]);
      }
      const fetched = await t.http().get(`/todos/${aliceTodo.id}`).set(asAlice()).expect(200);
      expect(fetched.body).toEqual(aliceTodo);
    });

    it.each(INJECTIONS.map((value) => [JSON.stringify(value), value]))(
      'refresh_token, revoke and logout tokens %s are refused cleanly (ASVS 5.3.4; RFC 7009 §2.2)',
      async (_label, value) => {
        const refreshed = await refresh(t, value);
        expect([400, 401]).toContain(refreshed.status);
        expectSafe(refreshed, 'refresh');
        const revoked = await t.http().post('/auth/revoke').send({ token: value });
        expect([200, 400]).toContain(revoked.status);
        expectSafe(revoked, 'revoke');
        const session = await login(t, mallory.username);
        const loggedOut = await logout(t, session.access_token, { refresh_token: value });
        expect([200, 400]).toContain(loggedOut.status);
        expectSafe(loggedOut, 'logout');
      },
    );

    it.each(INJECTIONS.map((value) => [JSON.stringify(value), value]))(
      'query parameters completed, limit, offset and before = %s are 400s (ASVS 5.1.3)',
      async (_label, value) => {
        for (const name of ['completed', 'limit', 'offset']) {
          const res = await t
            .http()
            .get('/todos')
            .set(asAlice())
            .query({ [name]: value });
          expectInvalid(res, name);
        }
        const events = await t
          .http()
          .get('/users/me/events')
          .set(asAlice())
          .query({ before: value });
        expectInvalid(events, 'before');
      },
    );

    it.each(INJECTIONS.map((value) => [JSON.stringify(value), value]))(
      'path ids %s are refused before any query: todos 400, sessions 404 (ASVS 5.1.3)',
      async (_label, value) => {
        const id = encodeURIComponent(value);
        for (const res of [
          await t.http().get(`/todos/${id}`).set(asAlice()),
          await t.http().patch(`/todos/${id}`).set(asAlice()).send({ title: 'x' }),
          await t.http().delete(`/todos/${id}`).set(asAlice()),
        ]) {
          expect(res.status).toBe(400);
          expectSafe(res, `todo id ${value}`);
        }
        const session = await t.http().delete(`/auth/sessions/${id}`).set(asAlice());
        expect(session.status).toBe(404);
        expectSafe(session, `session id ${value}`);
      },
    );

    it('the tables and the victim data are intact after the injection attempts (ASVS 5.3.4)', async () => {
      for (const table of ['users', 'todos', 'sessions', 'auth_events']) {
        const [row] = await t.db.query<{ name: string | null }[]>(
          'SELECT to_regclass($1) AS name',
          [`public.${table}`],
        );
        expect(row.name).toBe(table);
      }
      // Another suite may run against the same database at the same time, so
      // the checks name our rows rather than counting the whole table.
      const ids = [alice, mallory].map((user) => claimsOf(user.access_token).sub);
      const [users] = await t.db.query<{ n: number }[]>(
        'SELECT count(*)::int AS n FROM users WHERE id = ANY($1::uuid[])',
        [ids],
      );
      expect(users.n).toBe(2);
      const fetched = await t.http().get(`/todos/${aliceTodo.id}`).set(asAlice()).expect(200);
      expect(fetched.body).toEqual(aliceTodo);
      expect(await todoCount(alice.access_token)).toBe(1);
      // No registration slipped a metacharacter past the username allow-list.
      const [odd] = await t.db.query<{ n: number }[]>(
        "SELECT count(*)::int AS n FROM users WHERE username !~ '^[A-Za-z0-9][A-Za-z0-9._-]{2,31}$'",
      );
      expect(odd.n).toBe(0);
      await login(t, alice.username);
    });
  });

  describe('mass assignment (API3:2023; ASVS 5.1.2)', () => {
    const FORGED = {
      id: randomUUID(),
      user_id: randomUUID(),
      userId: randomUUID(),
      created_at: '2000-01-01T00:00:00.000Z',
      updated_at: '2000-01-01T00:00:00.000Z',
      owner: 'someone',
      createdAt: '2000-01-01T00:00:00.000Z',
    };

    it.each(Object.entries(FORGED))(
      'todo create with %s is refused, and nothing is created',
      async (field, value) => {
        const before = await todoCount(mallory.access_token);
        const res = await t
          .http()
          .post('/todos')
          .set(asMallory())
          .send({ title: 'mass', [field]: value });
        expectInvalid(res, field);
        expect(await todoCount(mallory.access_token)).toBe(before);
      },
    );

    it("todo create cannot plant a todo in another user's list (API1:2023, API3:2023)", async () => {
      const before = await todoCount(alice.access_token);
      const aliceId = claimsOf(alice.access_token).sub as string;
      for (const body of [
        { title: 'planted', user_id: aliceId },
        { title: 'planted', userId: aliceId },
        { title: 'planted', user: { id: aliceId } },
      ]) {
        expectInvalid(await t.http().post('/todos').set(asMallory()).send(body));
      }
      expect(await todoCount(alice.access_token)).toBe(before);
    });

    it.each(Object.entries(FORGED))(
      'todo update with %s is refused, and the todo is unchanged',
      async (field, value) => {
        const res = await t
          .http()
          .patch(`/todos/${aliceTodo.id}`)
          .set(asAlice())
          .send({ title: 'changed', [field]: value });
        expectInvalid(res, field);
        const fetched = await t.http().get(`/todos/${aliceTodo.id}`).set(asAlice()).expect(200);
        expect(fetched.body).toEqual(aliceTodo);
      },
    );

    it.each([
      ['id', randomUUID()],
      ['is_admin', true],
      ['isAdmin', true],
      ['role', 'admin'],
      ['password_hash', '$2b$04$abcdefghijklmnopqrstuuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ01'],
      ['created_at', '2000-01-01T00:00:00.000Z'],
    ])('register with %s is refused, and no account is created', async (field, value) => {
      const username = uniqueUsername('mass');
      const res = await t
        .http()
        .post('/auth/register')
        .send({ username, password: PASSWORD, [field]: value });
      expectInvalid(res, field);
      expectRefused(
        await t.http().post('/auth/login').send({ username, password: PASSWORD }),
        401,
        'invalid_credentials',
      );
    });

    it('login, refresh and logout bodies refuse unknown fields too (ASVS 5.1.2)', async () => {
      expectInvalid(
        await t
          .http()
          .post('/auth/login')
          .send({ username: alice.username, password: PASSWORD, user_id: randomUUID() }),
        'user_id',
      );
      const session = await login(t, mallory.username);
      expectInvalid(
        await t
          .http()
          .post('/auth/refresh')
          .send({ refresh_token: session.refresh_token, sub: randomUUID() }),
        'sub',
      );
      expectInvalid(
        await logout(t, session.access_token, { session_id: randomUUID() }),
        'session_id',
      );
    });
  });

  describe('object level authorization (API1:2023; ASVS 4.2.1)', () => {
    it('another user cannot read, change or delete a todo: 404, as for an unknown id', async () => {
      const url = `/todos/${aliceTodo.id}`;
      expectRefused(await t.http().get(url).set(asMallory()), 404, 'not_found');
      expectRefused(
        await t.http().patch(url).set(asMallory()).send({ title: 'pwned', completed: true }),
        404,
        'not_found',
      );
      expectRefused(await t.http().delete(url).set(asMallory()), 404, 'not_found');
      // Indistinguishable from a todo that does not exist.
      const unknown = await t.http().get(`/todos/${randomUUID()}`).set(asMallory());
      expectRefused(unknown, 404, 'not_found');
      const list = await t.http().get('/todos').set(asMallory()).expect(200);
      expect((list.body as TodoBody[]).map((todo) => todo.id)).not.toContain(aliceTodo.id);
      const fetched = await t.http().get(url).set(asAlice()).expect(200);
      expect(fetched.body).toEqual(aliceTodo);
    });

    it("another user cannot end a session: 404, and the owner's tokens keep working", async () => {
      const session = await login(t, alice.username);
      const sid = claimsOf(session.access_token).sid as string;
      expectRefused(
        await t.http().delete(`/auth/sessions/${sid}`).set(asMallory()),
        404,
        'not_found',
      );
      const mine = await t.http().get('/auth/sessions').set(asMallory()).expect(200);
      expect((mine.body as { id: string }[]).map((s) => s.id)).not.toContain(sid);
      await me(t, session.access_token).expect(200);
      await refresh(t, session.refresh_token).expect(200);
    });

    it("another user's events are never listed, whatever `before` says", async () => {
      const own = await t.http().get('/users/me/events').set(asAlice()).expect(200);
      const aliceIds = (own.body as { id: string }[]).map((e) => e.id);
      expect(aliceIds.length).toBeGreaterThan(0);
      const newest = String(BigInt(aliceIds[0]) + 1n);
      const res = await t
        .http()
        .get('/users/me/events')
        .set(asMallory())
        .query({ before: newest, limit: 100 })
        .expect(200);
      const malloryIds = (res.body as { id: string }[]).map((e) => e.id);
      for (const id of aliceIds) expect(malloryIds).not.toContain(id);
    });
  });

  describe('body size, depth and shape (API4:2023; ASVS 13.2.2)', () => {
    it('a body over 16 KiB is a 413 on public and protected routes', async () => {
      const big = 'x'.repeat(17 * 1024);
      expectRefused(
        await t.http().post('/auth/login').send({ username: 'a', password: big }),
        413,
        'payload_too_large',
      );
      expectRefused(
        await t.http().post('/todos').set(asAlice()).send({ title: big }),
        413,
        'payload_too_large',
      );
      expectRefused(
        await t
          .http()
          .post('/auth/register')
          .set('Content-Type', 'application/json')
          .send(`{"username":"${'a'.repeat(10 * 1024 * 1024)}"}`),
        413,
        'payload_too_large',
      );
    });

    it('deeply nested JSON under the size limit is a 4xx, never a 500', async () => {
      // About 6 bytes a level for objects, 2 for arrays: up to 2600 and 8000 levels fit.
      const objects = [40, 1000, 2600].map(
        (depth) => `{"title":"deep","a":${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}}`,
      );
      const arrays = [40, 1000, 8000].map(
        (depth) => `{"title":"deep","a":${'['.repeat(depth)}${']'.repeat(depth)}}`,
      );
      for (const body of [...objects, ...arrays]) {
        expect(Buffer.byteLength(body)).toBeLessThan(16 * 1024);
        const res = await t
          .http()
          .post('/todos')
          .set(asAlice())
          .set('Content-Type', 'application/json')
          .send(body);
        expectInvalid(res, 'a');
      }
      const bare = `${'['.repeat(8000)}${']'.repeat(8000)}`;
      const res = await t
        .http()
        .post('/todos')
        .set(asAlice())
        .set('Content-Type', 'application/json')
        .send(bare);
      expectRefused(res, 400, 'validation_failed');
      // Just over the limit: refused before parsing.
      const over = `${'{"a":'.repeat(3500)}1${'}'.repeat(3500)}`;
      expectRefused(
        await t
          .http()
          .post('/todos')
          .set(asAlice())
          .set('Content-Type', 'application/json')
          .send(over),
        413,
        'payload_too_large',
      );
      expect(await todoCount(alice.access_token)).toBe(1);
    });

    it('huge arrays are refused, as a field or as the whole body', async () => {
      const many = Array.from({ length: 7000 }, () => 1);
      expectInvalid(
        await t.http().post('/todos').set(asAlice()).send({ title: 'x', tags: many }),
        'tags',
      );
      expectInvalid(await t.http().post('/todos').set(asAlice()).send({ title: many }), 'title');
      expectRefused(
        await t.http().post('/todos').set(asAlice()).send(many),
        400,
        'validation_failed',
      );
      expectRefused(
        await t
          .http()
          .post('/auth/login')
          .send(Array.from({ length: 300 }, () => ({ username: 'a', password: 'b' }))),
        400,
        'validation_failed',
      );
    });

    it.each(['"hello"', '[]', 'null', '42', 'true', '[{"title":"x"}]', '""'])(
      'a JSON %s where an object is expected is a 400',
      async (body) => {
        for (const res of [
          await t
            .http()
            .post('/todos')
            .set(asAlice())
            .set('Content-Type', 'application/json')
            .send(body),
          await t.http().post('/auth/login').set('Content-Type', 'application/json').send(body),
          await t.http().post('/auth/register').set('Content-Type', 'application/json').send(body),
        ]) {
          expectRefused(res, 400, 'validation_failed');
        }
      },
    );

    it('malformed JSON is a 400 bad_request', async () => {
      for (const body of ['{', '{"title": }', "{'title': 'x'}", '{"title":"x"}garbage', '\u00ff']) {
        const res = await t
          .http()
          .post('/todos')
          .set(asAlice())
          .set('Content-Type', 'application/json')
          .send(body);
        expectRefused(res, 400, 'bad_request');
      }
      expect(await todoCount(alice.access_token)).toBe(1);
    });
  });

  describe('content types (ASVS 13.2.5)', () => {
    it.each([
      ['text/plain', '{"username":"a","password":"b"}'],
      ['application/x-www-form-urlencoded', 'username=a&password=b'],
      [
        'multipart/form-data; boundary=x',
        '--x\r\nContent-Disposition: form-data; name="a"\r\n\r\nb\r\n--x--',
      ],
      ['application/xml', '<login><username>a</username></login>'],
      [
        'text/xml',
        '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>',
      ],
      ['application/jsonx', '{"username":"a","password":"b"}'],
      ['application/yaml', 'username: a'],
    ])('a %s body is a 415', async (type, body) => {
      const res = await raw(t, 'POST', '/auth/login', body, { 'Content-Type': type });
      expectRefused(res, 415, 'unsupported_media_type');
    });

    it('a body without a content type is refused with a 4xx in the error shape', async () => {
      const res = await raw(t, 'POST', '/auth/login', '{"username":"a","password":"b"}', {});
      expect(res.status).toBeGreaterThanOrEqual(400);
      expectSafe(res, 'no content type');
      const todo = await raw(t, 'POST', '/todos', '{"title":"x"}', asAlice());
      expect(todo.status).toBeGreaterThanOrEqual(400);
      expectSafe(todo, 'no content type');
      expect(await todoCount(alice.access_token)).toBe(1);
    });
  });

  describe('prototype pollution (ASVS 5.5.3)', () => {
    const POISONED = [
      '{"title":"x","__proto__":{"polluted":"yes"}}',
      '{"title":"x","constructor":{"prototype":{"polluted":"yes"}}}',
      '{"title":"x","a":{"b":{"__proto__":{"polluted":"yes"}}}}',
      '{"username":"pp_user_1","password":"correct horse battery","__proto__":{"is_admin":true}}',
    ];

    it.each(POISONED)('a body %s is a 400 and pollutes nothing', async (body) => {
      for (const url of ['/todos', '/auth/register', '/auth/login']) {
        const res = await t
          .http()
          .post(url)
          .set(asAlice())
          .set('Content-Type', 'application/json')
          .send(body);
        expectRefused(res, 400, 'bad_request');
      }
      expect(({} as Json).polluted).toBeUndefined();
      expect(({} as Json).is_admin).toBeUndefined();
      expect(Object.prototype).not.toHaveProperty('polluted');
    });

    it('query strings with __proto__ or constructor keys are 400s and pollute nothing', async () => {
      for (const query of [
        '__proto__[polluted]=yes',
        '__proto__.polluted=yes',
        'constructor[prototype][polluted]=yes',
      ]) {
        expectInvalid(await t.http().get(`/todos?${query}`).set(asAlice()));
      }
      // class-transformer drops the bare `__proto__` and `constructor` keys
      // instead of copying them: the listing is the plain one.
      const plain = await t.http().get('/todos').set(asAlice()).expect(200);
      for (const query of ['__proto__=x', 'constructor=x', '__proto__=x&limit=1']) {
        const res = await t.http().get(`/todos?${query}`).set(asAlice());
        expectSafe(res, query);
        if (res.status === 200) expect(res.body).toEqual(plain.body);
      }
      expect(({} as Json).polluted).toBeUndefined();
      expect(Object.prototype).not.toHaveProperty('polluted');
    });
  });

  describe('usernames: one account per name, ASCII only (ASVS V2 authentication; RFC 8265 §3)', () => {
    it('a case variant of a taken username is a 409', async () => {
      const suffix = randomUUID().replaceAll('-', '').slice(0, 12);
      await register(t, `alice_X${suffix}`);
      const res = await t
        .http()
        .post('/auth/register')
        .send({ username: `ALICE_x${suffix.toUpperCase()}`, password: 'another password' });
      expectRefused(res, 409, 'username_taken');
    });

    it.each([
      ['fullwidth letters', '\uff41\uff4c\uff49\uff43\uff45_'],
      ['a Cyrillic a', '\u0430lice_'],
      ['a Greek omicron', 'b\u03bfb_'],
      ['a zero-width joiner', 'ali\u200dce_'],
      ['a combining accent', 'alice\u0301_'],
      ['a leading dot', '.alice_'],
      ['a leading underscore', '_alice_'],
      ['a leading hyphen', '-alice_'],
      ['a space', 'alice bob_'],
      ['a trailing newline', 'alice_\n'],
      ['a slash', 'alice/'],
      ['a ligature', '\ufb01nn_'],
    ])('a username with %s is a 400', async (_what, prefix) => {
      const username = `${prefix}${randomUUID().slice(0, 8)}`;
      expectInvalid(
        await t.http().post('/auth/register').send({ username, password: PASSWORD }),
        'username',
      );
    });

    it('a Cyrillic homoglyph of an existing name does not reach its account at login', async () => {
      const name = `alice${randomUUID().replaceAll('-', '').slice(0, 10)}`;
      await register(t, name);
      const homoglyph = `\u0430${name.slice(1)}`;
      expectRefused(
        await t.http().post('/auth/login').send({ username: homoglyph, password: PASSWORD }),
        401,
        'invalid_credentials',
      );
    });

    it('usernames too short or too long are 400s', async () => {
      for (const username of ['ab', 'a'.repeat(33), '', 'a'.repeat(10_000)]) {
        expectInvalid(
          await t.http().post('/auth/register').send({ username, password: PASSWORD }),
          'username',
        );
      }
    });
  });

  describe("passwords at bcrypt's 72-byte edge (ASVS 2.1.3, 2.1.4; NIST SP 800-63B §5.1.1.2)", () => {
    const exactly72 = '\u00e9'.repeat(36);

    it('exactly 72 bytes of two-byte characters registers and logs in', async () => {
      expect(Buffer.byteLength(exactly72)).toBe(72);
      const username = uniqueUsername('pw72');
      await t.http().post('/auth/register').send({ username, password: exactly72 }).expect(201);
      await login(t, username, exactly72);
    });

    it('73 bytes is a 400 that says why, and no account is created', async () => {
      const username = uniqueUsername('pw73');
      const password = `${exactly72}a`;
      expect(Buffer.byteLength(password)).toBe(73);
      const body = expectInvalid(
        await t.http().post('/auth/register').send({ username, password }),
        'password',
      );
      expect(body.message).toMatch(/72 bytes/);
      expectRefused(
        await t.http().post('/auth/login').send({ username, password: exactly72 }),
        401,
        'invalid_credentials',
      );
    });

    it('the 72-byte password plus anything is never accepted through truncation: 401', async () => {
      const username = uniqueUsername('pwtr');
      await t.http().post('/auth/register').send({ username, password: exactly72 }).expect(201);
      for (const password of [`${exactly72}a`, `${exactly72}${exactly72}`, `${exactly72}\u00e9`]) {
        expectRefused(
          await t.http().post('/auth/login').send({ username, password }),
          401,
          'invalid_credentials',
        );
      }
    });

    it('a password change to 73 bytes is refused with the same reason', async () => {
      const user = await register(t);
      const body = expectInvalid(
        await t
          .http()
          .patch('/users/me/password')
          .set(bearer(user.access_token))
          .send({ current_password: PASSWORD, new_password: `${exactly72}a` }),
        'new_password',
      );
      expect(body.message).toMatch(/72 bytes/);
      await login(t, user.username);
    });

    it('NFC and NFD spellings of one password reach the same account', async () => {
      const composed = 'caf\u00e9 cr\u00e8me br\u00fbl\u00e9e';
      const decomposed = composed.normalize('NFD');
      expect(decomposed).not.toBe(composed);
      const username = uniqueUsername('nfc');
      const created = await t
        .http()
        .post('/auth/register')
        .send({ username, password: decomposed })
        .expect(201);
      const sub = claimsOf((created.body as Tokens).access_token).sub;
      for (const password of [composed, decomposed]) {
        expect(claimsOf((await login(t, username, password)).access_token).sub).toBe(sub);
      }
    });

    it('the byte limit is measured after NFC: 108 bytes of NFD that compose to 72 are accepted', async () => {
      const decomposed = exactly72.normalize('NFD');
      expect(Buffer.byteLength(decomposed)).toBe(108);
      const username = uniqueUsername('nfd72');
      await t.http().post('/auth/register').send({ username, password: decomposed }).expect(201);
      await login(t, username, exactly72);
    });
  });

  describe('numeric query bounds (API4:2023; ASVS 5.1.3)', () => {
    it.each([
      ['limit', '1e9'],
      ['limit', '-1'],
      ['limit', '0'],
      ['limit', '101'],
      ['limit', '1.5'],
      ['limit', 'Infinity'],
      ['limit', 'NaN'],
      ['limit', ''],
      ['offset', '99999999999999999999'],
      ['offset', '-1'],
      ['offset', '1e300'],
      ['offset', '1000001'],
      ['completed', 'yes'],
      ['completed', '1'],
    ])('%s=%s is a 400', async (name, value) => {
      const res = await t
        .http()
        .get(`/todos?${name}=${encodeURIComponent(value)}`)
        .set(asAlice());
      expectInvalid(res, name);
    });

    it('a repeated parameter is a 400, not a silent pick (ASVS 5.1.1)', async () => {
      for (const query of [
        'limit=1&limit=2',
        'offset=0&offset=1',
        'completed=true&completed=false',
      ]) {
        expectInvalid(await t.http().get(`/todos?${query}`).set(asAlice()));
      }
    });

    it('event paging bounds are 400s too', async () => {
      for (const query of ['limit=1e9', 'limit=-1', 'before=99999999999999999999', 'before=0']) {
        expectInvalid(await t.http().get(`/users/me/events?${query}`).set(asAlice()));
      }
    });
  });

  // Last on purpose: Jest runs a file's tests in order, so this sees every error above.
  it('no error body above carried a stack trace, SQL, a driver error or a file path (ASVS 7.4.1; API8:2023)', () => {
    expect(errorBodies.length).toBeGreaterThan(150);
    const leaking = errorBodies.filter(({ body }) => {
      const text = JSON.stringify(body);
      return LEAKS.some((leak) => leak.test(text));
    });
    expect(leaking).toEqual([]);
    expect(errorBodies.filter(({ status }) => status >= 500)).toEqual([]);
  });
});

/**
 * A request sent as is: no client library adding a content type. Used where
 * supertest would fill one in.
 */
async function raw(
  t: TestApp,
  method: string,
  path: string,
  body: string,
  headers: Record<string, string>,
): Promise<Res> {
  const server = t.app.getHttpServer();
  if (!server.listening) await t.app.listen(0, '127.0.0.1');
  const { port } = server.address() as AddressInfo;
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port,
        path,
        method,
        headers: { ...headers, 'Content-Length': String(Buffer.byteLength(body)) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown = text;
          try {
            parsed = JSON.parse(text);
          } catch {
            // Left as text: the shape assertions will say what it was.
          }
          resolve({ status: res.statusCode ?? 0, body: parsed, headers: res.headers });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}
