import pg from 'pg';
import { type EntityManager, QueryFailedError } from 'typeorm';

export interface SqlResult<T> {
  rows: T[];
  rowCount: number;
}

// The pool TypeORM built with each node-postgres module handed to it.
const pools = new WeakMap<object, pg.Pool>();

/**
 * node-postgres for TypeORM's public `driver` option, with a Pool class that
 * records the instance TypeORM creates. Statements outside a transaction then
 * go straight to that pool, the one TypeORM manages with its limits and
 * timeouts, without reaching into the driver's internals. (The data source
 * has no read replicas, so the one pool it creates is the primary's.)
 */
export function recordingPgDriver(): typeof pg {
  const driver = { ...pg };
  driver.Pool = class RecordedPool extends pg.Pool {
    constructor(config?: pg.PoolConfig) {
      super(config);
      pools.set(driver, this);
    }
  };
  return driver;
}

function poolOf(manager: EntityManager): pg.Pool | undefined {
  const { driver } = manager.connection.options as { driver?: unknown };
  return typeof driver === 'object' && driver !== null ? pools.get(driver) : undefined;
}

/**
 * Runs one SQL statement on the manager's connection (the transaction's, when
 * inside one) and returns rows and affected count in one predictable shape.
 * Outside a transaction it goes to TypeORM's pool directly, as node-postgres'
 * `pool.query` (connect, run, give back): a TypeORM query runner per
 * statement costs measurably more CPU on the hot read paths (`npm run bench`).
 * Errors are TypeORM's QueryFailedError either way.
 */
export async function runSql<T = Record<string, unknown>>(
  manager: EntityManager,
  text: string,
  params: unknown[],
): Promise<SqlResult<T>> {
  const pool = manager.queryRunner ? undefined : poolOf(manager);
  if (pool) {
    try {
      const result = await pool.query(text, params);
      return { rows: result.rows as T[], rowCount: result.rowCount ?? result.rows.length };
    } catch (error) {
      throw new QueryFailedError(text, params, error as Error);
    }
  }
  const runner = manager.queryRunner ?? manager.dataSource.createQueryRunner();
  try {
    const result = await runner.query(text, params, true);
    return { rows: result.records as T[], rowCount: result.affected ?? result.records.length };
  } finally {
    if (!manager.queryRunner) await runner.release();
  }
}
