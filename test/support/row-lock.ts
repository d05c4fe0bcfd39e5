import pg from 'pg';

/** A row lock held by a connection of its own, in an open transaction. */
export interface HeldRowLock {
  /** Backends waiting behind the holder, directly or behind another waiter. */
  waiters(): Promise<number>;
  /** Polls until `n` backends wait (bounded by the test's timeout; not a timing assertion). */
  waitForWaiters(n: number): Promise<void>;
  /** Commits and disconnects; harmless to repeat. */
  release(): Promise<void>;
}

/**
 * How the race tests force an interleaving: a separate connection takes a row
 * lock (`lockSql`, e.g. `SELECT 1 FROM sessions WHERE id = $1 FOR UPDATE`),
 * the racing requests are fired, the test waits until they all queue behind
 * it (pg_blocking_pids), then releases it. The waiters are counted from
 * another connection: inside the holder's transaction pg_stat_activity would
 * stay the snapshot it first read.
 */
export async function holdRowLock(lockSql: string, params: unknown[]): Promise<HeldRowLock> {
  const url = process.env.LINEAGE_TEST_DATABASE_URL;
  const holder = new pg.Client({ connectionString: url });
  const monitor = new pg.Client({ connectionString: url });
  await Promise.all([holder.connect(), monitor.connect()]);
  await holder.query('BEGIN');
  await holder.query(lockSql, params);
  const { rows } = await holder.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
  const pid = rows[0].pid;
  let released = false;
  const waiters = async (): Promise<number> => {
    const result = await monitor.query<{ n: number }>(
      `WITH RECURSIVE behind(pid) AS (
           SELECT $1::int
            UNION
           SELECT a.pid FROM pg_stat_activity a JOIN behind b ON b.pid = ANY(pg_blocking_pids(a.pid))
         )
         SELECT count(*)::int - 1 AS n FROM behind`,
      [pid],
    );
    return result.rows[0].n;
  };
  return {
    waiters,
    async waitForWaiters(n) {
      while ((await waiters()) < n) await new Promise((r) => setTimeout(r, 5));
    },
    async release() {
      if (released) return;
      released = true;
      await holder.query('COMMIT');
      await Promise.all([holder.end(), monitor.end()]);
    },
  };
}
