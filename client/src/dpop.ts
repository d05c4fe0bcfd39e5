/**
 * DPoP (RFC 9449): the client proves, on every request, that it holds the
 * private key its session is bound to, so a stolen access or refresh token is
 * useless without that key. Browser and Node >= 20 alike, with WebCrypto only.
 */

// The key types are named through crypto.subtle rather than the DOM's global
// `CryptoKey`: the SDK is checked against the DOM library, its tests against
// Node's types, which keep CryptoKey inside the `webcrypto` namespace.
type Key = Parameters<typeof crypto.subtle.sign>[1];

/** A key pair as WebCrypto's generateKey returns it (a CryptoKeyPair). */
export interface DpopKeyPair {
  publicKey: Key;
  privateKey: Key;
}

/**
 * Where the DPoP key pair lives. Methods may be synchronous or return
 * promises, as for TokenStorage. The key must outlive the tokens bound to it:
 * a refresh token is refused once its key is gone (RFC 9449 §5).
 */
export interface DpopKeyStore {
  get(): DpopKeyPair | null | Promise<DpopKeyPair | null>;
  set(keys: DpopKeyPair): void | Promise<void>;
  clear(): void | Promise<void>;
}

/** The public key as it goes into the proof's `jwk` header (RFC 7518 §6.2.1). */
export interface DpopPublicJwk {
  kty: 'EC';
  crv: 'P-256';
  x: string;
  y: string;
}

/** Lasts as long as the process or page; the default where IndexedDB is missing (Node). */
export function memoryDpopKeyStore(initial: DpopKeyPair | null = null): DpopKeyStore {
  let keys = initial;
  return {
    get: () => keys,
    set: (next) => {
      keys = next;
    },
    clear: () => {
      keys = null;
    },
  };
}

// The few IndexedDB shapes used below, declared here because the tests
// compile this file without the DOM library.
interface IdbRequest {
  result: unknown;
  error: Error | null;
  onsuccess: (() => void) | null;
  onerror: (() => void) | null;
}
interface IdbOpenRequest extends IdbRequest {
  result: IdbDatabase;
  onupgradeneeded: (() => void) | null;
}
interface IdbObjectStore {
  get(key: string): IdbRequest;
  put(value: unknown, key: string): IdbRequest;
  delete(key: string): IdbRequest;
}
interface IdbTransaction {
  error: Error | null;
  objectStore(name: string): IdbObjectStore;
  oncomplete: (() => void) | null;
  onerror: (() => void) | null;
  onabort: (() => void) | null;
}
interface IdbDatabase {
  objectStoreNames: { contains(name: string): boolean };
  createObjectStore(name: string): unknown;
  transaction(store: string, mode: 'readonly' | 'readwrite'): IdbTransaction;
  close(): void;
}
interface IdbFactory {
  open(name: string, version: number): IdbOpenRequest;
}

const OBJECT_STORE = 'keys';
const KEY = 'dpop';

function indexedDbFactory(): IdbFactory | undefined {
  return (globalThis as { indexedDB?: IdbFactory }).indexedDB;
}

/**
 * Keeps the key pair in IndexedDB, the browser default. CryptoKey objects are
 * serializable (Web Cryptography API), so IndexedDB stores them by structured
 * clone and the private key survives a page reload while staying
 * non-extractable: script on the page, an XSS payload included, can sign with
 * it while the page is open but never read it out.
 */
export function indexedDbDpopKeyStore(name = 'lineage-dpop'): DpopKeyStore {
  /**
   * Runs one request in a transaction on a connection of its own, closed
   * afterwards, so no open connection blocks a later version change or
   * deletion of the database. Resolves with the request's result once the
   * transaction has committed: only then is a write durable.
   */
  function run(
    mode: 'readonly' | 'readwrite',
    work: (store: IdbObjectStore) => IdbRequest,
  ): Promise<unknown> {
    const factory = indexedDbFactory();
    if (factory === undefined) return Promise.reject(new Error('IndexedDB is not available'));
    return new Promise((resolve, reject) => {
      const opening = factory.open(name, 1);
      opening.onupgradeneeded = () => {
        if (!opening.result.objectStoreNames.contains(OBJECT_STORE)) {
          opening.result.createObjectStore(OBJECT_STORE);
        }
      };
      opening.onerror = () => reject(opening.error ?? new Error(`cannot open IndexedDB ${name}`));
      opening.onsuccess = () => {
        const db = opening.result;
        try {
          const transaction = db.transaction(OBJECT_STORE, mode);
          const request = work(transaction.objectStore(OBJECT_STORE));
          transaction.oncomplete = () => {
            db.close();
            resolve(request.result);
          };
          transaction.onerror = transaction.onabort = () => {
            db.close();
            reject(transaction.error ?? new Error(`IndexedDB ${name}: transaction aborted`));
          };
        } catch (error) {
          db.close();
          reject(error instanceof Error ? error : new Error(String(error)));
        }
      };
    });
  }

  return {
    async get() {
      const stored = (await run('readonly', (store) => store.get(KEY))) as DpopKeyPair | undefined;
      return stored ?? null;
    },
    async set(keys) {
      // A plain object: structured clone keeps the CryptoKey members as they are.
      await run('readwrite', (store) =>
        store.put({ publicKey: keys.publicKey, privateKey: keys.privateKey }, KEY),
      );
    },
    async clear() {
      await run('readwrite', (store) => store.delete(KEY));
    },
  };
}

/** The default store: IndexedDB where there is one (browsers), memory elsewhere. */
export function defaultDpopKeyStore(): DpopKeyStore {
  return indexedDbFactory() !== undefined ? indexedDbDpopKeyStore() : memoryDpopKeyStore();
}

/**
 * A new P-256 key pair for ES256 (RFC 7518 §3.4). The private key is created
 * non-extractable: nothing, this SDK included, can export it, only sign with it.
 */
export async function generateDpopKeyPair(): Promise<DpopKeyPair> {
  return crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, [
    'sign',
    'verify',
  ]);
}

/**
 * The public half as a JWK with only its public members: WebCrypto's export
 * adds `key_ops` and `ext`, which do not belong in a proof's header (RFC 9449
 * §4.2 wants the public key and nothing private; RFC 7638 §3.2 thumbprints
 * these four members alone).
 */
export async function exportDpopPublicJwk(publicKey: Key): Promise<DpopPublicJwk> {
  const { kty, crv, x, y } = await crypto.subtle.exportKey('jwk', publicKey);
  if (kty !== 'EC' || crv !== 'P-256' || x === undefined || y === undefined) {
    throw new Error('DPoP key is not a P-256 key');
  }
  return { kty, crv, x, y };
}

const encoder = new TextEncoder();

/** Base64url without padding (RFC 7515 §2), without Buffer so it runs in browsers. */
function base64url(bytes: Uint8Array): string {
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function base64urlJson(value: unknown): string {
  return base64url(encoder.encode(JSON.stringify(value)));
}

/** `ath` (RFC 9449 §4.2): the base64url SHA-256 of the access token's ASCII bytes. */
export async function accessTokenHash(accessToken: string): Promise<string> {
  return base64url(
    new Uint8Array(await crypto.subtle.digest('SHA-256', encoder.encode(accessToken))),
  );
}

/**
 * `htu` (RFC 9449 §4.2): the target URI without its query and fragment. The
 * URL parser has already normalized scheme, host and default port, as the
 * server does before comparing (§4.3, RFC 3986 §6.2.2 and §6.2.3).
 */
export function dpopTargetUri(url: string | URL): string {
  const parsed = new URL(url);
  return parsed.origin + parsed.pathname;
}

export interface DpopProofInput {
  /** `htm`: the request's HTTP method. */
  method: string;
  /** The request URL; `htu` is it without query and fragment. */
  url: string | URL;
  /** The access token the request carries, hashed into `ath` (resource requests only). */
  accessToken?: string;
  /** The server's last `DPoP-Nonce` (RFC 9449 §8). */
  nonce?: string;
  /** `iat` in seconds; now by default. */
  issuedAt?: number;
}

/**
 * Signs one DPoP proof (RFC 9449 §4.2): a JWS of type `dpop+jwt` whose header
 * carries the public key, with a fresh `jti` so the server can refuse a
 * replay (§11.1). WebCrypto's ECDSA signature is already the fixed-length
 * r||s JWS wants (RFC 7518 §3.4), no DER to unwrap.
 */
export async function createDpopProof(
  keys: DpopKeyPair,
  input: DpopProofInput,
  jwk?: DpopPublicJwk,
): Promise<string> {
  const header = {
    typ: 'dpop+jwt',
    alg: 'ES256',
    jwk: jwk ?? (await exportDpopPublicJwk(keys.publicKey)),
  };
  const payload: Record<string, string | number> = {
    // 128 random bits: no two proofs share one (§4.2), so the server can tell a replay.
    jti: base64url(crypto.getRandomValues(new Uint8Array(16))),
    htm: input.method,
    htu: dpopTargetUri(input.url),
    iat: input.issuedAt ?? Math.floor(Date.now() / 1000),
  };
  if (input.accessToken !== undefined) payload.ath = await accessTokenHash(input.accessToken);
  if (input.nonce !== undefined) payload.nonce = input.nonce;
  const signingInput = `${base64urlJson(header)}.${base64urlJson(payload)}`;
  const signature = await crypto.subtle.sign(
    { name: 'ECDSA', hash: 'SHA-256' },
    keys.privateKey,
    encoder.encode(signingInput),
  );
  return `${signingInput}.${base64url(new Uint8Array(signature))}`;
}

/** What a client signs with: one key pair, and the nonces the servers sent. */
export interface DpopSigner {
  /** A proof for one request, with the newest nonce its origin sent; a new `jti` each time. */
  proof(method: string, url: string | URL, accessToken?: string): Promise<string>;
  /** Remembers the response's `DPoP-Nonce`, if any, as its origin's newest (RFC 9449 §8). */
  remember(url: string | URL, response: Response): void;
  /** The public key proofs carry (the one sessions are bound to). */
  publicJwk(): Promise<DpopPublicJwk>;
}

/**
 * A signer on the store's key pair, created (and stored) on first use when
 * the store has none. The pair is read once and kept, as is its public JWK;
 * one load at a time, so two first requests do not create two keys.
 */
export function createDpopSigner(store: DpopKeyStore): DpopSigner {
  let loading: Promise<{ keys: DpopKeyPair; jwk: DpopPublicJwk }> | undefined;
  /** By origin: a nonce is only for the server that sent it (RFC 9449 §9). */
  const nonces = new Map<string, string>();

  async function load() {
    let keys = await store.get();
    if (keys === null) {
      keys = await generateDpopKeyPair();
      await store.set(keys);
    }
    return { keys, jwk: await exportDpopPublicJwk(keys.publicKey) };
  }

  function loaded() {
    // A failed load (IndexedDB refused, say) is not kept: the next request tries again.
    loading ??= load().catch((error: unknown) => {
      loading = undefined;
      throw error;
    });
    return loading;
  }

  return {
    async proof(method, url, accessToken) {
      const { keys, jwk } = await loaded();
      const nonce = nonces.get(new URL(url).origin);
      return createDpopProof(keys, { method, url, accessToken, nonce }, jwk);
    },
    remember(url, response) {
      const nonce = response.headers.get('DPoP-Nonce');
      if (nonce !== null && nonce !== '') nonces.set(new URL(url).origin, nonce);
    },
    publicJwk: async () => (await loaded()).jwk,
  };
}
