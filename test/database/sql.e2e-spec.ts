import { DataSource, type Logger, QueryFailedError } from 'typeorm';
import { dataSourceOptions } from '../../src/database/data-source-options.js';
import { runSql } from '../../src/database/sql.js';

/**
 * runSql against the real e2e database, through nothing but TypeORM's public
 * API: what TypeORM does for a statement (logging, error wrapping, giving the
 * connection back) happens for raw statements too, in a transaction or not.
 */
describe('runSql (e2e, PostgreSQL)', () => {
  const logged: string[] = [];
  const failed: string[] = [];
  const logger: Logger = {
    logQuery: (query) => void logged.push(query),
    logQueryError: (_error, query) => void failed.push(query),
    logQuerySlow: () => undefined,
    logSchemaBuild: () => undefined,
    logMigration: () => undefined,
    log: () => undefined,
  };
  let dataSource: DataSource;

  beforeAll(async () => {
    const url = process.env.LINEAGE_TEST_DATABASE_URL;
    if (!url) throw new Error('e2e database not prepared (global setup did not run)');
    dataSource = await new DataSource({ ...dataSourceOptions(url), logger }).initialize();
  });

  afterAll(async () => {
    await dataSource?.destroy();
  });

  it('runs a statement outside a transaction through a TypeORM query runner', async () => {
    const text = 'SELECT $1::int AS n, $2::text AS label';
    const result = await runSql<{ n: number; label: string }>(dataSource.manager, text, [
      7,
      'seven',
    ]);
    expect(result).toEqual({ rows: [{ n: 7, label: 'seven' }], rowCount: 1 });
    // TypeORM's own logger saw it: the statement took TypeORM's public path.
    expect(logged).toContain(text);
  });

  it("runs on the transaction's connection and reports affected rows", async () => {
    const counts = await dataSource.transaction(async (manager) => {
      const pid = async () =>
        (await runSql<{ pid: number }>(manager, 'SELECT pg_backend_pid() AS pid', [])).rows[0].pid;
      const first = await pid();
      await runSql(manager, 'CREATE TEMP TABLE sql_spec (x int) ON COMMIT DROP', []);
      const inserted = await runSql(
        manager,
        'INSERT INTO sql_spec SELECT generate_series(1, 3)',
        [],
      );
      const updated = await runSql(manager, 'UPDATE sql_spec SET x = x + 1 WHERE x >= $1', [2]);
      const none = await runSql(manager, 'DELETE FROM sql_spec WHERE x > $1', [100]);
      return { same: first === (await pid()), inserted, updated, none };
    });
    expect(counts).toEqual({
      same: true,
      inserted: { rows: [], rowCount: 3 },
      updated: { rows: [], rowCount: 2 },
      none: { rows: [], rowCount: 0 },
    });
  });

  it('fails with QueryFailedError and gives every connection back', async () => {
    const text = 'SELECT * FROM no_such_table WHERE id = $1';
    // More failures than the pool has connections (10): none may be kept.
    for (let i = 0; i < 15; i++) {
      const error = await runSql(dataSource.manager, text, [i]).then(
        () => undefined,
        (thrown: unknown) => thrown,
      );
      expect(error).toBeInstanceOf(QueryFailedError);
      expect((error as QueryFailedError & { driverError: { code: string } }).driverError.code).toBe(
        '42P01',
      );
    }
    expect(failed.filter((query) => query === text)).toHaveLength(15);
    const after = await runSql<{ one: number }>(dataSource.manager, 'SELECT 1 AS one', []);
    expect(after.rows).toEqual([{ one: 1 }]);
  });
});
