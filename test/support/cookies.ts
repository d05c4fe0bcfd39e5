import type { Response } from 'supertest';
import type { Tokens } from './requests.js';

/**
 * The wire names, spelled out rather than imported so that a rename shows here:
 * `__Host-` (RFC 6265bis §4.1.3.2) when Secure, the plain name with COOKIE_SECURE=false.
 */
export const REFRESH_COOKIE = '__Host-refresh_token';
export const PLAIN_REFRESH_COOKIE = 'refresh_token';
/** `__Host-` requires Path=/. */
export const REFRESH_COOKIE_PATH = '/';

/** A token response in the cookie transport: everything but the refresh token. */
export type CookieTokens = Omit<Tokens, 'refresh_token'>;

export interface ParsedCookie {
  name: string;
  value: string;
  /** Attribute names as sent, mapped to their value (`true` for flags). */
  attributes: Record<string, string | true>;
}

export function parseSetCookie(header: string): ParsedCookie {
  const [pair, ...rest] = header.split(';').map((part) => part.trim());
  const eq = pair.indexOf('=');
  const attributes: Record<string, string | true> = {};
  for (const attribute of rest) {
    const at = attribute.indexOf('=');
    if (at === -1) attributes[attribute] = true;
    else attributes[attribute.slice(0, at)] = attribute.slice(at + 1);
  }
  return { name: pair.slice(0, eq), value: pair.slice(eq + 1), attributes };
}

export function setCookies(res: Response): ParsedCookie[] {
  const raw = res.headers['set-cookie'] as unknown;
  if (raw === undefined) return [];
  return (Array.isArray(raw) ? (raw as string[]) : [raw as string]).map(parseSetCookie);
}

/** The response's one refresh cookie (a response never sets it twice). */
export function refreshCookieOf(res: Response, name = REFRESH_COOKIE): ParsedCookie {
  const cookies = setCookies(res).filter((cookie) => cookie.name === name);
  expect(cookies).toHaveLength(1);
  return cookies[0];
}

export interface CookieExpectations {
  /** The name the app uses (COOKIE_SECURE=false drops the `__Host-` prefix). */
  name?: string;
  secure?: boolean;
}

/** A freshly issued refresh cookie, attribute by attribute; returns its value. */
export function expectIssuedCookie(
  res: Response,
  { name = REFRESH_COOKIE, secure = true }: CookieExpectations = {},
): string {
  const cookie = refreshCookieOf(res, name);
  const body = res.body as CookieTokens;
  expect(cookie.value).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
  const header = JSON.parse(Buffer.from(cookie.value.split('.')[0], 'base64url').toString()) as {
    typ?: string;
  };
  expect(header.typ).toBe('rt+jwt');
  expect(cookie.attributes).toEqual({
    'Max-Age': String(body.refresh_expires_in),
    Path: REFRESH_COOKIE_PATH,
    HttpOnly: true,
    ...(secure ? { Secure: true } : {}),
    SameSite: 'Strict',
  });
  // The token moved to the cookie: the body no longer carries it (scripts cannot read it).
  expect(Object.keys(body).sort()).toEqual(
    ['access_token', 'expires_in', 'refresh_expires_in', 'token_type'].sort(),
  );
  expect(body.token_type).toBe('Bearer');
  return cookie.value;
}

/** A cookie that tells the browser to drop the refresh cookie (RFC 6265bis §5.6). */
export function expectClearedCookie(
  res: Response,
  { name = REFRESH_COOKIE, secure = true }: CookieExpectations = {},
): void {
  const cookie = refreshCookieOf(res, name);
  expect(cookie.value).toBe('');
  expect(cookie.attributes).toEqual({
    'Max-Age': '0',
    Path: REFRESH_COOKIE_PATH,
    Expires: expect.any(String) as unknown,
    HttpOnly: true,
    ...(secure ? { Secure: true } : {}),
    SameSite: 'Strict',
  });
  const expires = Date.parse(cookie.attributes.Expires as string);
  expect(Number.isNaN(expires)).toBe(false);
  expect(expires).toBeLessThan(Date.now());
}

/** Neither sets nor clears the refresh cookie: the browser keeps what it has. */
export function expectCookieKept(res: Response): void {
  expect(setCookies(res)).toEqual([]);
}
