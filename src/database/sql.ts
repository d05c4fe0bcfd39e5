import { type EntityManager, QueryFailedError } from 'typeorm';

export interface SqlResult<T> {
  rows: T[];
  rowCount: number;
}

interface PgPool {
  query(text: string, params: unknown[]): Promise<{ rows: unknown[]; rowCount: number | null }>;
}

/**
 * Runs one SQL statement on the manager's connection (the transaction's, when
 * inside one) and returns rows and affected count in one predictable shape.
 * Outside a transaction it goes straight to the driver's pool: a TypeORM
 * query runner per statement (events, bookkeeping) measurably slowed the hot
 * read paths in `npm run bench`. Errors keep TypeORM's QueryFailedError shape.
 */
export async function runSql<T = Record<string, unknown>>(
  manager: EntityManager,
  text: string,
  params: unknown[],
): Promise<SqlResult<T>> {
  if (!manager.queryRunner) {
    const pool = (manager.connection.driver as unknown as { master?: PgPool }).master;
    if (pool) {
      try {
        const result = await pool.query(text, params);
        return { rows: result.rows as T[], rowCount: result.rowCount ?? result.rows.length };
      } catch (error) {
        throw new QueryFailedError(text, params, error as Error);
      }
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
