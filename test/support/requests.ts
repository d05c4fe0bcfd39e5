import { randomUUID } from 'node:crypto';
import type { TestApp } from './test-app.js';

/**
 * The requests most suites make, through supertest against a TestApp: they
 * return the unfinished request (a supertest Test), so a caller can add
 * headers, `.expect(...)` or hand the response to expectError. Suites that
 * need a particular byte, header or transport build their own request.
 */

export interface Tokens {
  access_token: string;
  refresh_token: string;
  token_type: string;
  expires_in: number;
  refresh_expires_in: number;
}

export function uniqueUsername(prefix = 'u'): string {
  return `${prefix}_${randomUUID().replaceAll('-', '').slice(0, 16)}`;
}

export const PASSWORD = 'correct horse battery';

export const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });

/** The JWT payload, decoded without verification (tests only read claims). */
export function claimsOf(token: string): Record<string, unknown> {
  const payload = Buffer.from(token.split('.')[1], 'base64url').toString('utf8');
  return JSON.parse(payload) as Record<string, unknown>;
}

/** A new account and its first session (201); the tokens and the username. */
export async function register(
  t: TestApp,
  username = uniqueUsername(),
): Promise<Tokens & { username: string }> {
  const res = await t
    .http()
    .post('/auth/register')
    .send({ username, password: PASSWORD })
    .expect(201);
  return { ...(res.body as Tokens), username };
}

/** A new session of an existing account (200). */
export async function login(t: TestApp, username: string, password = PASSWORD): Promise<Tokens> {
  const res = await t.http().post('/auth/login').send({ username, password }).expect(200);
  return res.body as Tokens;
}

/** POST /auth/refresh with the token in the body (any value: tests send bad ones too). */
export const refresh = (t: TestApp, refreshToken: unknown) =>
  t.http().post('/auth/refresh').send({ refresh_token: refreshToken });

/** POST /auth/logout with the access token, and the body when given. */
export function logout(t: TestApp, accessToken: string, body?: object) {
  const req = t.http().post('/auth/logout').set(bearer(accessToken));
  return body === undefined ? req : req.send(body);
}

/** GET /todos: the cheapest protected route, so the usual "does this token work?". */
export const todos = (t: TestApp, accessToken: string) =>
  t.http().get('/todos').set(bearer(accessToken));

/** GET /users/me. */
export const me = (t: TestApp, accessToken: string) =>
  t.http().get('/users/me').set(bearer(accessToken));

/** POST /auth/revoke (RFC 7009), public: the token and hint are in the body. */
export const revoke = (t: TestApp, body: object) => t.http().post('/auth/revoke').send(body);

/** RFC 7009 §2.2: 200 with nothing in the body, whatever the token was. */
export function expectEmpty200(res: { status: number; text: string }): void {
  expect(res.status).toBe(200);
  expect(res.text).toBe('');
}

/** One entry of a user's audit trail, as GET /users/me/events returns it. */
export interface AuthEvent {
  id: string;
  type: string;
  occurred_at: string;
  session_id: string | null;
  reason: string | null;
  ip: string | null;
  user_agent: string | null;
}

/** The caller's audit trail, newest first, up to 100 entries. */
export async function listEvents(t: TestApp, accessToken: string): Promise<AuthEvent[]> {
  const res = await t.http().get('/users/me/events?limit=100').set(bearer(accessToken)).expect(200);
  return res.body as AuthEvent[];
}
