import type { AuthEvent, LineageClient, LogoutAllResult, Session, Todo, User } from './api.js';
import type { ClientSession } from './session.js';
import { json, optionalJson, type Query } from './transport.js';
import { fillPath, type HttpMethod } from './typed-request.js';

/** The API's routes that use a session without starting it, as the client's methods. */
export type Routes = Pick<LineageClient, 'logoutAll' | 'request' | 'users' | 'sessions' | 'todos'>;

export function createRoutes(
  session: Pick<ClientSession, 'authorized' | 'ending' | 'holds'>,
): Routes {
  const { authorized, ending, holds } = session;

  const todoPath = (id: string) => `/todos/${encodeURIComponent(id)}`;

  const request = async (
    method: HttpMethod,
    path: string,
    init: {
      params?: Record<string, string | number | boolean>;
      query?: Query;
      body?: unknown;
      headers?: Record<string, string>;
      idempotent?: boolean;
    } = {},
  ): Promise<unknown> =>
    optionalJson(
      await authorized({
        method,
        path: fillPath(path, init.params),
        query: init.query,
        body: init.body,
        headers: init.headers,
        // RFC 9110 §9.2.2.
        idempotent:
          init.idempotent ?? (method === 'GET' || method === 'PUT' || method === 'DELETE'),
      }),
    );

  return {
    async logoutAll(scope = 'all') {
      const run = async () =>
        json<LogoutAllResult>(
          await authorized({
            method: 'POST',
            path: '/auth/logout-all',
            body: { scope },
            idempotent: true,
          }),
        );
      return scope === 'all' ? ending(run) : run();
    },

    request: request as LineageClient['request'],

    users: {
      me: async () =>
        json<User>(await authorized({ method: 'GET', path: '/users/me', idempotent: true })),
      events: async (query = {}) =>
        json<AuthEvent[]>(
          await authorized({ method: 'GET', path: '/users/me/events', query, idempotent: true }),
        ),
      async changePassword(change) {
        // Not retried after a lost response: the retry would present the old
        // password again, which no longer matches.
        await authorized({
          method: 'PATCH',
          path: '/users/me/password',
          body: change,
          idempotent: false,
        });
      },
      deleteAccount: (password) =>
        ending(async () => {
          await authorized({
            method: 'DELETE',
            path: '/users/me',
            body: { password },
            // A retry after a lost response would meet a deleted account's 401.
            idempotent: false,
          });
        }),
    },

    sessions: {
      list: async () =>
        json<Session[]>(
          await authorized({ method: 'GET', path: '/auth/sessions', idempotent: true }),
        ),
      async revoke(id) {
        const own = await holds(id);
        const run = async () => {
          await authorized({
            method: 'DELETE',
            path: `/auth/sessions/${encodeURIComponent(id)}`,
            idempotent: true,
          });
        };
        return own ? ending(run) : run();
      },
    },

    todos: {
      async list(query = {}) {
        const response = await authorized({
          method: 'GET',
          path: '/todos',
          query,
          idempotent: true,
        });
        const items = await json<Todo[]>(response);
        return { items, total: Number(response.headers.get('X-Total-Count') ?? items.length) };
      },
      create: async (todo) =>
        json<Todo>(
          await authorized({
            method: 'POST',
            path: '/todos',
            body: todo,
            // A lost response may have created it: a retry would create a second one.
            idempotent: false,
          }),
        ),
      get: async (id) =>
        json<Todo>(await authorized({ method: 'GET', path: todoPath(id), idempotent: true })),
      update: async (id, changes) =>
        json<Todo>(
          await authorized({
            method: 'PATCH',
            path: todoPath(id),
            body: changes,
            // The same changes applied twice leave the todo as applied once.
            idempotent: true,
          }),
        ),
      async delete(id) {
        await authorized({ method: 'DELETE', path: todoPath(id), idempotent: true });
      },
    },
  };
}
