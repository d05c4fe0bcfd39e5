import type { DataSourceOptions } from 'typeorm';
import { InitialSchema1764045000000 } from '../../migrations/1764045000000-InitialSchema.js';
import { SessionsAndAudit1764230000000 } from '../../migrations/1764230000000-SessionsAndAudit.js';
import { RevocationFeed1764300000000 } from '../../migrations/1764300000000-RevocationFeed.js';
import { DeletedSession } from '../auth/entities/deleted-session.entity.js';
import { AuthEvent } from '../audit/auth-event.entity.js';
import { RefreshToken } from '../auth/entities/refresh-token.entity.js';
import { TokenFamily } from '../auth/entities/token-family.entity.js';
import { Todo } from '../todos/todo.entity.js';
import { User } from '../users/user.entity.js';

export const ENTITIES = [User, TokenFamily, RefreshToken, Todo, AuthEvent, DeletedSession];
export const MIGRATIONS = [
  InitialSchema1764045000000,
  SessionsAndAudit1764230000000,
  RevocationFeed1764300000000,
];

export function dataSourceOptions(url: string): DataSourceOptions {
  return {
    type: 'postgres',
    url,
    entities: ENTITIES,
    migrations: MIGRATIONS,
    // The schema only ever changes through reviewed migrations.
    synchronize: false,
    migrationsRun: false,
    // An undefined or null value in a `where` must never silently match every row.
    invalidWhereValuesBehavior: { null: 'throw', undefined: 'throw' },
    // Bounded waits, so an unreachable or stuck database fails requests fast
    // (a 503 with Retry-After) instead of piling them up: connecting, each
    // statement, and a transaction left idle by a crashed request.
    extra: {
      max: 10,
      connectionTimeoutMillis: 2000,
      statement_timeout: 10_000,
      query_timeout: 12_000,
      idle_in_transaction_session_timeout: 30_000,
    },
    applicationName: 'lineage',
  };
}
