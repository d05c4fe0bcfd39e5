import type { IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  createLineageClient,
  type LineageClient,
  LineageApiError,
  memoryTokenStorage,
  type TokenStorage,
} from '../../client/src/lineage-client.js';
import { claimsOf, PASSWORD, type TestApp, uniqueUsername } from '../support/test-app.js';

/**
 * Makes the test app listen on an ephemeral loopback port, so the SDK talks
 * real HTTP through fetch, and returns its base URL.
 */
export async function listen(t: TestApp): Promise<string> {
  await t.app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = t.app.getHttpServer().address() as AddressInfo;
  return `http://127.0.0.1:${port}`;
}

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
 * Waits until the stored access token is past its `exp` (one-second
 * resolution: expired once floor(now) >= exp, RFC 7519 §4.1.4).
 */
export async function waitForExpiry(storage: TokenStorage): Promise<void> {
  const { access_token } = await storedTokens(storage);
  const exp = claimsOf(access_token).exp as number;
  await sleep(Math.max(0, exp * 1000 - Date.now()) + 50);
}
