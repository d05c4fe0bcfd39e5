import {
  calculateJwkThumbprint,
  createRemoteJWKSet,
  customFetch,
  EmbeddedJWK,
  errors,
  jwtVerify,
  type JWTPayload,
} from 'jose';
import { SseParser } from './sse.js';

export { SseParser, type ServerSentEvent, type SseHandlers } from './sse.js';

/**
 * What to do while the revocation feed is down: refuse every token, since a
 * session that ended meanwhile would go unnoticed (`fail-closed`), or accept
 * tokens on their signature and expiry alone, as a plain JWKS verifier does
 * (`fail-open`).
 */
export type FeedDownPolicy = 'fail-closed' | 'fail-open';

export interface ResourceServerCredentials {
  /** The resource server's id in Lineage's RESOURCE_SERVERS. */
  id: string;
  secret: string;
}

export interface TokenVerifierOptions {
  /** The `iss` Lineage's tokens carry (its JWT_ISSUER, by default its public URL). */
  issuer: string;
  /** The `aud` they must carry (Lineage's JWT_AUDIENCE). */
  audience: string;
  /** This service's entry in Lineage's RESOURCE_SERVERS. */
  credentials: ResourceServerCredentials;
  /** Where Lineage is reached; the issuer by default. */
  url?: string;
  /** The JWK Set; `<url>/.well-known/jwks.json` by default. */
  jwksUrl?: string;
  /** The revocation feed; `<url>/oauth/revocations` by default. */
  feedUrl?: string;
  /** `fail-closed` by default. */
  onFeedDown?: FeedDownPolicy;
  /**
   * How long the feed may send nothing before it counts as down, in ms. Lineage
   * sends a heartbeat every 2 s; 5000 by default.
   */
  maxFeedSilence?: number;
  /**
   * Reconnection backoff in ms: doubled per failed attempt, with jitter, up to
   * `max` (5000). `initial` is by default the server's `retry` field (Lineage
   * sends 1000), and 250 until one has been received.
   */
  reconnectDelay?: { initial?: number; max?: number };
  /** Seconds of clock difference allowed on `exp`, `iat` (0 by default). */
  clockTolerance?: number;
  /** A fetch implementation; the global one by default (Node >= 20). */
  fetch?: typeof fetch;
  /** Told when the feed goes up or down, with why; for logs and health checks. */
  onFeedStateChange?: (state: FeedState) => void;
  /** Seconds a DPoP proof is accepted after its `iat` (60 by default, as Lineage's default). */
  dpopProofMaxAge?: number;
}

/**
 * The request a token came with, for DPoP-bound tokens (RFC 9449 §7.1):
 * the Authorization scheme, the method, the URL as the client addressed it
 * (this service's public URL: behind a proxy, not the Host it sees) and
 * the `DPoP` header.
 */
export interface PresentedRequest {
  scheme: 'Bearer' | 'DPoP';
  method: string;
  url: string;
  /** The `DPoP` header, if any. */
  proof?: string;
}

export interface FeedState {
  up: boolean;
  /** Why it is down: the HTTP status or network error, silence, or the server ending the stream. */
  reason?: string;
}

/** The claims of a Lineage access token (RFC 9068 names, plus `sid`). */
export interface AccessTokenClaims extends JWTPayload {
  sub: string;
  /** The session (one login): what a logout ends. */
  sid: string;
  jti: string;
  iat: number;
  exp: number;
  /** A DPoP-bound token's key thumbprint (RFC 9449 §6.1). */
  cnf?: { jkt: string };
}

export type TokenVerificationErrorCode =
  /** Not a Lineage access token for this audience: bad signature, shape, issuer, audience or type. */
  | 'token_invalid'
  /** Past its `exp`. */
  | 'token_expired'
  /** Its session ended (logout, revocation, account deletion) before the token expired. */
  | 'session_ended'
  /**
   * A DPoP-bound token without a valid proof of its key, or sent under the
   * wrong scheme (RFC 9449 §7.1): answer 401 with `WWW-Authenticate: DPoP`.
   */
  | 'invalid_dpop_proof'
  /** The revocation feed is down and the policy is fail-closed: retry shortly (a 503). */
  | 'revocation_feed_down'
  /** The JWK Set could not be fetched (a 503): nothing was learned about the token. */
  | 'keys_unavailable';

/** Why `verify` refused a token. A resource server answers 401, or 503 for the last two codes. */
export class TokenVerificationError extends Error {
  override readonly name = 'TokenVerificationError';

  constructor(
    readonly code: TokenVerificationErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  /** Whether the caller should answer 503 (retry) rather than 401 (the token is refused). */
  get isUnavailable(): boolean {
    return this.code === 'revocation_feed_down' || this.code === 'keys_unavailable';
  }
}

export interface TokenVerifier {
  /**
   * The token's claims, or a TokenVerificationError. A DPoP-bound token
   * (`cnf.jkt`) needs `request`, with a proof of its key; without `request`
   * only unbound (bearer) tokens verify.
   */
  verify(token: string, request?: PresentedRequest): Promise<AccessTokenClaims>;
  /** Connected, caught up, and heard from within `maxFeedSilence`. */
  readonly feedUp: boolean;
  /** Resolves once the feed is up the first time; rejects if closed before. */
  ready(): Promise<void>;
  /** Stops following the feed; `verify` refuses from then on. */
  close(): Promise<void>;
}

const SESSION_ENDED_EVENT = 'session.ended';
const CAUGHT_UP_EVENT = 'caught-up';
const ACCESS_TOKEN_TYP = 'at+jwt';
const ALGORITHMS = ['ES256'];
const DEFAULT_MAX_FEED_SILENCE_MS = 5_000;
const DEFAULT_INITIAL_RECONNECT_MS = 250;
const DEFAULT_MAX_RECONNECT_MS = 5_000;
const PRUNE_INTERVAL_MS = 30_000;
const DPOP_TYP = 'dpop+jwt';
// Asymmetric only (RFC 9449 §4.3): the algorithms Lineage publishes.
const DPOP_ALGORITHMS = ['ES256', 'ES384', 'ES512', 'PS256', 'RS256', 'EdDSA'];
const DEFAULT_DPOP_MAX_AGE_S = 60;
const DPOP_IAT_LEEWAY_S = 5;

const dpopRefusal = (message: string) =>
  new TokenVerificationError('invalid_dpop_proof', `Invalid DPoP proof: ${message}`);

/** RFC 9449 §4.3 check 9: compared without query and fragment, after URL normalization. */
function targetUri(url: string): string | null {
  try {
    const parsed = new URL(url);
    return parsed.origin + parsed.pathname;
  } catch {
    return null;
  }
}

async function sha256Base64url(text: string): Promise<string> {
  const digest = new Uint8Array(
    await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text)),
  );
  let binary = '';
  for (const byte of digest) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** RFC 6749 §2.3.1: each part form-urlencoded (encodeURIComponent's output decodes the same), then Basic. */
function basicAuthorization({ id, secret }: ResourceServerCredentials): string {
  const bytes = new TextEncoder().encode(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`);
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return `Basic ${btoa(binary)}`;
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function classify(error: unknown): TokenVerificationError {
  if (error instanceof errors.JWTExpired) {
    return new TokenVerificationError('token_expired', 'The access token has expired', {
      cause: error,
    });
  }
  // Failures to fetch or read the JWK Set: jose's timeout, its generic error
  // (a non-200 or non-JSON answer), and fetch's own (network) errors.
  if (
    error instanceof errors.JWKSTimeout ||
    error instanceof errors.JWKSInvalid ||
    (error instanceof errors.JOSEError && error.code === errors.JOSEError.code) ||
    !(error instanceof errors.JOSEError)
  ) {
    return new TokenVerificationError(
      'keys_unavailable',
      `The JWK Set is unavailable: ${describe(error)}`,
      { cause: error },
    );
  }
  return new TokenVerificationError('token_invalid', `Invalid access token: ${describe(error)}`, {
    cause: error,
  });
}

/**
 * Verifies Lineage's access tokens inside another service, and refuses those
 * whose session has ended within about a second of the logout, where a plain
 * JWKS verifier would accept them until they expire (ACCESS_TOKEN_TTL).
 *
 * - Signatures through the published JWK Set (RFC 7517), ES256 only, with
 *   the issuer, audience and `typ` `at+jwt` (RFC 9068 §2.1, §4) checked.
 * - Ended sessions from GET /oauth/revocations (Server-Sent Events),
 *   authenticated as one of Lineage's RESOURCE_SERVERS. Each `sid` is kept
 *   until its `until`, after which no token of it verifies anyway, so the set
 *   holds only the ends of the last ACCESS_TOKEN_TTL.
 * - The feed reconnects by itself, with backoff, sending `Last-Event-ID` so
 *   it catches up with what ended meanwhile. It counts as up only once caught
 *   up, and not after `maxFeedSilence` without a byte (Lineage sends a
 *   heartbeat every 2 s): a connection can hang without an error. While it is
 *   down, `onFeedDown` decides.
 * - DPoP-bound tokens (RFC 9449 §7.1) only with a proof of their key over
 *   the request and the token, each proof accepted once by this verifier.
 *   A service of several instances shares no replay state here: a proof
 *   replayed to another instance within its lifetime is not detected, the
 *   rest of the binding still holds (only the key's holder makes proofs).
 */
export function createTokenVerifier(options: TokenVerifierOptions): TokenVerifier {
  const base = (options.url ?? options.issuer).replace(/\/+$/, '');
  const policy = options.onFeedDown ?? 'fail-closed';
  const maxSilence = options.maxFeedSilence ?? DEFAULT_MAX_FEED_SILENCE_MS;
  const maxDelay = options.reconnectDelay?.max ?? DEFAULT_MAX_RECONNECT_MS;
  const clockTolerance = options.clockTolerance ?? 0;
  // Called through a wrapper: browsers throw "Illegal invocation" when the
  // global fetch is called with a `this` other than the window.
  const fetchImpl: typeof fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
  const jwks = createRemoteJWKSet(new URL(options.jwksUrl ?? `${base}/.well-known/jwks.json`), {
    [customFetch]: (url, init) => fetchImpl(url, init),
  });
  const feedUrl = options.feedUrl ?? `${base}/oauth/revocations`;
  const authorization = basicAuthorization(options.credentials);

  /** sid -> epoch ms after which its tokens are refused by their `exp` anyway. */
  const ended = new Map<string, number>();
  const dpopMaxAge = options.dpopProofMaxAge ?? DEFAULT_DPOP_MAX_AGE_S;
  /** Accepted DPoP proofs by key and jti -> epoch ms until which a replay is refused. */
  const seenProofs = new Map<string, number>();

  /**
   * RFC 9449 §7.1 for a token bound to `jkt` (or unbound: undefined): the
   * scheme matches the binding, and a bound token comes with a fresh proof
   * of its key over this request and this token (§4.3), never seen before.
   */
  async function checkBinding(
    token: string,
    jkt: string | undefined,
    request: PresentedRequest | undefined,
  ): Promise<void> {
    if (jkt === undefined) {
      if (request?.scheme === 'DPoP') throw dpopRefusal('the token is not DPoP-bound');
      return;
    }
    if (request?.scheme !== 'DPoP') throw dpopRefusal('a DPoP-bound token is sent as DPoP');
    if (request.proof === undefined || request.proof.includes(',')) {
      throw dpopRefusal('exactly one DPoP header is required');
    }
    let header: { jwk?: unknown };
    let claims: JWTPayload;
    try {
      const verified = await jwtVerify(request.proof, EmbeddedJWK, {
        typ: DPOP_TYP,
        algorithms: DPOP_ALGORITHMS,
      });
      ({ protectedHeader: header, payload: claims } = verified);
    } catch (error) {
      throw dpopRefusal(describe(error));
    }
    const now = Date.now() / 1000;
    const { jti, htm, htu, iat, ath } = claims as Record<string, unknown>;
    if (typeof jti !== 'string' || jti === '' || jti.length > 256) throw dpopRefusal('no jti');
    if (htm !== request.method) throw dpopRefusal('htm does not match the request');
    if (
      typeof htu !== 'string' ||
      targetUri(htu) === null ||
      targetUri(htu) !== targetUri(request.url)
    ) {
      throw dpopRefusal('htu does not match the request');
    }
    if (typeof iat !== 'number' || iat < now - dpopMaxAge || iat > now + DPOP_IAT_LEEWAY_S) {
      throw dpopRefusal('iat is outside the accepted window');
    }
    if (ath !== (await sha256Base64url(token))) throw dpopRefusal('ath does not match the token');
    const thumbprint = await calculateJwkThumbprint(
      header.jwk as Parameters<typeof calculateJwkThumbprint>[0],
    );
    if (thumbprint !== jkt) throw dpopRefusal('signed by another key than the token is bound to');
    const seenKey = `${thumbprint}.${jti}`;
    const nowMs = Date.now();
    if ((seenProofs.get(seenKey) ?? 0) > nowMs) throw dpopRefusal('this proof was already used');
    seenProofs.set(seenKey, nowMs + (dpopMaxAge + DPOP_IAT_LEEWAY_S) * 1000);
  }
  let initialDelay = options.reconnectDelay?.initial ?? DEFAULT_INITIAL_RECONNECT_MS;
  let connected = false;
  let caughtUp = false;
  let lastHeard = 0;
  let lastEventId = '';
  let lastPrune = Date.now();
  let closed = false;
  let connection: AbortController | null = null;
  let announced: boolean | null = null;
  let markReady: () => void = () => undefined;
  let failReady: (error: Error) => void = () => undefined;
  const readyPromise = new Promise<void>((resolve, reject) => {
    markReady = resolve;
    failReady = reject;
  });
  // Nobody may be waiting for it.
  readyPromise.catch(() => undefined);
  let wakeSleeper: (() => void) | null = null;

  const isFeedUp = () => connected && caughtUp && Date.now() - lastHeard <= maxSilence;

  function announce(up: boolean, reason?: string): void {
    if (announced === up) return;
    announced = up;
    try {
      options.onFeedStateChange?.(up ? { up } : { up, reason });
    } catch {
      // The listener's failure is its own: the feed goes on.
    }
  }

  function prune(now: number): void {
    if (now - lastPrune < PRUNE_INTERVAL_MS) return;
    lastPrune = now;
    for (const [sid, until] of ended) if (until <= now) ended.delete(sid);
    for (const [proof, until] of seenProofs) if (until <= now) seenProofs.delete(proof);
  }

  function onEvent(type: string, data: string): void {
    if (type === SESSION_ENDED_EVENT) {
      let event: { sid?: unknown; until?: unknown };
      try {
        event = JSON.parse(data) as typeof event;
      } catch {
        return;
      }
      if (typeof event.sid !== 'string' || typeof event.until !== 'number') return;
      // The clock tolerance that lets a token live past its `exp` keeps its end known as long.
      const until = (event.until + clockTolerance) * 1000;
      if (until > (ended.get(event.sid) ?? 0)) ended.set(event.sid, until);
    } else if (type === CAUGHT_UP_EVENT) {
      caughtUp = true;
      announce(true);
      markReady();
    }
  }

  /** One connection, until it ends (resolves) or fails (throws); either way it is down. */
  async function follow(controller: AbortController): Promise<string> {
    // A connection can hang without an error, while connecting or once
    // streaming: it is dropped once nothing has come for maxFeedSilence.
    let watchdog = setTimeout(() => controller.abort(), maxSilence);
    const heard = () => {
      lastHeard = Date.now();
      clearTimeout(watchdog);
      watchdog = setTimeout(() => controller.abort(), maxSilence);
    };
    try {
      const headers: Record<string, string> = {
        Authorization: authorization,
        Accept: 'text/event-stream',
      };
      if (lastEventId !== '') headers['Last-Event-ID'] = lastEventId;
      const response = await fetchImpl(feedUrl, { headers, signal: controller.signal });
      if (!response.ok || !response.body) {
        await response.body?.cancel().catch(() => undefined);
        throw new Error(`the feed answered HTTP ${response.status}`);
      }
      if (!(response.headers.get('content-type') ?? '').startsWith('text/event-stream')) {
        await response.body.cancel().catch(() => undefined);
        throw new Error('the feed did not answer with text/event-stream');
      }
      connected = true;
      heard();
      const parser = new SseParser(
        {
          event: (event) => onEvent(event.type, event.data),
          retry: (ms) => {
            if (options.reconnectDelay?.initial === undefined)
              initialDelay = Math.min(ms, maxDelay);
          },
        },
        lastEventId,
      );
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return 'the server ended the stream';
        heard();
        parser.push(decoder.decode(value, { stream: true }));
        lastEventId = parser.lastEventId;
        prune(lastHeard);
      }
    } finally {
      clearTimeout(watchdog);
    }
  }

  function sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        wakeSleeper = null;
        resolve();
      }
      wakeSleeper = done;
    });
  }

  async function run(): Promise<void> {
    let delay = initialDelay;
    while (!closed) {
      const controller = new AbortController();
      connection = controller;
      let reason: string;
      let cleanEnd = false;
      try {
        reason = await follow(controller);
        cleanEnd = true;
      } catch (error) {
        reason = controller.signal.aborted
          ? closed
            ? 'closed'
            : `no byte for ${maxSilence} ms`
          : describe(error);
      }
      const wasCaughtUp = caughtUp;
      connected = false;
      caughtUp = false;
      connection = null;
      announce(false, reason);
      if (closed) break;
      // A stream that had caught up worked: start the backoff again. One the
      // server ended (it shuts down, or its own view is resyncing) is
      // reconnected at once, to another instance behind a load balancer.
      if (wasCaughtUp) delay = initialDelay;
      if (!(cleanEnd && wasCaughtUp)) {
        await sleep(delay * (0.5 + Math.random() / 2));
        delay = Math.min(maxDelay, delay * 2);
      }
    }
  }

  const running = run();

  return {
    async verify(token: string, request?: PresentedRequest): Promise<AccessTokenClaims> {
      if (closed)
        throw new TokenVerificationError('revocation_feed_down', 'The verifier is closed');
      let payload: JWTPayload;
      try {
        ({ payload } = await jwtVerify(token, jwks, {
          issuer: options.issuer,
          audience: options.audience,
          algorithms: ALGORITHMS,
          typ: ACCESS_TOKEN_TYP,
          clockTolerance,
          requiredClaims: ['sub', 'sid', 'jti', 'iat', 'exp'],
        }));
      } catch (error) {
        throw classify(error);
      }
      if (typeof payload.sid !== 'string' || typeof payload.sub !== 'string') {
        throw new TokenVerificationError('token_invalid', 'Invalid access token: no sid or sub');
      }
      const jkt = (payload.cnf as { jkt?: unknown } | undefined)?.jkt;
      if (payload.cnf !== undefined && typeof jkt !== 'string') {
        throw new TokenVerificationError('token_invalid', 'Invalid access token: malformed cnf');
      }
      await checkBinding(token, jkt as string | undefined, request);
      const until = ended.get(payload.sid);
      if (until !== undefined && until > Date.now()) {
        throw new TokenVerificationError('session_ended', 'The session of this token has ended');
      }
      if (policy === 'fail-closed' && !isFeedUp()) {
        throw new TokenVerificationError(
          'revocation_feed_down',
          'The revocation feed is down: a session that ended meanwhile would go unnoticed',
        );
      }
      return payload as AccessTokenClaims;
    },

    get feedUp(): boolean {
      return isFeedUp();
    },

    ready: () => readyPromise,

    async close(): Promise<void> {
      if (!closed) {
        closed = true;
        connection?.abort();
        wakeSleeper?.();
        failReady(new Error('the token verifier was closed'));
      }
      await running;
    },
  };
}
