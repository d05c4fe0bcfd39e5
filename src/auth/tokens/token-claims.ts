import { SIGNING_ALG } from '../signing-keys/signing-key.store.js';

/** `typ` header values (RFC 8725 §3.11 explicit typing; RFC 9068 §2.1 for access tokens). */
export const ACCESS_TOKEN_TYP = 'at+jwt';
export const REFRESH_TOKEN_TYP = 'rt+jwt';
/**
 * One algorithm per token type, pinned on verification (RFC 8725 §3.1).
 * Access tokens are verified by other services too, from the published keys:
 * ES256. Refresh tokens are verified only here: an HMAC (HS256) under a
 * server-private key.
 */
export const ACCESS_TOKEN_ALG = SIGNING_ALG;
export const REFRESH_TOKEN_ALG = 'HS256';

const ALGORITHM_OF: Record<string, string> = {
  [ACCESS_TOKEN_TYP]: ACCESS_TOKEN_ALG,
  [REFRESH_TOKEN_TYP]: REFRESH_TOKEN_ALG,
};

/** Claims shared by both token types: who, which session, which token. */
export interface TokenClaims {
  sub: string;
  sid: string;
  jti: string;
  iat: number;
  exp: number;
  iss: string;
  aud: string;
  /**
   * The OAuth client the session was started by (RFC 9068 §2.2); absent for
   * sessions of Lineage's own JSON routes.
   */
  client_id?: string;
  /**
   * RFC 9449 §6.1 / RFC 7800: the JWK thumbprint (RFC 7638) of the key a
   * DPoP-bound session's tokens are bound to; absent for unbound sessions.
   */
  cnf?: { jkt: string };
}

/** A session's fixed parties, carried by each of its tokens (see Session). */
export interface SessionBinding {
  /** The OAuth client that started it, if any. */
  clientId: string | null;
  /** The DPoP key thumbprint it is bound to, if any. */
  keyThumbprint: string | null;
}

/** The binding a token names: a session's never changes, so a parent names its child's. */
export function bindingOf(claims: TokenClaims): SessionBinding {
  return { clientId: claims.client_id ?? null, keyThumbprint: claims.cnf?.jkt ?? null };
}

/** A SHA-256 JWK thumbprint, base64url (RFC 7638 §3). */
export const JWK_THUMBPRINT = /^[A-Za-z0-9_-]{43}$/;

export interface DecodedJwt {
  header: { alg?: unknown; typ?: unknown; kid?: unknown };
  payload: unknown;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Checks a signature-verified JWT's header type and claim shapes. Anything
 * unexpected yields undefined, so a token of the other type, or one with a
 * missing or malformed subject/session, can never authenticate.
 */
export function readClaims(decoded: DecodedJwt, expectedTyp: string): TokenClaims | undefined {
  return readShared(decoded, expectedTyp, (jti) => UUID.test(jti));
}

/**
 * A refresh token's claims. `gen` is its generation in its session (see
 * Session); a token from before token store v2 has none, and a UUID jti.
 */
export interface RefreshTokenClaims extends TokenClaims {
  gen: number | null;
}

// base64url of a SHA-256 digest.
const GENERATION_JTI = /^[A-Za-z0-9_-]{43}$/;

/** readClaims for refresh tokens: a v2 token needs a generation and its jti digest. */
export function readRefreshClaims(decoded: DecodedJwt): RefreshTokenClaims | undefined {
  const gen = (decoded.payload as { gen?: unknown } | null)?.gen;
  if (gen === undefined) {
    const legacy = readClaims(decoded, REFRESH_TOKEN_TYP);
    return legacy && { ...legacy, gen: null };
  }
  if (!Number.isSafeInteger(gen) || (gen as number) < 0) return undefined;
  const claims = readShared(decoded, REFRESH_TOKEN_TYP, (jti) => GENERATION_JTI.test(jti));
  return claims && { ...claims, gen: gen as number };
}

function readShared(
  decoded: DecodedJwt,
  expectedTyp: string,
  jtiValid: (jti: string) => boolean,
): TokenClaims | undefined {
  if (decoded.header.typ !== expectedTyp || decoded.header.alg !== ALGORITHM_OF[expectedTyp]) {
    return undefined;
  }
  const p = decoded.payload as Partial<Record<keyof TokenClaims, unknown>> | null;
  if (typeof p !== 'object' || p === null) return undefined;
  const { sub, sid, jti, iat, exp, iss, aud, client_id: clientId, cnf } = p;
  if (typeof sub !== 'string' || !UUID.test(sub)) return undefined;
  if (typeof sid !== 'string' || !UUID.test(sid)) return undefined;
  if (typeof jti !== 'string' || !jtiValid(jti)) return undefined;
  if (!Number.isSafeInteger(iat) || !Number.isSafeInteger(exp)) return undefined;
  if (typeof iss !== 'string' || typeof aud !== 'string') return undefined;
  if (clientId !== undefined && (typeof clientId !== 'string' || clientId.length > 64)) {
    return undefined;
  }
  const jkt = (cnf as { jkt?: unknown } | null | undefined)?.jkt;
  if (cnf !== undefined && (typeof jkt !== 'string' || !JWK_THUMBPRINT.test(jkt))) {
    return undefined;
  }
  const claims: TokenClaims = { sub, sid, jti, iat: iat as number, exp: exp as number, iss, aud };
  if (clientId !== undefined) claims.client_id = clientId;
  if (cnf !== undefined) claims.cnf = { jkt: jkt as string };
  return claims;
}

/**
 * The `kid` header of a compact JWS, read before verification only to pick
 * which of our own keys to verify with (RFC 8725 §3.10: it selects among
 * keys we hold, never supplies one). Undefined when absent or malformed.
 */
export function keyIdOf(token: string): string | undefined {
  const dot = token.indexOf('.');
  if (dot <= 0) return undefined;
  try {
    const header: unknown = JSON.parse(Buffer.from(token.slice(0, dot), 'base64url').toString());
    const kid = (header as { kid?: unknown } | null)?.kid;
    return typeof kid === 'string' && kid.length > 0 && kid.length <= 128 ? kid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * passport-jwt hands its key straight to jsonwebtoken, which accepts a
 * `KeyObject`; only the type declarations are narrower (string | Buffer).
 */
export function asPassportKey(key: import('node:crypto').KeyObject): Buffer {
  return key as unknown as Buffer;
}
