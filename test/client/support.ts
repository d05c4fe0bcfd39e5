import type { IncomingMessage } from 'node:http';
import {
  createLineageClient,
  type LineageClient,
  LineageApiError,
  memoryTokenStorage,
  type TokenStorage,
} from '../../client/src/lineage-client.js';
import { PASSWORD, uniqueUsername } from '../support/requests.js';
import type { TestApp } from '../support/test-app.js';
import { expiredAccessToken } from '../support/tokens.js';

/**
 * Counts the requests the server receives for `method path`. A second
 * listener on the Node server's `request` event sees every request as it
 * arrives, before Fastify routes it (Fastify hooks cannot be added once the
 * app is ready, which startTestApp has made it).
 */
export function countRequests(t: TestApp, method: string, path: string) {
  const counter = { count: 0 };
  t.app.getHttpServer().on('request', (request: IncomingMessage) => {
    if (request.method === method && request.url?.split('?')[0] === path) counter.count += 1;
  });
  return counter;
}

/** The LineageApiError a call fails with (the test fails if it succeeds or fails otherwise). */
export async function rejection(promise: Promise<unknown>): Promise<LineageApiError> {
  const error = await promise.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(LineageApiError);
  return error as LineageApiError;
}

export interface SignedUp {
  client: LineageClient;
  storage: TokenStorage;
  username: string;
}

/** A new account, registered through the SDK, whose tokens the test can read. */
export async function signedUp(baseUrl: string): Promise<SignedUp> {
  const storage = memoryTokenStorage();
  const client = createLineageClient({ baseUrl, storage });
  const username = uniqueUsername('sdk');
  await client.register({ username, password: PASSWORD });
  return { client, storage, username };
}

export async function storedTokens(storage: TokenStorage) {
  const tokens = await storage.get();
  if (tokens === null) throw new Error('no tokens stored');
  return tokens;
}

/**
 * Replaces the stored access token with one of the same session that has
 * expired (see expiredAccessToken), as for a client that comes back after a
 * while, instead of waiting. The stored refresh token is left as it is.
 */
export async function expireAccessToken(t: TestApp, storage: TokenStorage): Promise<void> {
  const stored = await storedTokens(storage);
  await storage.set({ ...stored, access_token: expiredAccessToken(t, stored.access_token) });
}
