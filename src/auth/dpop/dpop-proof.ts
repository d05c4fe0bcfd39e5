import { createHash } from 'node:crypto';
import { calculateJwkThumbprint, decodeProtectedHeader, EmbeddedJWK, jwtVerify } from 'jose';

/**
 * The JWS algorithms a DPoP proof may use: asymmetric only (RFC 9449 §4.3
 * check 5: never `none`, never a MAC, whose key the server would have to
 * share). Published as `dpop_signing_alg_values_supported`.
 */
export const DPOP_ALGORITHMS = ['ES256', 'ES384', 'ES512', 'PS256', 'RS256', 'EdDSA'] as const;

/** RFC 9449 §4.2: the proof's `typ` header. */
export const DPOP_TYP = 'dpop+jwt';

/** Longer than any legitimate proof; a bound on what is parsed and verified at all. */
export const MAX_PROOF_LENGTH = 8192;
/** A `jti` is a random identifier (RFC 9449 §4.2); anything longer is not one. */
const MAX_JTI_LENGTH = 256;

/** Why a proof was refused; on the error's message and the refusal counter. */
export type ProofFault =
  | 'malformed'
  | 'header'
  | 'signature'
  | 'claims'
  | 'htm'
  | 'htu'
  | 'iat'
  | 'ath'
  | 'nonce'
  | 'replayed';

export class DpopProofError extends Error {
  constructor(
    readonly fault: ProofFault,
    message: string,
  ) {
    super(message);
    this.name = 'DpopProofError';
  }
}

/** What the request a proof came with must match (RFC 9449 §4.3 checks 8 to 12). */
export interface ProofExpectation {
  /** The request's method. */
  htm: string;
  /** The request's URL as clients reach it (PUBLIC_URL and path), without query or fragment. */
  htu: string;
  /** The access token sent with the request, for `ath` (RFC 9449 §4.3 check 12). */
  accessToken?: string;
  now: Date;
  /** Seconds a proof stays acceptable after its `iat`. */
  maxAge: number;
  /** Seconds an `iat` may lie ahead of this server's clock. */
  leeway: number;
}

/** A proof whose signature and claims checked out; its `jti` is not yet claimed. */
export interface CheckedProof {
  /** RFC 7638 SHA-256 thumbprint of the proof's public key. */
  jkt: string;
  jti: string;
  /** Seconds since the epoch. */
  iat: number;
  nonce?: string;
}

/** RFC 9449 §4.3 check 12, and what `cnf`-less clients compute: base64url(SHA-256(token)). */
export function accessTokenHash(accessToken: string): string {
  return createHash('sha256').update(accessToken, 'ascii').digest('base64url');
}

/**
 * RFC 9449 §4.3 check 9: `htu` matches the request's URI without its query
 * and fragment, after the normalization of RFC 3986 §6.2.2 and §6.2.3 that
 * WHATWG URL parsing performs (scheme and host case, default port, dot
 * segments). Null for anything that is not an http(s) URL.
 */
export function normalizeHtu(value: string): string | null {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return null;
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return null;
  return `${url.origin}${url.pathname}`;
}

/**
 * Checks a DPoP proof JWT against the request it came with, RFC 9449 §4.3
 * checks 1 to 12 except the `jti` replay check (DpopReplayCache) and the
 * nonce's value (DpopNonces), which need state. Throws DpopProofError.
 */
export async function checkProof(proof: string, expect: ProofExpectation): Promise<CheckedProof> {
  if (proof.length > MAX_PROOF_LENGTH || proof.split('.').length !== 3) {
    throw new DpopProofError('malformed', 'DPoP proof is not a compact JWS');
  }
  let header: ReturnType<typeof decodeProtectedHeader>;
  try {
    header = decodeProtectedHeader(proof);
  } catch {
    throw new DpopProofError('malformed', 'DPoP proof header is not valid JSON');
  }
  if (header.typ !== DPOP_TYP) {
    throw new DpopProofError('header', `DPoP proof typ must be ${DPOP_TYP}`);
  }
  if (!(DPOP_ALGORITHMS as readonly unknown[]).includes(header.alg)) {
    throw new DpopProofError(
      'header',
      `DPoP proof alg must be one of ${DPOP_ALGORITHMS.join(', ')}`,
    );
  }
  const jwk = header.jwk;
  if (typeof jwk !== 'object' || jwk === null || Array.isArray(jwk)) {
    throw new DpopProofError('header', 'DPoP proof must carry its public key as jwk');
  }
  // RFC 9449 §4.3 check 7: the header names a public key only. jose refuses
  // one it would import as private too; this says why in the answer.
  if (PRIVATE_MEMBERS.some((member) => member in jwk)) {
    throw new DpopProofError('header', 'DPoP proof jwk must not contain a private key');
  }
  let payload: Record<string, unknown>;
  try {
    ({ payload } = await jwtVerify(proof, EmbeddedJWK, {
      typ: DPOP_TYP,
      algorithms: [...DPOP_ALGORITHMS],
      currentDate: expect.now,
    }));
  } catch {
    throw new DpopProofError('signature', 'DPoP proof signature does not verify with its jwk');
  }
  const { jti, htm, htu, iat, ath, nonce } = payload;
  if (typeof jti !== 'string' || jti.length === 0 || jti.length > MAX_JTI_LENGTH) {
    throw new DpopProofError('claims', 'DPoP proof needs a jti');
  }
  if (htm !== expect.htm) {
    throw new DpopProofError('htm', `DPoP proof htm must be ${expect.htm}`);
  }
  if (typeof htu !== 'string' || normalizeHtu(htu) !== normalizeHtu(expect.htu)) {
    throw new DpopProofError('htu', `DPoP proof htu must be ${expect.htu}`);
  }
  const nowSeconds = expect.now.getTime() / 1000;
  if (typeof iat !== 'number' || !Number.isFinite(iat)) {
    throw new DpopProofError('claims', 'DPoP proof needs a numeric iat');
  }
  if (iat < nowSeconds - expect.maxAge || iat > nowSeconds + expect.leeway) {
    throw new DpopProofError(
      'iat',
      `DPoP proof iat must be within ${expect.maxAge} s before and ${expect.leeway} s after now`,
    );
  }
  // Without an access token (a token request) `ath` has nothing to match and is ignored.
  if (expect.accessToken !== undefined && ath !== accessTokenHash(expect.accessToken)) {
    throw new DpopProofError('ath', 'DPoP proof ath does not match the access token');
  }
  if (nonce !== undefined && typeof nonce !== 'string') {
    throw new DpopProofError('claims', 'DPoP proof nonce must be a string');
  }
  return {
    jkt: await calculateJwkThumbprint(jwk, 'sha256'),
    jti,
    iat,
    ...(nonce === undefined ? {} : { nonce }),
  };
}

// RFC 7518 §6.2.2 and §6.3.2 private members (EC, RSA), RFC 8037 §2 (OKP's `d`), §6.4.1 (`k`).
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];
