import type { Pool } from 'pg';
import { useTestApp } from '../support/test-app.js';

/** The node-postgres pool under the app's data source. */
function poolOf(driver: unknown): Pool {
  return (driver as { master: Pool }).master;
}

describe('DATABASE_POOL_SIZE', () => {
  const t = useTestApp({ DATABASE_POOL_SIZE: '3' });

  it('bounds the pool: a burst of requests never opens more connections', async () => {
    const pool = poolOf(t.db.driver);
    expect(pool.options.max).toBe(3);
    const statuses = await Promise.all(
      Array.from({ length: 20 }, () => t.http().get('/health/ready').then((res) => res.status)),
    );
    expect(statuses).toEqual(Array.from({ length: 20 }, () => 200));
    expect(pool.totalCount).toBeGreaterThan(0);
    expect(pool.totalCount).toBeLessThanOrEqual(3);
  });
});
