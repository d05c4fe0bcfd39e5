import { Injectable, Logger } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, type EntityManager } from 'typeorm';
import { isTransactionConflict, sqlState } from '../common/pg-errors.js';

// Runs of one transaction that a deadlock or serialization failure aborted.
const TRANSACTION_ATTEMPTS = 3;

/**
 * Runs units of work in one transaction each, handing the work its
 * EntityManager explicitly so every statement of a write shares it.
 *
 * READ COMMITTED, PostgreSQL's default: not named, because TypeORM would
 * spend a round trip on SET TRANSACTION. The writes rely on row locks and
 * conditional updates, which is what READ COMMITTED is for.
 *
 * A deadlock or serialization failure (40P01, 40001) rolled the whole
 * transaction back, so it is run again from the start; a consistent lock
 * order makes that rare. If it keeps failing, the error surfaces as a 503
 * with Retry-After (see pg-errors.ts). The work must therefore be safe to
 * run again: it may not have effects outside the transaction.
 */
@Injectable()
export class Transactions {
  private readonly logger = new Logger(Transactions.name);

  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  async run<T>(work: (manager: EntityManager) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt += 1) {
      try {
        return await this.dataSource.transaction(work);
      } catch (error) {
        if (attempt >= TRANSACTION_ATTEMPTS || !isTransactionConflict(error)) throw error;
        this.logger.warn(`Transaction conflict (${sqlState(error)}); retrying`);
      }
    }
  }
}
