import type { Response } from 'supertest';
import {
  bearer,
  claimsOf,
  login,
  logout,
  PASSWORD,
  refresh,
  register,
  todos,
  type Tokens,
  uniqueUsername,
} from './support/requests.js';
import { useTestApp } from './support/test-app.js';

/**
 * Races through the real HTTP stack into real PostgreSQL. Requests are fired
 * together with Promise.all; the database's row locks and conditional updates,
 * not the order they happen to arrive in, must make the outcome correct.
 */
describe('concurrency (e2e)', () => {
  const t = useTestApp();

  const statuses = (responses: Response[]) => responses.map((r) => r.status);

  /** The session's row: one per session, whatever its rotations. */
  async function sessionRows(sid: unknown) {
    return t.db.query<{ generation: number; revoked_reason: string | null }[]>(
      'SELECT generation, revoked_reason FROM sessions WHERE id = $1',
      [sid],
    );
  }

  it('20 parallel refreshes with one token: no 5xx, one child, the session alive (RFC 9700 §4.14.2)', async () => {
    const first = await register(t);
    const sid = claimsOf(first.access_token).sid;

    const responses = await Promise.all(
      Array.from({ length: 20 }, () => refresh(t, first.refresh_token)),
    );

    expect(statuses(responses).filter((s) => s >= 500)).toEqual([]);
    // One caller rotates; the others present the parent of an unused child, so each gets that child.
    expect(statuses(responses)).toEqual(Array.from({ length: 20 }, () => 200));
    const children = new Set(responses.map((r) => (r.body as Tokens).refresh_token));
    expect(children.size).toBe(1);

    // Exactly one rotation: the session advanced by one generation, and lives.
    expect(await sessionRows(sid)).toEqual([{ generation: 1, revoked_reason: null }]);

    // The one child goes on rotating and its access tokens work.
    const [child] = children;
    const next = (await refresh(t, child).expect(200)).body as Tokens;
    await todos(t, next.access_token).expect(200);
  });

  it('parallel refreshes of the current token and a reused older token: the session ends revoked, never forked', async () => {
    const first = await register(t);
    let current: Tokens = first;
    // Three rotations: `first` is reuse whenever presented, whatever the grace.
    for (let i = 0; i < 3; i += 1) {
      current = (await refresh(t, current.refresh_token).expect(200)).body as Tokens;
    }
    const newest = current;

    const responses = await Promise.all([
      ...Array.from({ length: 5 }, () => refresh(t, newest.refresh_token)),
      refresh(t, first.refresh_token),
    ]);
    expect(statuses(responses).filter((s) => s >= 500)).toEqual([]);
    expect(responses[5].status).toBe(401);
    expect((responses[5].body as { code: string }).code).toBe('refresh_token_reused');
    // The others either got the one child (rotated or re-issued) or found the session revoked.
    for (const r of responses.slice(0, 5)) {
      expect([200, 401]).toContain(r.status);
      if (r.status === 401) expect((r.body as { code: string }).code).toBe('session_revoked');
    }
    const winners = responses.filter((res) => res.status === 200);
    expect(new Set(winners.map((r) => (r.body as Tokens).refresh_token)).size).toBeLessThanOrEqual(
      1,
    );

    const rows = await sessionRows(claimsOf(first.access_token).sid);
    expect(rows).toHaveLength(1);
    // At most the one rotation of the newest token happened before the revocation.
    expect([3, 4]).toContain(rows[0].generation);
    if (winners.length > 0) expect(rows[0].generation).toBe(4);
    expect(rows[0].revoked_reason).toBe('reuse_detected');
    // Whatever the winners received is dead now.
    for (const r of winners) {
      await refresh(t, (r.body as Tokens).refresh_token).expect(401);
      await todos(t, (r.body as Tokens).access_token).expect(401);
    }
  });

  it('a refresh racing a logout: after both, the session is dead whatever the order', async () => {
    for (let round = 0; round < 5; round += 1) {
      const tokens = await register(t);
      const [refreshRes, logoutRes] = await Promise.all([
        refresh(t, tokens.refresh_token),
        logout(t, tokens.access_token, { refresh_token: tokens.refresh_token }),
      ]);
      expect(logoutRes.status).toBe(200);
      expect([200, 401]).toContain(refreshRes.status);
      if (refreshRes.status === 401) {
        expect((refreshRes.body as { code: string }).code).toBe('session_revoked');
      } else {
        // It won the race, but what it got must not outlive the logout.
        const won = refreshRes.body as Tokens;
        await refresh(t, won.refresh_token).expect(401);
        await todos(t, won.access_token).expect(401);
      }
      await refresh(t, tokens.refresh_token).expect(401);
      const rows = await sessionRows(claimsOf(tokens.access_token).sid);
      // One row, rotated at most once, ended by the logout.
      expect(rows).toHaveLength(1);
      expect(rows[0].generation).toBe(refreshRes.status === 200 ? 1 : 0);
      expect(rows[0].revoked_reason).toBe('logout');
    }
  });

  it('concurrent logouts of one session all succeed and revoke it once', async () => {
    const tokens = await register(t);
    const other = await login(t, tokens.username);
    const responses = await Promise.all(
      Array.from({ length: 10 }, () =>
        logout(t, tokens.access_token, { refresh_token: tokens.refresh_token }),
      ),
    );
    expect(statuses(responses).filter((s) => s >= 500)).toEqual([]);
    // A logout that arrives after another committed finds its session revoked.
    for (const r of responses) {
      expect([200, 401]).toContain(r.status);
      if (r.status === 401) expect((r.body as { code: string }).code).toBe('session_revoked');
    }
    expect(responses.some((r) => r.status === 200)).toBe(true);
    await todos(t, tokens.access_token).expect(401);
    await todos(t, other.access_token).expect(200);
  });

  it('concurrent registrations of one username: exactly one account', async () => {
    const username = uniqueUsername('race');
    const responses = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        t
          .http()
          .post('/auth/register')
          .send({ username: i % 2 === 0 ? username : username.toUpperCase(), password: PASSWORD }),
      ),
    );
    const codes = statuses(responses).sort();
    expect(codes).toEqual([201, 409, 409, 409, 409, 409, 409, 409]);
    for (const r of responses.filter((res) => res.status === 409)) {
      expect((r.body as { code: string }).code).toBe('username_taken');
    }
    const users = await t.db.query<{ n: string }[]>(
      'SELECT count(*) AS n FROM users WHERE username_key = lower($1)',
      [username],
    );
    expect(users).toEqual([{ n: '1' }]);
  });

  it('parallel todo writes by one user all land and stay theirs', async () => {
    const a = await register(t);
    const b = await register(t);
    await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        t
          .http()
          .post('/todos')
          .set(bearer(i % 2 === 0 ? a.access_token : b.access_token))
          .send({ title: `todo ${i}` })
          .expect(201),
      ),
    );
    const listA = await t.http().get('/todos?limit=100').set(bearer(a.access_token)).expect(200);
    const listB = await t.http().get('/todos?limit=100').set(bearer(b.access_token)).expect(200);
    expect(listA.headers['x-total-count']).toBe('5');
    expect(listB.headers['x-total-count']).toBe('5');
  });

  it('a refresh racing a logout-all never leaves a usable token afterwards', async () => {
    for (let round = 0; round < 5; round += 1) {
      const a = await register(t);
      const b = await login(t, a.username);
      const [refreshRes, logoutAllRes] = await Promise.all([
        refresh(t, b.refresh_token),
        t.http().post('/auth/logout-all').set(bearer(a.access_token)).send({ scope: 'all' }),
      ]);
      expect(logoutAllRes.status).toBe(200);
      expect([200, 401]).toContain(refreshRes.status);
      const candidates: Tokens[] = [a, b];
      if (refreshRes.status === 200) candidates.push(refreshRes.body as Tokens);
      for (const tokens of candidates) {
        await todos(t, tokens.access_token).expect(401);
        await refresh(t, tokens.refresh_token).expect(401);
      }
      const live = await t.db.query<{ n: string }[]>(
        'SELECT count(*) AS n FROM sessions WHERE user_id = $1 AND revoked_at IS NULL',
        [claimsOf(a.access_token).sub],
      );
      expect(live).toEqual([{ n: '0' }]);
    }
  });

  it('a refresh racing a password change: the other session ends either way', async () => {
    for (let round = 0; round < 3; round += 1) {
      const a = await register(t);
      const b = await login(t, a.username);
      const [refreshRes, changeRes] = await Promise.all([
        refresh(t, b.refresh_token),
        t
          .http()
          .patch('/users/me/password')
          .set(bearer(a.access_token))
          .send({ current_password: PASSWORD, new_password: `${PASSWORD} v${round}` }),
      ]);
      expect(changeRes.status).toBe(204);
      expect([200, 401]).toContain(refreshRes.status);
      if (refreshRes.status === 200) {
        const won = refreshRes.body as Tokens;
        await todos(t, won.access_token).expect(401);
        await refresh(t, won.refresh_token).expect(401);
      }
      await todos(t, a.access_token).expect(200);
    }
  });

  it('a refresh racing account deletion: no 5xx, nothing survives', async () => {
    for (let round = 0; round < 3; round += 1) {
      const a = await register(t);
      const b = await login(t, a.username);
      const [refreshRes, deleteRes] = await Promise.all([
        refresh(t, b.refresh_token),
        t.http().delete('/users/me').set(bearer(a.access_token)).send({ password: PASSWORD }),
      ]);
      expect(deleteRes.status).toBe(204);
      expect([200, 401]).toContain(refreshRes.status);
      if (refreshRes.status === 200) {
        await todos(t, (refreshRes.body as Tokens).access_token).expect(401);
      }
      const rows = await t.db.query<{ n: string }[]>(
        'SELECT count(*) AS n FROM sessions WHERE user_id = $1',
        [claimsOf(a.access_token).sub],
      );
      expect(rows).toEqual([{ n: '0' }]);
    }
  });

  describe('with a session cap of 3', () => {
    const capped = useTestApp({ MAX_SESSIONS_PER_USER: '3' });

    it('10 concurrent logins of one user leave exactly 3 live sessions, the rest evicted', async () => {
      const username = uniqueUsername('cap');
      await register(capped, username);
      const responses = await Promise.all(
        Array.from({ length: 10 }, () =>
          capped.http().post('/auth/login').send({ username, password: PASSWORD }),
        ),
      );
      expect(statuses(responses)).toEqual(Array.from({ length: 10 }, () => 200));
      const userId = claimsOf((responses[0].body as Tokens).access_token).sub;
      const rows = await capped.db.query<{ revoked_reason: string | null }[]>(
        'SELECT revoked_reason FROM sessions WHERE user_id = $1',
        [userId],
      );
      expect(rows).toHaveLength(11);
      expect(rows.filter((r) => r.revoked_reason === null)).toHaveLength(3);
      expect(rows.filter((r) => r.revoked_reason === 'evicted')).toHaveLength(8);
      let usable = 0;
      for (const r of responses) {
        const res = await todos(capped, (r.body as Tokens).access_token);
        if (res.status === 200) usable += 1;
      }
      expect(usable).toBeLessThanOrEqual(3);
    });
  });
});
