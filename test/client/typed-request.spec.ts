import type { LineageClient, Todo, User } from '../../client/src/lineage-client.js';
import { fillPath } from '../../client/src/typed-request.js';

describe('request() path templates', () => {
  it('fills each parameter percent-encoded', () => {
    expect(fillPath('/todos/{id}', { id: 'a/b c' })).toBe('/todos/a%2Fb%20c');
    expect(fillPath('/users/me', undefined)).toBe('/users/me');
  });

  it('refuses a missing parameter', () => {
    expect(() => fillPath('/todos/{id}', {})).toThrow('missing path parameter "id"');
  });
});

/**
 * Compile-time checks of request()'s types (typecheck fails if one breaks);
 * never called.
 */
export async function typedRequests(client: LineageClient): Promise<void> {
  const todo: Todo = await client.request('GET', '/todos/{id}', { params: { id: 'x' } });
  const todos: Todo[] = await client.request('GET', '/todos', { query: { limit: 5 } });
  const user: User = await client.request('GET', '/users/me');
  const nothing: undefined = await client.request('DELETE', '/todos/{id}', { params: { id: 'x' } });
  await client.request('POST', '/todos', { body: { title: 't' } });
  // @ts-expect-error the path parameter is required
  await client.request('GET', '/todos/{id}');
  // @ts-expect-error no such route for this method
  await client.request('PUT', '/todos');
  // @ts-expect-error the body has no such field
  await client.request('POST', '/todos', { body: { name: 't' } });
  // @ts-expect-error a create needs its body
  await client.request('POST', '/todos', {});
  // @ts-expect-error unknown query parameter
  await client.request('GET', '/todos', { query: { page: 1 } });
  void [todo, todos, user, nothing];
}
