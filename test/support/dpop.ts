import { createHash, randomUUID, type webcrypto } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';

/**
 * DPoP proofs (RFC 9449 §4.2) made with jose, for the tests that need a
 * proof the server must refuse: every claim and header can be overridden.
 * Well-formed proofs for the happy paths come from oauth4webapi and the SDK.
 */
export interface ProofKey {
  privateKey: webcrypto.CryptoKey;
  publicJwk: JWK;
  /** RFC 7638 thumbprint: the `cnf.jkt` a session bound to this key carries. */
  jkt: string;
}

export async function newProofKey(alg = 'ES256'): Promise<ProofKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const publicJwk = await exportJWK(publicKey);
  return { privateKey, publicJwk, jkt: await calculateJwkThumbprint(publicJwk) };
}

export interface ProofOptions {
  htm: string;
  htu: string;
  /** Sent with a resource request: `ath` hashes it. */
  accessToken?: string;
  nonce?: string;
  /** Overrides and additions to the payload (undefined removes a claim). */
  claims?: Record<string, unknown>;
  /** Overrides and additions to the protected header. */
  header?: Record<string, unknown>;
}

export const ath = (accessToken: string) =>
  createHash('sha256').update(accessToken, 'ascii').digest('base64url');

export async function dpopProof(key: ProofKey, options: ProofOptions): Promise<string> {
  const payload: Record<string, unknown> = {
    jti: randomUUID(),
    htm: options.htm,
    htu: options.htu,
    iat: Math.floor(Date.now() / 1000),
    ...(options.accessToken === undefined ? {} : { ath: ath(options.accessToken) }),
    ...(options.nonce === undefined ? {} : { nonce: options.nonce }),
    ...options.claims,
  };
  for (const [name, value] of Object.entries(payload)) {
    if (value === undefined) delete payload[name];
  }
  return new SignJWT(payload)
    .setProtectedHeader({ typ: 'dpop+jwt', alg: 'ES256', jwk: key.publicJwk, ...options.header })
    .sign(key.privateKey);
}

/** A JWS with `alg: none` and no signature (RFC 7519 §6.1), which no verifier may accept. */
export function unsignedProof(key: ProofKey, options: ProofOptions): string {
  const encode = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const header = { typ: 'dpop+jwt', alg: 'none', jwk: key.publicJwk };
  const payload = {
    jti: randomUUID(),
    htm: options.htm,
    htu: options.htu,
    iat: Math.floor(Date.now() / 1000),
  };
  return `${encode(header)}.${encode(payload)}.`;
}

/** A proof MACed with HS256 under a key it names itself: an attacker's choice of algorithm. */
export async function hmacProof(options: ProofOptions): Promise<string> {
  const secret = new TextEncoder().encode('an attacker chosen secret of 32+ bytes');
  const jwk = { kty: 'oct', k: Buffer.from(secret).toString('base64url') };
  return new SignJWT({
    jti: randomUUID(),
    htm: options.htm,
    htu: options.htu,
    iat: Math.floor(Date.now() / 1000),
  })
    .setProtectedHeader({ typ: 'dpop+jwt', alg: 'HS256', jwk })
    .sign(secret);
}
