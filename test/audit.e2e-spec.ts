import { expectError } from './support/errors.js';
import {
  type AuthEvent,
  bearer,
  claimsOf,
  listEvents,
  login,
  PASSWORD,
  refresh,
  register,
  type Tokens,
  uniqueUsername,
} from './support/requests.js';
import { useTestApp } from './support/test-app.js';

/** The audit trail a user sees of their own account (GET /users/me/events). */
describe('audit trail (e2e)', () => {
  const t = useTestApp();

  const events = (accessToken: string, query = '') =>
    t.http().get(`/users/me/events${query}`).set(bearer(accessToken));

  describe('audit trail (GET /users/me/events)', () => {
    it('shows a reuse-detected revocation to the user, newest first, without secrets', async () => {
      const agent = `audit/${uniqueUsername('ua')}`;
      const username = uniqueUsername();
      const regRes = await t
        .http()
        .post('/auth/register')
        .set('User-Agent', agent)
        .send({ username, password: PASSWORD })
        .expect(201);
      const first = regRes.body as Tokens;
      const sid = claimsOf(first.access_token).sid as string;
      const userId = claimsOf(first.access_token).sub as string;
      // Rotations write no event: a routine refresh shows only in last_used_at.
      const second = (await refresh(t, first.refresh_token).expect(200)).body as Tokens;
      const third = (await refresh(t, second.refresh_token).expect(200)).body as Tokens;
      // The parent again, from the client that logged in: a re-issue, recorded.
      const reissued = (await refresh(t, second.refresh_token).set('User-Agent', agent).expect(200))
        .body as Tokens;
      expect(reissued.refresh_token).toBe(third.refresh_token);
      // The grandparent inside the grace: refused, recorded, the session kept.
      expectError(await refresh(t, first.refresh_token), 409, 'refresh_token_superseded');
      const fourth = (await refresh(t, third.refresh_token).expect(200)).body as Tokens;
      // Now three generations behind: reuse.
      expectError(await refresh(t, first.refresh_token), 401, 'refresh_token_reused');
      const wrongPassword = 'wrong password, not stored';
      expectError(
        await t.http().post('/auth/login').send({ username, password: wrongPassword }),
        401,
        'invalid_credentials',
      );
      const fresh = await login(t, username);
      const freshSid = claimsOf(fresh.access_token).sid as string;

      const list = await listEvents(t, fresh.access_token);
      expect(list.map((e) => [e.type, e.session_id, e.reason])).toEqual([
        ['login_succeeded', freshSid, null],
        ['login_failed', null, null],
        ['reuse_detected', sid, 'older_generation'],
        ['session_revoked', sid, 'reuse_detected'],
        ['refresh_superseded', sid, null],
        ['refresh_reissued', sid, 'same_client'],
        ['registered', sid, null],
      ]);
      // Newest first by id and time; ids are decimal strings (bigint).
      const ids = list.map((e) => BigInt(e.id));
      for (let i = 1; i < ids.length; i += 1) expect(ids[i] < ids[i - 1]).toBe(true);
      const times = list.map((e) => Date.parse(e.occurred_at));
      for (let i = 1; i < times.length; i += 1) expect(times[i]).toBeLessThanOrEqual(times[i - 1]);
      for (const event of list) {
        expect(Object.keys(event).sort()).toEqual(
          ['id', 'ip', 'occurred_at', 'reason', 'session_id', 'type', 'user_agent'].sort(),
        );
        expect(event.id).toMatch(/^[1-9]\d*$/);
        expect(event.occurred_at).toBe(new Date(event.occurred_at).toISOString());
        expect(event.ip).toMatch(/127\.0\.0\.1$|^::1$/);
      }
      expect(list[list.length - 1].user_agent).toBe(agent);

      // The database rows hold no token and no password, in any form.
      const rows = JSON.stringify(
        await t.db.query('SELECT * FROM auth_events WHERE user_id = $1', [userId]),
      );
      const secrets = [first, second, third, reissued, fourth, fresh].flatMap((tokens) => [
        tokens.access_token,
        tokens.refresh_token,
        tokens.access_token.split('.')[2],
        tokens.refresh_token.split('.')[2],
      ]);
      for (const secret of [...secrets, PASSWORD, wrongPassword]) {
        expect(rows).not.toContain(secret);
      }
    });

    it('a failed login with an unknown username is recorded without a user', async () => {
      const agent = `audit/${uniqueUsername('ghost-ua')}`;
      const ghost = uniqueUsername('ghost');
      const attempted = 'ghost password guess';
      expectError(
        await t
          .http()
          .post('/auth/login')
          .set('User-Agent', agent)
          .send({ username: ghost, password: attempted }),
        401,
        'invalid_credentials',
      );
      const rows = await t.db.query<{ type: string; user_id: string | null }[]>(
        'SELECT * FROM auth_events WHERE user_agent = $1',
        [agent],
      );
      expect(rows).toHaveLength(1);
      expect(rows[0]).toMatchObject({ type: 'login_failed', user_id: null, session_id: null });
      const dump = JSON.stringify(rows);
      expect(dump).not.toContain(attempted);
      expect(dump).not.toContain(ghost);
    });

    it('pages with limit and before, without overlap or gaps', async () => {
      let previous: Tokens = await register(t);
      let current = previous;
      for (let i = 0; i < 4; i += 1) {
        previous = current;
        current = (await refresh(t, current.refresh_token).expect(200)).body as Tokens;
      }
      // Rotations leave no event.
      expect((await listEvents(t, current.access_token)).map((e) => e.type)).toEqual([
        'registered',
      ]);
      // Each re-issue of the newest token (its parent presented again) leaves one.
      for (let i = 0; i < 4; i += 1) {
        const again = (await refresh(t, previous.refresh_token).expect(200)).body as Tokens;
        expect(again.refresh_token).toBe(current.refresh_token);
      }
      const everything = await listEvents(t, current.access_token);
      expect(everything.map((e) => e.type)).toEqual([
        'refresh_reissued',
        'refresh_reissued',
        'refresh_reissued',
        'refresh_reissued',
        'registered',
      ]);

      const pages: AuthEvent[][] = [];
      let query = '?limit=2';
      // Bounded, so a cursor that fails to advance fails the test instead of hanging it.
      for (let guard = 0; guard < 10; guard += 1) {
        const page = (await events(current.access_token, query).expect(200)).body as AuthEvent[];
        if (page.length === 0) break;
        expect(page.length).toBeLessThanOrEqual(2);
        pages.push(page);
        query = `?limit=2&before=${page[page.length - 1].id}`;
      }
      expect(pages.map((page) => page.length)).toEqual([2, 2, 1]);
      expect(pages.flat()).toEqual(everything);

      // The default page is 20; the user has 5 events.
      const byDefault = (await events(current.access_token).expect(200)).body as AuthEvent[];
      expect(byDefault).toEqual(everything);
    });

    it("never shows another user's events", async () => {
      const alice = await register(t);
      const bob = await register(t);
      expectError(
        await t
          .http()
          .post('/auth/login')
          .send({ username: alice.username, password: 'nope!nope!' }),
        401,
        'invalid_credentials',
      );
      await refresh(t, bob.refresh_token).expect(200);
      // Bob's login token again: its child is re-issued, which is recorded.
      await refresh(t, bob.refresh_token).expect(200);

      const aliceEvents = await listEvents(t, alice.access_token);
      const bobEvents = await listEvents(t, bob.access_token);
      expect(aliceEvents.map((e) => e.type)).toEqual(['login_failed', 'registered']);
      expect(bobEvents.map((e) => e.type)).toEqual(['refresh_reissued', 'registered']);
      const bobSid = claimsOf(bob.access_token).sid;
      expect(bobEvents.every((e) => e.session_id === bobSid)).toBe(true);
      const aliceIds = new Set(aliceEvents.map((e) => e.id));
      expect(bobEvents.some((e) => aliceIds.has(e.id))).toBe(false);

      // A `before` cursor from someone else's trail still yields only the caller's events.
      const paged = (await events(bob.access_token, `?before=${aliceEvents[0].id}`).expect(200))
        .body as AuthEvent[];
      expect(paged.every((e) => e.session_id === bobSid)).toBe(true);
    });

    it('requires an access token', async () => {
      expectError(await t.http().get('/users/me/events'), 401, 'token_missing');
    });

    it.each([
      ['limit=0'],
      ['limit=101'],
      ['limit=abc'],
      ['limit=1.5'],
      ['limit=-1'],
      ['before=0'],
      ['before=abc'],
      ['before=-5'],
      ['before=1.5'],
      [`before=${'9'.repeat(19)}`],
    ])('refuses %s with validation_failed', async (query) => {
      const tokens = await register(t);
      expectError(await events(tokens.access_token, `?${query}`), 400, 'validation_failed');
    });

    it('auth_events is append-only: UPDATE is refused by the database', async () => {
      const tokens = await register(t);
      const [row] = await t.db.query<{ id: string }[]>(
        'SELECT id FROM auth_events WHERE user_id = $1',
        [claimsOf(tokens.access_token).sub],
      );
      await expect(
        t.db.query(`UPDATE auth_events SET type = 'x' WHERE id = $1`, [row.id]),
      ).rejects.toThrow(/append-only/);
      const after = await listEvents(t, tokens.access_token);
      expect(after.map((e) => [e.id, e.type])).toEqual([[row.id, 'registered']]);
    });
  });
});
