import { setTimeout as sleep } from 'node:timers/promises';
import { jest } from '@jest/globals';
import { SessionRevocations } from '../src/auth/session-revocations.js';
import { TokenFamilyRepository } from '../src/auth/token-family.repository.js';
import {
  bearer,
  claimsOf,
  login,
  PASSWORD,
  register,
  startTestApp,
  type TestApp,
} from './support/test-app.js';

/**
 * Each instance keeps an in-memory view of ended sessions (no database round
 * trip per request), exact on the instance that ends a session and fed by
 * PostgreSQL LISTEN/NOTIFY for the others, resynced at start and on reconnect.
 */
describe('session revocation feed across instances (e2e)', () => {
  let a: TestApp;
  let b: TestApp;

  beforeAll(async () => {
    a = await startTestApp();
    b = await startTestApp();
  });

  afterAll(async () => {
    await b.close();
    await a.close();
  });

  const todos = (t: TestApp, token: string) => t.http().get('/todos').set(bearer(token));

  /** Polls until the instance refuses the token; the feed is asynchronous, but bounded. */
  async function refusedBy(t: TestApp, token: string): Promise<number> {
    for (let i = 0; i < 100; i += 1) {
      const res = await todos(t, token);
      if (res.status === 401) return 401;
      await sleep(50);
    }
    return (await todos(t, token)).status;
  }

  it('answers from memory: the session is read from the database once, not per request', async () => {
    const user = await register(a);
    const findSession = jest.spyOn(a.app.get(TokenFamilyRepository), 'findSession');
    try {
      for (let i = 0; i < 10; i += 1) await todos(a, user.access_token).expect(200);
      expect(findSession.mock.calls.length).toBeLessThanOrEqual(1);
    } finally {
      findSession.mockRestore();
    }
  });

  it('logout on one instance: refused there at once, and on the other through the feed', async () => {
    const user = await register(a);
    await todos(a, user.access_token).expect(200);
    await todos(b, user.access_token).expect(200);
    await a.http().post('/auth/logout').set(bearer(user.access_token)).expect(200);
    await todos(a, user.access_token).expect(401);
    expect(await refusedBy(b, user.access_token)).toBe(401);
  });

  it('an instance that starts later learns earlier revocations and deletions (resync at start)', async () => {
    const revokedUser = await register(a);
    await a.http().post('/auth/logout').set(bearer(revokedUser.access_token)).expect(200);
    const deletedUser = await register(a);
    await a
      .http()
      .delete('/users/me')
      .set(bearer(deletedUser.access_token))
      .send({ password: PASSWORD })
      .expect(204);

    const late = await startTestApp();
    try {
      expect(late.app.get(SessionRevocations).isReady).toBe(true);
      await todos(late, revokedUser.access_token).expect(401);
      await todos(late, deletedUser.access_token).expect(401);
    } finally {
      await late.close();
    }
  });

  it('a deleted account is refused on the other instance too', async () => {
    const user = await register(a);
    await todos(b, user.access_token).expect(200);
    await a
      .http()
      .delete('/users/me')
      .set(bearer(user.access_token))
      .send({ password: PASSWORD })
      .expect(204);
    expect(await refusedBy(b, user.access_token)).toBe(401);
  });

  it('a revocation made while the feed is down is caught up on reconnect', async () => {
    const user = await register(a);
    const other = await login(a, user.username);
    await todos(b, user.access_token).expect(200);
    const feed = b.app.get(SessionRevocations);

    // Cut every instance's feed connection, then end the session behind the feed's back.
    await b.db.query(
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'lineage-session-feed'`,
    );
    await b.db.query(
      `UPDATE token_families SET revoked_at = now(), revoked_reason = 'logout' WHERE id = $1`,
      [claimsOf(user.access_token).sid],
    );
    // Whether b is still reconnecting (it asks the database) or has resynced, it refuses.
    await todos(b, user.access_token).expect(401);
    for (let i = 0; i < 200 && !feed.isReady; i += 1) await sleep(50);
    expect(feed.isReady).toBe(true);
    await todos(b, user.access_token).expect(401);
    await todos(b, other.access_token).expect(200);
  });
});
