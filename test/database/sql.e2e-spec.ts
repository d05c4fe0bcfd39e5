import { jest } from '@jest/globals';
import pg from 'pg';
import { DataSource, QueryFailedError } from 'typeorm';
import { dataSourceOptions } from '../../src/database/data-source-options.js';
import { ENTITIES } from '../../src/entities.js';
import { runSql } from '../../src/database/sql.js';

/**
 * runSql against the real e2e database: one result shape and TypeORM's error
 * type, on the transaction's connection inside one and on the data source's
 * own pool outside, which it finds through TypeORM's public `driver` option.
 */
describe('runSql (e2e, PostgreSQL)', () => {
  const APPLICATION = 'lineage-sql-spec';
  let dataSource: DataSource;

  beforeAll(async () => {
    const url = process.env.LINEAGE_TEST_DATABASE_URL;
    if (!url) throw new Error('e2e database not prepared (global setup did not run)');
    const options = { ...dataSourceOptions(url, ENTITIES), applicationName: APPLICATION };
    dataSource = await new DataSource(options).initialize();
  });

  afterAll(async () => {
    await dataSource?.destroy();
  });

  it("runs a statement outside a transaction on the data source's own pool", async () => {
    const text =
      "SELECT $1::int AS n, $2::text AS label, current_setting('application_name') AS app";
    const result = await runSql<{ n: number; label: string; app: string }>(
      dataSource.manager,
      text,
      [7, 'seven'],
    );
    expect(result).toEqual({ rows: [{ n: 7, label: 'seven', app: APPLICATION }], rowCount: 1 });
  });

  it("outside a transaction, takes the pool's own one-statement path (no query runner)", async () => {
    const poolQuery = jest.spyOn(pg.Pool.prototype, 'query');
    const createQueryRunner = jest.spyOn(dataSource, 'createQueryRunner');
    try {
      await runSql(dataSource.manager, 'SELECT 1 AS one', []);
      expect(poolQuery).toHaveBeenCalledTimes(1);
      expect(createQueryRunner).not.toHaveBeenCalled();
    } finally {
      poolQuery.mockRestore();
      createQueryRunner.mockRestore();
    }
  });

  it("never reads TypeORM's internal driver.master", async () => {
    const driver = dataSource.driver as object;
    const own = Object.getOwnPropertyDescriptor(driver, 'master');
    if (!own) throw new Error('expected TypeORM to keep its pool on driver.master');
    let reads = 0;
    Object.defineProperty(driver, 'master', {
      configurable: true,
      get: () => {
        reads += 1;
        return own.value as unknown;
      },
    });
    try {
      await runSql(dataSource.manager, 'SELECT 1 AS one', []);
      expect(reads).toBe(0);
    } finally {
      Object.defineProperty(driver, 'master', own);
    }
  });

  it('works the same on a data source given the stock node-postgres module', async () => {
    const url = process.env.LINEAGE_TEST_DATABASE_URL!;
    const stock = await new DataSource({
      ...dataSourceOptions(url, ENTITIES),
      driver: undefined,
    }).initialize();
    try {
      const result = await runSql<{ n: number }>(stock.manager, 'SELECT $1::int AS n', [3]);
      expect(result).toEqual({ rows: [{ n: 3 }], rowCount: 1 });
      const error = await runSql(stock.manager, 'SELECT * FROM no_such_table', []).catch(
        (thrown: unknown) => thrown,
      );
      expect(error).toBeInstanceOf(QueryFailedError);
    } finally {
      await stock.destroy();
    }
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
    const after = await runSql<{ one: number }>(dataSource.manager, 'SELECT 1 AS one', []);
    expect(after.rows).toEqual([{ one: 1 }]);
  });
});
