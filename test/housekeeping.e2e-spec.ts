import { SessionHousekeeping } from '../src/auth/sessions/session-housekeeping.service.js';
import { expectError } from './support/errors.js';
import {
  claimsOf,
  expectEmpty200,
  login,
  me,
  refresh,
  register,
  revoke,
  type Tokens,
} from './support/requests.js';
import { useTestApp } from './support/test-app.js';

const DAY_MS = 24 * 60 * 60 * 1000;
const daysAgo = (days: number) => new Date(Date.now() - days * DAY_MS);

/** What housekeeping deletes, and what it keeps, by the retention settings. */
describe('housekeeping (e2e)', () => {
  const t = useTestApp();

  describe('housekeeping (SessionHousekeeping.run)', () => {
    it('removes only sessions and events past retention', async () => {
      const housekeeping = t.app.get(SessionHousekeeping);
      const registered = await register(t);
      const userId = claimsOf(registered.access_token).sub as string;
      const sidOf = (tokens: Tokens) => claimsOf(tokens.access_token).sid as string;
      const { username } = registered;

      const expiredLongAgo = await login(t, username); // X: past both lifetimes
      const idleLongAgo = await login(t, username); // U: idle-expired, absolute end ahead
      const revokedLongAgo = await login(t, username); // Y
      const live = await login(t, username); // Z
      const revokedYesterday = await login(t, username); // W
      const expiredYesterday = await login(t, username); // V
      // Z rotates once: still one row, which carries everything.
      const liveNext = (await refresh(t, live.refresh_token).expect(200)).body as Tokens;
      expectEmpty200(await revoke(t, { token: revokedLongAgo.refresh_token }));
      expectEmpty200(await revoke(t, { token: revokedYesterday.refresh_token }));

      const [X, U, Y, Z, W, V] = [
        expiredLongAgo,
        idleLongAgo,
        revokedLongAgo,
        live,
        revokedYesterday,
        expiredYesterday,
      ].map(sidOf);
      await t.db.query(
        `UPDATE sessions
            SET created_at = $2, rotated_at = $2, last_used_at = $2, expires_at = $3,
                absolute_expires_at = $3
          WHERE id = $1`,
        [X, daysAgo(40), daysAgo(30)],
      );
      await t.db.query(
        'UPDATE sessions SET rotated_at = $2, last_used_at = $2, expires_at = $3 WHERE id = $1',
        [U, daysAgo(20), daysAgo(10)],
      );
      await t.db.query('UPDATE sessions SET revoked_at = $2 WHERE id = $1', [Y, daysAgo(30)]);
      await t.db.query('UPDATE sessions SET revoked_at = $2 WHERE id = $1', [W, daysAgo(1)]);
      await t.db.query('UPDATE sessions SET expires_at = $2 WHERE id = $1', [V, daysAgo(1)]);

      // The trigger forbids backdating events, so old ones are inserted as such.
      const insertEvent = async (occurredAt: Date) => {
        const [row] = await t.db.query<{ id: string }[]>(
          `INSERT INTO auth_events (occurred_at, type, user_id, session_id)
           VALUES ($1, 'login_succeeded', $2, $3) RETURNING id`,
          [occurredAt, userId, X],
        );
        return row.id;
      };
      const ancientEvent = await insertEvent(daysAgo(91));
      const oldButKeptEvent = await insertEvent(daysAgo(89));
      const recentEvents = await t.db.query<{ id: string }[]>(
        'SELECT id FROM auth_events WHERE user_id = $1 AND occurred_at > $2 ORDER BY id',
        [userId, daysAgo(1)],
      );
      // registered, 6 × login_succeeded, 2 × session_revoked; the rotation wrote none.
      expect(recentEvents).toHaveLength(9);

      const sessionsOfUser = async () =>
        (
          await t.db.query<{ id: string; generation: number }[]>(
            'SELECT id, generation FROM sessions WHERE user_id = $1',
            [userId],
          )
        ).sort((a, b) => a.id.localeCompare(b.id));
      // One row per session, rotated or not.
      expect((await sessionsOfUser()).map((s) => s.id)).toEqual(
        [sidOf(registered), X, U, Y, Z, W, V].sort(),
      );

      const result = await housekeeping.run(new Date());
      expect(result).not.toBeNull();
      // Nothing is stored per refresh token, so there is nothing of the kind to count.
      expect(result).not.toHaveProperty('refreshTokens');
      // Counts cover other test files' rows too; ours are a lower bound.
      expect(result!.sessions).toBeGreaterThanOrEqual(3);
      expect(result!.events).toBeGreaterThanOrEqual(1);

      const remaining = await sessionsOfUser();
      expect(remaining.map((s) => s.id)).toEqual([sidOf(registered), Z, W, V].sort());
      // Z kept its state: the generation its rotation reached.
      expect(remaining.find((s) => s.id === Z)?.generation).toBe(1);

      const eventIds = (
        await t.db.query<{ id: string }[]>(
          'SELECT id FROM auth_events WHERE user_id = $1 ORDER BY id',
          [userId],
        )
      ).map((e) => e.id);
      expect(eventIds).not.toContain(ancientEvent);
      expect(eventIds).toContain(oldButKeptEvent);
      for (const { id } of recentEvents) expect(eventIds).toContain(id);

      // What is left still behaves: Z rotates, W stays revoked, X's and U's sessions are gone.
      await refresh(t, liveNext.refresh_token).expect(200);
      expectError(await refresh(t, revokedYesterday.refresh_token), 401, 'session_revoked');
      expectError(await refresh(t, expiredYesterday.refresh_token), 401, 'session_expired');
      expectError(await refresh(t, expiredLongAgo.refresh_token), 401, 'session_revoked');
      expectError(await refresh(t, idleLongAgo.refresh_token), 401, 'session_revoked');
      expectError(await me(t, expiredLongAgo.access_token), 401, 'session_revoked');
      await me(t, registered.access_token).expect(200);
    });
  });
});
