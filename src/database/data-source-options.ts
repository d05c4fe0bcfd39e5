import { Socket } from 'node:net';
import type { DataSourceOptions } from 'typeorm';
import { InitialSchema1764045000000 } from '../../migrations/1764045000000-InitialSchema.js';
import { SessionsAndAudit1764230000000 } from '../../migrations/1764230000000-SessionsAndAudit.js';
import { RevocationFeed1764300000000 } from '../../migrations/1764300000000-RevocationFeed.js';
import { SigningKeys1764400000000 } from '../../migrations/1764400000000-SigningKeys.js';
import { SessionGenerations1764500000000 } from '../../migrations/1764500000000-SessionGenerations.js';
import { SessionClients1764600000000 } from '../../migrations/1764600000000-SessionClients.js';
import { SessionKeys1764700000000 } from '../../migrations/1764700000000-SessionKeys.js';
import { recordingPgDriver } from './sql.js';

export const MIGRATIONS = [
  InitialSchema1764045000000,
  SessionsAndAudit1764230000000,
  RevocationFeed1764300000000,
  SigningKeys1764400000000,
  SessionGenerations1764500000000,
  SessionClients1764600000000,
  SessionKeys1764700000000,
];

/** Longer than statement_timeout, so a live server always answers first. */
export const SILENT_SERVER_TIMEOUT_MS = 12_000;

/**
 * The socket under each pooled connection. A server that has sent nothing for
 * SILENT_SERVER_TIMEOUT_MS (hung, or cut off by a partition: statement_timeout
 * cannot fire) gets its connection destroyed: the waiting statement fails
 * (a 503) and the pool drops the connection, so it can never be handed out
 * again still inside the dead request's transaction.
 *
 * This replaces node-postgres' `query_timeout`, which failed the statement
 * but handed the connection back to the pool, possibly still inside the
 * timed-out transaction on the server. The socket's idle timeout is refreshed
 * in place by its traffic: nothing is allocated per statement. Idle pooled
 * connections are closed by the pool before it fires (idleTimeoutMillis).
 */
function watchedSocket(): Socket {
  const socket = new Socket();
  socket.setTimeout(SILENT_SERVER_TIMEOUT_MS, () =>
    socket.destroy(
      new Error(`Query read timeout: PostgreSQL sent nothing for ${SILENT_SERVER_TIMEOUT_MS} ms`),
    ),
  );
  return socket;
}

/**
 * The options of every data source the application opens. The entities come
 * from the caller (src/entities.ts), so this floor knows no feature.
 * `poolSize` is DATABASE_POOL_SIZE (its default here too).
 */
export function dataSourceOptions(
  url: string,
  entities: NonNullable<DataSourceOptions['entities']>,
  poolSize = 10,
): DataSourceOptions {
  return {
    type: 'postgres',
    // node-postgres itself, with its pool recorded for runSql (see there).
    driver: recordingPgDriver(),
    url,
    entities,
    migrations: MIGRATIONS,
    // The schema only ever changes through reviewed migrations.
    synchronize: false,
    migrationsRun: false,
    // An undefined or null value in a `where` must never silently match every row.
    invalidWhereValuesBehavior: { null: 'throw', undefined: 'throw' },
    // Bounded waits, so an unreachable or stuck database fails requests fast
    // (a 503 with Retry-After) instead of piling them up: connecting, each
    // statement, a silent server, and a transaction left idle by a crashed
    // request.
    extra: {
      max: poolSize,
      connectionTimeoutMillis: 2000,
      statement_timeout: 10_000,
      stream: watchedSocket,
      // Below SILENT_SERVER_TIMEOUT_MS: an idle connection is closed by the
      // pool, not destroyed as silent.
      idleTimeoutMillis: 10_000,
      idle_in_transaction_session_timeout: 30_000,
    },
    applicationName: 'lineage',
  };
}
