import { randomUUID } from 'node:crypto';
import { bearer, register, todos } from './support/requests.js';
import { expectError, expectValidationFailed } from './support/errors.js';
import { useTestApp } from './support/test-app.js';

interface TodoBody {
  id: string;
  title: string;
  description: string | null;
  completed: boolean;
  created_at: string;
  updated_at: string;
}

const TODO_KEYS = ['completed', 'created_at', 'description', 'id', 'title', 'updated_at'];
/** `n` times "a" followed by VARIATION SELECTOR-16: 2n code points. */
const VS16_PAIRS = (n: number) => 'a\uFE0F'.repeat(n);
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const t = useTestApp();

/** A fresh user's access token. */
async function newUser(): Promise<string> {
  return (await register(t)).access_token;
}

async function createTodo(token: string, body: Record<string, unknown>): Promise<TodoBody> {
  const res = await t.http().post('/todos').set(bearer(token)).send(body).expect(201);
  return res.body as TodoBody;
}

async function getTodo(token: string, id: string): Promise<TodoBody> {
  const res = await t.http().get(`/todos/${id}`).set(bearer(token)).expect(200);
  return res.body as TodoBody;
}

describe('CRUD', () => {
  let token: string;

  beforeAll(async () => {
    token = await newUser();
  });

  it('POST creates a todo and returns exactly the public fields', async () => {
    const res = await t
      .http()
      .post('/todos')
      .set(bearer(token))
      .send({ title: 'Buy milk', description: 'two litres', completed: true })
      .expect(201);

    const body = res.body as TodoBody;
    expect(Object.keys(body).sort()).toEqual(TODO_KEYS);
    expect(body).toMatchObject({ title: 'Buy milk', description: 'two litres', completed: true });
    expect(body.id).toMatch(UUID);
    expect(new Date(body.created_at).toISOString()).toBe(body.created_at);
    expect(new Date(body.updated_at).toISOString()).toBe(body.updated_at);
  });

  it('POST defaults description to null and completed to false, and trims the title', async () => {
    const todo = await createTodo(token, { title: '  Walk the dog  ' });
    expect(todo).toMatchObject({ title: 'Walk the dog', description: null, completed: false });
  });

  it('POST accepts a title of exactly 200 characters', async () => {
    const title = 'x'.repeat(200);
    const todo = await createTodo(token, { title });
    expect(todo.title).toBe(title);
  });

  it('POST accepts exactly 200 code points however they are spelled, and stores them intact', async () => {
    // What PostgreSQL's varchar(200) holds: astral characters (two UTF-16
    // units) and variation selectors count one each.
    for (const title of ['\u{1F600}'.repeat(200), `${'a'.repeat(199)}\uFE0F`, VS16_PAIRS(100)]) {
      const todo = await createTodo(token, { title, description: VS16_PAIRS(1000) });
      expect(todo.title).toBe(title);
      expect((await getTodo(token, todo.id)).description).toBe(VS16_PAIRS(1000));
    }
  });

  it('GET returns the stored todo', async () => {
    const created = await createTodo(token, { title: 'Read', description: 'a book' });
    expect(await getTodo(token, created.id)).toEqual(created);
  });

  it('PATCH changes only the given fields and advances updated_at', async () => {
    const created = await createTodo(token, { title: 'Original', description: 'keep me' });

    const res = await t
      .http()
      .patch(`/todos/${created.id}`)
      .set(bearer(token))
      .send({ completed: true })
      .expect(200);
    const patched = res.body as TodoBody;
    expect(Object.keys(patched).sort()).toEqual(TODO_KEYS);
    expect(patched).toMatchObject({
      id: created.id,
      title: 'Original',
      description: 'keep me',
      completed: true,
      created_at: created.created_at,
    });
    expect(Date.parse(patched.updated_at)).toBeGreaterThanOrEqual(Date.parse(created.created_at));
    // At the database's microsecond precision the update is strictly later than the insert.
    const rows = await t.db.query<{ advanced: boolean }[]>(
      'SELECT updated_at > created_at AS advanced FROM todos WHERE id = $1',
      [created.id],
    );
    expect(rows).toEqual([{ advanced: true }]);

    expect(await getTodo(token, created.id)).toEqual(patched);
  });

  it('PATCH can change title and description together, trimming the title', async () => {
    const created = await createTodo(token, { title: 'Before' });
    const res = await t
      .http()
      .patch(`/todos/${created.id}`)
      .set(bearer(token))
      .send({ title: '  After  ', description: 'now described' })
      .expect(200);
    expect(res.body).toMatchObject({
      id: created.id,
      title: 'After',
      description: 'now described',
      completed: false,
    });
  });

  it('PATCH with an empty body leaves the todo as it was', async () => {
    const created = await createTodo(token, { title: 'Untouched', description: 'same' });
    const res = await t
      .http()
      .patch(`/todos/${created.id}`)
      .set(bearer(token))
      .send({})
      .expect(200);
    expect(res.body).toEqual(created);
  });

  it('PATCH description null clears it', async () => {
    const created = await createTodo(token, { title: 'Has notes', description: 'notes' });
    const res = await t
      .http()
      .patch(`/todos/${created.id}`)
      .set(bearer(token))
      .send({ description: null })
      .expect(200);
    expect(res.body).toMatchObject({ id: created.id, title: 'Has notes', description: null });
    expect((await getTodo(token, created.id)).description).toBeNull();
  });

  it.each([
    ['title null', { title: null }, 'title'],
    ['completed null', { completed: null }, 'completed'],
  ])('PATCH %s is refused with 400 and changes nothing', async (_name, body, field) => {
    const created = await createTodo(token, { title: 'Not nullable' });
    const res = await t.http().patch(`/todos/${created.id}`).set(bearer(token)).send(body);
    expectValidationFailed(res, field);
    expect(await getTodo(token, created.id)).toEqual(created);
  });

  it('DELETE answers 204, then the todo is gone and a second DELETE is 404', async () => {
    const created = await createTodo(token, { title: 'Short-lived' });

    const deleted = await t.http().delete(`/todos/${created.id}`).set(bearer(token)).expect(204);
    expect(deleted.text).toBe('');

    expectError(await t.http().get(`/todos/${created.id}`).set(bearer(token)), 404, 'not_found');
    expectError(await t.http().delete(`/todos/${created.id}`).set(bearer(token)), 404, 'not_found');
    expectError(
      await t.http().patch(`/todos/${created.id}`).set(bearer(token)).send({ completed: true }),
      404,
      'not_found',
    );
  });

  it.each(['get', 'patch', 'delete'] as const)(
    '%s of a well-formed but unknown id is 404 not_found',
    async (method) => {
      const req = t.http()[method](`/todos/${randomUUID()}`).set(bearer(token));
      const res = method === 'patch' ? await req.send({ completed: true }) : await req;
      expectError(res, 404, 'not_found');
    },
  );
});

describe('validation', () => {
  let token: string;

  beforeAll(async () => {
    token = await newUser();
  });

  it.each([
    ['missing title', { description: 'no title' }, 'title'],
    ['empty title', { title: '' }, 'title'],
    ['whitespace-only title', { title: '   ' }, 'title'],
    ['title over 200 characters', { title: 'x'.repeat(201) }, 'title'],
    ['non-string title', { title: 42 }, 'title'],
    ['non-boolean completed', { title: 'ok', completed: 'yes' }, 'completed'],
    ['non-string description', { title: 'ok', description: 5 }, 'description'],
    [
      'description over 2000 characters',
      { title: 'ok', description: 'd'.repeat(2001) },
      'description',
    ],
    // varchar(n) counts code points; U+FE0F is one, though validator.js's isLength skips it.
    ['title of 200 "a" + U+FE0F pairs (400 code points)', { title: VS16_PAIRS(200) }, 'title'],
    [
      'description of 2000 "a" + U+FE0F pairs',
      { title: 'ok', description: VS16_PAIRS(2000) },
      'description',
    ],
    ['title of 200 "a" and one U+FE0F', { title: `${'a'.repeat(200)}\uFE0F` }, 'title'],
    ['unknown field', { title: 'ok', priority: 'high' }, 'priority'],
    ['client-chosen id', { title: 'ok', id: randomUUID() }, 'id'],
  ])('POST with %s is 400 validation_failed and creates nothing', async (_name, body, field) => {
    const before = await todos(t, token).expect(200);
    const res = await t.http().post('/todos').set(bearer(token)).send(body);
    expectValidationFailed(res, field);
    const after = await todos(t, token).expect(200);
    expect(after.headers['x-total-count']).toBe(before.headers['x-total-count']);
  });

  it.each([
    ['empty title', { title: '' }, 'title'],
    ['whitespace-only title', { title: '   ' }, 'title'],
    ['title over 200 characters', { title: 'x'.repeat(201) }, 'title'],
    ['title of 200 "a" + U+FE0F pairs (400 code points)', { title: VS16_PAIRS(200) }, 'title'],
    ['description of 2000 "a" + U+FE0F pairs', { description: VS16_PAIRS(2000) }, 'description'],
    ['non-boolean completed', { completed: 'yes' }, 'completed'],
    ['non-string description', { description: 5 }, 'description'],
    ['unknown field', { priority: 'high' }, 'priority'],
    ['owner change', { user_id: randomUUID() }, 'user_id'],
    ['owner change (entity name)', { userId: randomUUID() }, 'userId'],
    ['valid fields mixed with an invalid one', { title: 'Changed', completed: 'yes' }, 'completed'],
  ])(
    'PATCH with %s is 400 validation_failed and the todo is unchanged',
    async (_name, body, field) => {
      const created = await createTodo(token, { title: 'Stable', description: 'as stored' });
      const res = await t.http().patch(`/todos/${created.id}`).set(bearer(token)).send(body);
      expectValidationFailed(res, field);
      expect(await getTodo(token, created.id)).toEqual(created);
    },
  );

  it.each(['get', 'patch', 'delete'] as const)(
    '%s /todos/not-a-uuid is 400 validation_failed naming id, never a 500',
    async (method) => {
      const req = t.http()[method]('/todos/not-a-uuid').set(bearer(token));
      const res = method === 'patch' ? await req.send({ completed: true }) : await req;
      expectValidationFailed(res, 'id');
    },
  );
});

describe('listing', () => {
  let token: string;
  /** In creation order: open, done, open, done, open. */
  let created: TodoBody[];

  beforeAll(async () => {
    token = await newUser();
    created = [];
    // Sequential on purpose: each insert is its own transaction, so creation order is time order.
    for (let i = 0; i < 5; i++) {
      created.push(await createTodo(token, { title: `item ${i}`, completed: i % 2 === 1 }));
    }
  });

  async function list(query: Record<string, string | number | boolean> = {}) {
    const res = await t.http().get('/todos').query(query).set(bearer(token)).expect(200);
    return { items: res.body as TodoBody[], total: res.headers['x-total-count'] };
  }

  it('lists the caller’s todos newest first with X-Total-Count', async () => {
    const { items, total } = await list();
    expect(items.map((todo) => todo.id)).toEqual(created.map((todo) => todo.id).reverse());
    expect(total).toBe('5');
    expect(items[0]).toEqual(created[4]);
  });

  it('pages with limit and offset; X-Total-Count is the total, not the page size', async () => {
    const newestFirst = created.map((todo) => todo.id).reverse();

    const first = await list({ limit: 2, offset: 0 });
    const second = await list({ limit: 2, offset: 2 });
    const third = await list({ limit: 2, offset: 4 });
    const beyond = await list({ limit: 2, offset: 10 });

    expect(first.items.map((todo) => todo.id)).toEqual(newestFirst.slice(0, 2));
    expect(second.items.map((todo) => todo.id)).toEqual(newestFirst.slice(2, 4));
    expect(third.items.map((todo) => todo.id)).toEqual(newestFirst.slice(4));
    expect(beyond.items).toEqual([]);
    for (const page of [first, second, third, beyond]) expect(page.total).toBe('5');
  });

  it('filters by completed=true and completed=false', async () => {
    const done = await list({ completed: 'true' });
    expect(done.items.map((todo) => todo.id)).toEqual([created[3].id, created[1].id]);
    expect(done.items.every((todo) => todo.completed)).toBe(true);
    expect(done.total).toBe('2');

    const open = await list({ completed: 'false' });
    expect(open.items.map((todo) => todo.id)).toEqual([
      created[4].id,
      created[2].id,
      created[0].id,
    ]);
    expect(open.items.every((todo) => !todo.completed)).toBe(true);
    expect(open.total).toBe('3');

    const openPage = await list({ completed: 'false', limit: 1, offset: 1 });
    expect(openPage.items.map((todo) => todo.id)).toEqual([created[2].id]);
    expect(openPage.total).toBe('3');
  });

  it('returns 20 items by default', async () => {
    const busy = await newUser();
    for (let i = 0; i < 21; i++) await createTodo(busy, { title: `bulk ${i}` });
    const res = await todos(t, busy).expect(200);
    expect(res.body).toHaveLength(20);
    expect(res.headers['x-total-count']).toBe('21');
  });

  it.each([
    ['limit=0', { limit: '0' }, 'limit'],
    ['limit=101', { limit: '101' }, 'limit'],
    ['limit=abc', { limit: 'abc' }, 'limit'],
    ['limit=1.5', { limit: '1.5' }, 'limit'],
    ['offset=-1', { offset: '-1' }, 'offset'],
    ['offset=abc', { offset: 'abc' }, 'offset'],
    ['completed=yes', { completed: 'yes' }, 'completed'],
    ['unknown parameter', { sort: 'title' }, 'sort'],
  ])('%s is 400 validation_failed', async (_name, query, field) => {
    const res = await t.http().get('/todos').query(query).set(bearer(token));
    expectValidationFailed(res, field);
  });

  it('accepts the boundaries limit=1 and limit=100', async () => {
    expect((await list({ limit: 1 })).items).toHaveLength(1);
    expect((await list({ limit: 100 })).items).toHaveLength(5);
  });
});

describe('isolation between users', () => {
  let ownerToken: string;
  let otherToken: string;
  let owned: TodoBody;

  beforeAll(async () => {
    ownerToken = await newUser();
    otherToken = await newUser();
    owned = await createTodo(ownerToken, { title: 'Private', description: 'mine only' });
  });

  it('another user cannot read the todo', async () => {
    const res = await t.http().get(`/todos/${owned.id}`).set(bearer(otherToken));
    expectError(res, 404, 'not_found');
  });

  it('another user cannot change the todo, and it stays unchanged', async () => {
    const res = await t
      .http()
      .patch(`/todos/${owned.id}`)
      .set(bearer(otherToken))
      .send({ title: 'Hijacked', completed: true, description: null });
    expectError(res, 404, 'not_found');
    expect(await getTodo(ownerToken, owned.id)).toEqual(owned);
  });

  it('another user cannot delete the todo, and it still exists', async () => {
    const res = await t.http().delete(`/todos/${owned.id}`).set(bearer(otherToken));
    expectError(res, 404, 'not_found');
    expect(await getTodo(ownerToken, owned.id)).toEqual(owned);
  });

  it('lists contain only the caller’s own todos', async () => {
    const theirs = await createTodo(otherToken, { title: 'Theirs' });

    const other = await todos(t, otherToken).expect(200);
    expect((other.body as TodoBody[]).map((todo) => todo.id)).toEqual([theirs.id]);
    expect(other.headers['x-total-count']).toBe('1');

    const owner = await todos(t, ownerToken).expect(200);
    expect((owner.body as TodoBody[]).map((todo) => todo.id)).toEqual([owned.id]);
    expect(owner.headers['x-total-count']).toBe('1');
  });
});

describe('authentication', () => {
  // A fixed id keeps the test names stable; the guard answers before any lookup.
  const someId = '00000000-0000-4000-8000-000000000000';
  const routes = [
    ['GET', '/todos'],
    ['POST', '/todos'],
    ['GET', `/todos/${someId}`],
    ['PATCH', `/todos/${someId}`],
    ['DELETE', `/todos/${someId}`],
  ] as const;

  const send = (method: (typeof routes)[number][0], path: string) => {
    const req = t.http()[method.toLowerCase() as 'get' | 'post' | 'patch' | 'delete'](path);
    return method === 'POST' || method === 'PATCH' ? req.send({ title: 'x' }) : req;
  };

  it.each(routes)('%s %s without a token is 401 token_missing', async (method, path) => {
    const res = await send(method, path);
    expectError(res, 401, 'token_missing');
    expect(res.headers['www-authenticate']).toMatch(/^Bearer /);
  });

  it.each(routes)('%s %s with a garbage token is 401 token_invalid', async (method, path) => {
    const res = await send(method, path).set(bearer('garbage.not.ajwt'));
    expectError(res, 401, 'token_invalid');
    expect(res.headers['www-authenticate']).toMatch(/^Bearer .*error="invalid_token"/);
  });

  it('a non-Bearer Authorization header counts as no token', async () => {
    const res = await t.http().get('/todos').set('Authorization', 'Basic dXNlcjpwYXNz');
    expectError(res, 401, 'token_missing');
    expect(res.headers['www-authenticate']).toMatch(/^Bearer /);
  });

  it('a refresh token is not accepted as an access token', async () => {
    const { refresh_token } = await register(t);
    const res = await todos(t, refresh_token);
    expectError(res, 401, 'token_invalid');
    expect(res.headers['www-authenticate']).toMatch(/^Bearer /);
  });
});
