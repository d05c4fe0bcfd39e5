import { AuthEvent } from './audit/auth-event.entity.js';
import { DeletedSession } from './auth/sessions/deleted-session.entity.js';
import { Session } from './auth/sessions/session.entity.js';
import { SigningKey } from './auth/signing-keys/signing-key.entity.js';
import { Todo } from './todos/todo.entity.js';
import { User } from './users/user.entity.js';

/**
 * Every table the application maps, for the data sources it opens (the
 * server's and the key CLI's). The schema itself is the migrations'
 * (src/database/data-source-options.ts); the e2e suite checks they agree.
 */
export const ENTITIES = [User, Session, Todo, AuthEvent, DeletedSession, SigningKey];
