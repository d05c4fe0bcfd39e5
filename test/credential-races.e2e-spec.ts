import pg from 'pg';
import type { Response } from 'supertest';
import { expectError } from './support/errors.js';
import {
  bearer,
  claimsOf,
  login,
  logout,
  me,
  PASSWORD,
  register,
  todos,
} from './support/requests.js';
import { useTestApp } from './support/test-app.js';
import { type HeldRowLock, holdRowLock } from './support/row-lock.js';

const NEW_PASSWORD = 'a brand new passphrase';

/**
 * Races between credential operations of one account (login, password
 * change, account deletion, logout) through the real HTTP stack into real
 * PostgreSQL. To make an interleaving certain rather than likely, a separate
 * connection (`holder`) takes a row lock on the user first; the requests are
 * sent while it holds it, the test waits until PostgreSQL reports them
 * waiting behind it, and then lets go. Whatever order the database then
 * picks, the outcome must be right.
 */
describe('credential races (e2e)', () => {
  const t = useTestApp();

  // Released even when a test fails half-way, or the database stays locked.
  let held: HeldRowLock | undefined;
  afterEach(async () => {
    await held?.release();
  });

  /** A connection holding one lock on a user row in an open transaction. */
  async function holdUserRow(userId: string, mode: 'NO KEY UPDATE' | 'KEY SHARE') {
    held = await holdRowLock(`SELECT 1 FROM users WHERE id = $1 FOR ${mode}`, [userId]);
    return held;
  }

  /** Sends a supertest request now (supertest sends only once awaited). */
  const send = (test: PromiseLike<Response>): Promise<Response> => Promise.resolve(test);

  async function liveSessions(userId: unknown): Promise<number> {
    const rows = await t.db.query<{ n: number }[]>(
      `SELECT count(*)::int AS n FROM sessions
        WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > now()`,
      [userId],
    );
    return rows[0].n;
  }

  it('logins with the old password that race a password change get 401, and no session', async () => {
    const owner = await register(t);
    const userId = claimsOf(owner.access_token).sub;
    const holder = await holdUserRow(userId as string, 'NO KEY UPDATE');
    const change = send(
      t
        .http()
        .patch('/users/me/password')
        .set(bearer(owner.access_token))
        .send({ current_password: PASSWORD, new_password: NEW_PASSWORD }),
    );
    await holder.waitForWaiters(1);
    // These logins prove the old password before the change commits.
    const logins = Array.from({ length: 6 }, () =>
      send(t.http().post('/auth/login').send({ username: owner.username, password: PASSWORD })),
    );
    await holder.waitForWaiters(7);
    await holder.release();
    const changed = await change;
    expect(changed.status).toBe(204);
    for (const res of await Promise.all(logins)) expectError(res, 401, 'invalid_credentials');

    // Only the session that changed the password is left, and only the new password works.
    expect(await liveSessions(userId)).toBe(1);
    await todos(t, owner.access_token).expect(200);
    expectError(
      await t.http().post('/auth/login').send({ username: owner.username, password: PASSWORD }),
      401,
      'invalid_credentials',
    );
    await login(t, owner.username, NEW_PASSWORD);
  });

  it('a login that races the deletion of its account gets 401, not 500', async () => {
    const owner = await register(t);
    const userId = claimsOf(owner.access_token).sub as string;
    const holder = await holdUserRow(userId, 'NO KEY UPDATE');
    const deletion = send(
      t.http().delete('/users/me').set(bearer(owner.access_token)).send({ password: PASSWORD }),
    );
    await holder.waitForWaiters(1);
    const loginAttempt = send(
      t.http().post('/auth/login').send({ username: owner.username, password: PASSWORD }),
    );
    await holder.waitForWaiters(2);
    await holder.release();
    expect((await deletion).status).toBe(204);
    expectError(await loginAttempt, 401, 'invalid_credentials');
    const rows = await t.db.query<unknown[]>('SELECT 1 FROM users WHERE id = $1', [userId]);
    expect(rows).toHaveLength(0);
  });

  it('logout racing account deletion: no deadlock, no 5xx, the account is gone', async () => {
    const owner = await register(t);
    const other = await login(t, owner.username);
    const userId = claimsOf(owner.access_token).sub as string;
    // KEY SHARE lets deletion lock the user row and its sessions but holds
    // back its DELETE, so logout arrives while deletion holds the sessions.
    const holder = await holdUserRow(userId, 'KEY SHARE');
    const deletion = send(
      t.http().delete('/users/me').set(bearer(other.access_token)).send({ password: PASSWORD }),
    );
    await holder.waitForWaiters(1);
    const logoutSent = send(logout(t, owner.access_token, { refresh_token: owner.refresh_token }));
    await holder.waitForWaiters(2);
    await holder.release();
    const [deleted, loggedOut] = await Promise.all([deletion, logoutSent]);
    expect(deleted.status).toBe(204);
    expect(loggedOut.status).toBe(200);
    const rows = await t.db.query<unknown[]>('SELECT 1 FROM users WHERE id = $1', [userId]);
    expect(rows).toHaveLength(0);
    expectError(await todos(t, owner.access_token), 401, 'session_revoked');
  });

  describe('with a real bcrypt cost', () => {
    const slow = useTestApp({ BCRYPT_COST: '10' });

    it('wrong-password changes and deletions never hold the user row lock while bcrypt runs', async () => {
      const res = await slow
        .http()
        .post('/auth/register')
        .send({ username: `slow_${Date.now()}`, password: PASSWORD })
        .expect(201);
      const token = (res.body as { access_token: string }).access_token;
      const userId = claimsOf(token).sub as string;

      const probe = new pg.Client({ connectionString: process.env.LINEAGE_TEST_DATABASE_URL });
      await probe.connect();
      let probes = 0;
      let locked = 0;
      let done = false;
      const probing = (async () => {
        while (!done) {
          probes += 1;
          await probe.query('BEGIN');
          try {
            await probe.query('SELECT 1 FROM users WHERE id = $1 FOR NO KEY UPDATE NOWAIT', [
              userId,
            ]);
          } catch (error) {
            if ((error as { code?: string }).code !== '55P03') throw error;
            locked += 1;
          } finally {
            await probe.query('ROLLBACK');
          }
        }
      })();
      try {
        const responses = await Promise.all([
          ...Array.from({ length: 3 }, () =>
            send(
              slow
                .http()
                .patch('/users/me/password')
                .set(bearer(token))
                .send({ current_password: 'not the password', new_password: NEW_PASSWORD }),
            ),
          ),
          ...Array.from({ length: 2 }, () =>
            send(
              slow
                .http()
                .delete('/users/me')
                .set(bearer(token))
                .send({ password: 'not the password' }),
            ),
          ),
        ]);
        for (const r of responses) expectError(r, 403, 'invalid_password');
      } finally {
        done = true;
        await probing;
        await probe.end();
      }
      // The probe ran all along, and never found the row locked.
      expect(probes).toBeGreaterThan(0);
      expect(locked).toBe(0);
      await me(slow, token).expect(200);
    });
  });
});
