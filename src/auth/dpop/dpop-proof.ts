import {
  constants,
  createHash,
  createPublicKey,
  type JsonWebKey,
  type KeyObject,
  verify,
} from 'node:crypto';

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
 * The public keys of recent proofs, imported once: a bound session's every
 * request carries the same key, and importing it costs more than verifying
 * with it. Keyed by RFC 7638 thumbprint, which covers every member that
 * determines the key, so two headers with one thumbprint name one key.
 * Bounded: the oldest goes first, and is simply imported again.
 */
export class ProofKeyCache {
  private readonly keys = new Map<string, KeyObject>();

  constructor(private readonly max = MAX_CACHED_KEYS) {}

  get(jkt: string, jwk: Record<string, unknown>): KeyObject {
    let key = this.keys.get(jkt);
    if (key) return key;
    key = createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' });
    if (this.keys.size >= this.max) this.keys.delete(this.keys.keys().next().value!);
    this.keys.set(jkt, key);
    return key;
  }
}

const MAX_CACHED_KEYS = 10_000;

/**
 * Checks a DPoP proof JWT against the request it came with, RFC 9449 §4.3
 * checks 1 to 12 except the `jti` replay check (DpopReplayCache) and the
 * nonce's value (DpopNonces), which need state. Throws DpopProofError.
 *
 * Verified with node:crypto rather than a JOSE library: the proof is one
 * JWS whose key it carries itself, and `npm run bench` showed a general
 * JOSE verification (key import through WebCrypto, per request) costing
 * several times the signature check on every DPoP-bound request.
 */
export function checkProof(
  proof: string,
  expect: ProofExpectation,
  keys: ProofKeyCache = new ProofKeyCache(1),
): CheckedProof {
  const parts = proof.length > MAX_PROOF_LENGTH ? [] : proof.split('.');
  if (parts.length !== 3) throw new DpopProofError('malformed', 'DPoP proof is not a compact JWS');
  const [encodedHeader, encodedPayload] = parts;
  const header = decodeJson(encodedHeader, 'header');
  if (header.typ !== DPOP_TYP) {
    throw new DpopProofError('header', `DPoP proof typ must be ${DPOP_TYP}`);
  }
  const alg = header.alg;
  if (!isDpopAlgorithm(alg)) {
    throw new DpopProofError(
      'header',
      `DPoP proof alg must be one of ${DPOP_ALGORITHMS.join(', ')}`,
    );
  }
  const jwk = header.jwk;
  if (typeof jwk !== 'object' || jwk === null || Array.isArray(jwk)) {
    throw new DpopProofError('header', 'DPoP proof must carry its public key as jwk');
  }
  const members = jwk as Record<string, unknown>;
  // RFC 9449 §4.3 check 7: the header names a public key only.
  if (PRIVATE_MEMBERS.some((member) => member in members)) {
    throw new DpopProofError('header', 'DPoP proof jwk must not contain a private key');
  }
  const jkt = thumbprintFor(alg, members);
  if (typeof header.crit !== 'undefined' || (members.use ?? 'sig') !== 'sig') {
    throw new DpopProofError('header', 'DPoP proof header has members this server cannot honour');
  }
  if (members.alg !== undefined && members.alg !== alg) {
    throw new DpopProofError('header', 'DPoP proof jwk is for another algorithm');
  }
  if (!verifySignature(alg, keys, jkt, members, parts)) {
    throw new DpopProofError('signature', 'DPoP proof signature does not verify with its jwk');
  }
  const payload = decodeJson(encodedPayload, 'claims');
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
  // RFC 7519 §4.1.4: a proof that says it has expired is not taken either.
  if (payload.exp !== undefined && !(typeof payload.exp === 'number' && payload.exp > nowSeconds)) {
    throw new DpopProofError('iat', 'DPoP proof has expired');
  }
  // Without an access token (a token request) `ath` has nothing to match and is ignored.
  if (expect.accessToken !== undefined && ath !== accessTokenHash(expect.accessToken)) {
    throw new DpopProofError('ath', 'DPoP proof ath does not match the access token');
  }
  if (nonce !== undefined && typeof nonce !== 'string') {
    throw new DpopProofError('claims', 'DPoP proof nonce must be a string');
  }
  return { jkt, jti, iat, ...(nonce === undefined ? {} : { nonce }) };
}

type DpopAlgorithm = (typeof DPOP_ALGORITHMS)[number];

const isDpopAlgorithm = (alg: unknown): alg is DpopAlgorithm =>
  (DPOP_ALGORITHMS as readonly unknown[]).includes(alg);

function decodeJson(part: string, fault: 'header' | 'claims'): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
  } catch {
    throw new DpopProofError(
      'malformed',
      `DPoP proof ${fault === 'header' ? 'header' : 'payload'} is not valid JSON`,
    );
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new DpopProofError('malformed', 'DPoP proof parts must be JSON objects');
  }
  return value as Record<string, unknown>;
}

/**
 * What each algorithm's key must be (RFC 7518 §3.1, RFC 8037 §3.1), and the
 * members its RFC 7638 thumbprint hashes, in lexicographic order.
 */
const KEY_SHAPES: Record<DpopAlgorithm, { kty: string; crv?: string; members: string[] }> = {
  ES256: { kty: 'EC', crv: 'P-256', members: ['crv', 'kty', 'x', 'y'] },
  ES384: { kty: 'EC', crv: 'P-384', members: ['crv', 'kty', 'x', 'y'] },
  ES512: { kty: 'EC', crv: 'P-521', members: ['crv', 'kty', 'x', 'y'] },
  PS256: { kty: 'RSA', members: ['e', 'kty', 'n'] },
  RS256: { kty: 'RSA', members: ['e', 'kty', 'n'] },
  EdDSA: { kty: 'OKP', crv: 'Ed25519', members: ['crv', 'kty', 'x'] },
};

/** RFC 7638 §3: SHA-256 over the required members, in order, without whitespace. */
function thumbprintFor(alg: DpopAlgorithm, jwk: Record<string, unknown>): string {
  const shape = KEY_SHAPES[alg];
  if (jwk.kty !== shape.kty || (shape.crv !== undefined && jwk.crv !== shape.crv)) {
    throw new DpopProofError('header', `DPoP proof jwk is not a key for ${alg}`);
  }
  const required: Record<string, string> = {};
  for (const member of shape.members) {
    const value = jwk[member];
    if (typeof value !== 'string' || !BASE64URL.test(value)) {
      throw new DpopProofError('header', `DPoP proof jwk needs its ${member}`);
    }
    required[member] = value;
  }
  return createHash('sha256').update(JSON.stringify(required)).digest('base64url');
}

const BASE64URL = /^[A-Za-z0-9_-]+$/;
// RFC 7518 §3.3, §3.5: RSA keys of at least 2048 bits.
const MIN_RSA_BITS = 2048;

function verifySignature(
  alg: DpopAlgorithm,
  keys: ProofKeyCache,
  jkt: string,
  jwk: Record<string, unknown>,
  [header, payload, signature]: string[],
): boolean {
  let key: KeyObject;
  try {
    key = keys.get(jkt, jwk);
  } catch {
    return false;
  }
  if (
    KEY_SHAPES[alg].kty === 'RSA' &&
    (key.asymmetricKeyDetails?.modulusLength ?? 0) < MIN_RSA_BITS
  ) {
    return false;
  }
  const data = Buffer.from(`${header}.${payload}`);
  const bytes = Buffer.from(signature, 'base64url');
  switch (alg) {
    case 'EdDSA':
      return verify(null, data, key, bytes);
    case 'PS256':
      return verify(
        'sha256',
        data,
        {
          key,
          padding: constants.RSA_PKCS1_PSS_PADDING,
          saltLength: constants.RSA_PSS_SALTLEN_DIGEST,
        },
        bytes,
      );
    case 'RS256':
      return verify('sha256', data, key, bytes);
    default: {
      // RFC 7518 §3.4: r and s, each of the curve's size, concatenated.
      const hash = { ES256: 'sha256', ES384: 'sha384', ES512: 'sha512' }[alg];
      return verify(hash, data, { key, dsaEncoding: 'ieee-p1363' }, bytes);
    }
  }
}

// RFC 7518 §6.2.2 and §6.3.2 private members (EC, RSA), RFC 8037 §2 (OKP's `d`), §6.4.1 (`k`).
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];
