import type { EntityManager } from 'typeorm';

export interface SqlResult<T> {
  rows: T[];
  rowCount: number;
}

/**
 * Runs one SQL statement on the manager's connection (the transaction's, when
 * inside one) and returns rows and affected count in one predictable shape.
 * Outside a transaction each statement gets a query runner of its own, which
 * takes a pooled connection and gives it back: only TypeORM's public API, so
 * an upgrade cannot silently change how statements reach PostgreSQL, and
 * TypeORM's query logging and connection-error handling apply to every
 * statement. Errors are TypeORM's QueryFailedError.
 */
export async function runSql<T = Record<string, unknown>>(
  manager: EntityManager,
  text: string,
  params: unknown[],
): Promise<SqlResult<T>> {
  const runner = manager.queryRunner ?? manager.dataSource.createQueryRunner();
  try {
    const result = await runner.query(text, params, true);
    return { rows: result.records as T[], rowCount: result.affected ?? result.records.length };
  } finally {
    if (!manager.queryRunner) await runner.release();
  }
}
