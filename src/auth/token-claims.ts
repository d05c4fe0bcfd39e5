/** `typ` header values (RFC 8725 §3.11 explicit typing; RFC 9068 §2.1 for access tokens). */
export const ACCESS_TOKEN_TYP = 'at+jwt';
export const REFRESH_TOKEN_TYP = 'rt+jwt';
export const JWT_ALGORITHM = 'HS256';

/** Claims shared by both token types: who, which session (family), which token. */
export interface TokenClaims {
  sub: string;
  sid: string;
  jti: string;
  iat: number;
  exp: number;
  iss: string;
  aud: string;
}

export interface DecodedJwt {
  header: { alg?: unknown; typ?: unknown };
  payload: unknown;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Checks a signature-verified JWT's header type and claim shapes. Anything
 * unexpected yields undefined, so a token of the other type, or one with a
 * missing or malformed subject/session, can never authenticate.
 */
export function readClaims(decoded: DecodedJwt, expectedTyp: string): TokenClaims | undefined {
  if (decoded.header.alg !== JWT_ALGORITHM || decoded.header.typ !== expectedTyp) return undefined;
  const p = decoded.payload as Partial<Record<keyof TokenClaims, unknown>> | null;
  if (typeof p !== 'object' || p === null) return undefined;
  const { sub, sid, jti, iat, exp, iss, aud } = p;
  if (typeof sub !== 'string' || !UUID.test(sub)) return undefined;
  if (typeof sid !== 'string' || !UUID.test(sid)) return undefined;
  if (typeof jti !== 'string' || !UUID.test(jti)) return undefined;
  if (!Number.isSafeInteger(iat) || !Number.isSafeInteger(exp)) return undefined;
  if (typeof iss !== 'string' || typeof aud !== 'string') return undefined;
  return { sub, sid, jti, iat: iat as number, exp: exp as number, iss, aud };
}

/**
 * passport-jwt hands its key straight to jsonwebtoken, which accepts a
 * `KeyObject`; only the type declarations are narrower (string | Buffer).
 */
export function asPassportKey(key: import('node:crypto').KeyObject): Buffer {
  return key as unknown as Buffer;
}
