import type { DataSourceOptions } from 'typeorm';
import { InitialSchema1764045000000 } from '../../migrations/1764045000000-InitialSchema.js';
import { SessionsAndAudit1764230000000 } from '../../migrations/1764230000000-SessionsAndAudit.js';
import { AuthEvent } from '../audit/auth-event.entity.js';
import { RefreshToken } from '../auth/entities/refresh-token.entity.js';
import { TokenFamily } from '../auth/entities/token-family.entity.js';
import { Todo } from '../todos/todo.entity.js';
import { User } from '../users/user.entity.js';

export const ENTITIES = [User, TokenFamily, RefreshToken, Todo, AuthEvent];
export const MIGRATIONS = [InitialSchema1764045000000, SessionsAndAudit1764230000000];

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
    extra: { max: 10, connectionTimeoutMillis: 5000 },
    applicationName: 'lineage',
  };
}
