import type { DpopSigner } from './dpop.js';
import { LineageApiError, LineageNetworkError, USE_DPOP_NONCE } from './errors.js';
import { retryDelay, type RetryPolicy } from './retry.js';
import type { StoredTokens } from './token-storage.js';
import type { HttpMethod } from './typed-request.js';

type Method = HttpMethod;
interface Init {
  method: Method;
  headers: Record<string, string>;
  body?: string;
  credentials?: 'include';
}
export type Query = Record<string, string | number | boolean | undefined>;

export interface Call {
  method: Method;
  path: string;
  query?: Query;
  body?: unknown;
  headers?: Record<string, string>;
  /**
   * A DPoP client signs this call even without a DPoP access token: the
   * routes that bind a session to its key or check it (login, register,
   * refresh, revoke; RFC 9449 §5).
   */
  proof?: true;
  /** Register, login, refresh: ask for the refresh token in the cookie. */
  transport?: true;
  /** Safe to send again after a lost response (see retry.ts). */
  idempotent: boolean;
}

export interface TransportOptions {
  /** The API's origin and path prefix, without a trailing slash. */
  baseUrl: string;
  fetch: typeof fetch;
  /** The cookie transport: the refresh cookie goes along, and the auth routes are asked for it. */
  cookie: boolean;
  /** The signer of a DPoP client; undefined without DPoP. */
  dpop: DpopSigner | undefined;
  retry: RetryPolicy | undefined;
}

/** One HTTP exchange with the API: the request, its DPoP proof and its retries. */
export interface Transport {
  /**
   * Sends a call, and again after a 429 or 503 or a network failure when
   * `retry` allows (see retryDelay). Each attempt is built anew, so a DPoP
   * proof is never sent twice (RFC 9449 §11.1).
   */
  exchange: (call: Call, tokens?: StoredTokens) => Promise<Response>;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export function createTransport(options: TransportOptions): Transport {
  const { baseUrl, cookie, dpop, retry } = options;
  const fetchImpl = options.fetch;

  /** Whether the tokens are DPoP-bound, and this client can sign for them. */
  function bound(tokens: StoredTokens): boolean {
    return dpop !== undefined && tokens.token_type?.toLowerCase() === 'dpop';
  }

  /** fetch, with a failure to get any answer wrapped in LineageNetworkError. */
  async function fetchOnce(url: URL, init: Init): Promise<Response> {
    try {
      return await fetchImpl(url, init);
    } catch (error) {
      throw new LineageNetworkError(init.method, url.toString(), error);
    }
  }

  function send(call: Call, tokens?: StoredTokens): Promise<Response> {
    const url = new URL(baseUrl + call.path);
    for (const [name, value] of Object.entries(call.query ?? {})) {
      if (value !== undefined) url.searchParams.set(name, String(value));
    }
    const dpopBound = tokens !== undefined && bound(tokens);
    const headers: Record<string, string> = { ...call.headers };
    if (tokens !== undefined) {
      headers.Authorization = `${dpopBound ? 'DPoP' : 'Bearer'} ${tokens.access_token}`;
    }
    // The server refuses a JSON content type with an empty body, so the header
    // goes only with a body.
    if (call.body !== undefined) headers['Content-Type'] = 'application/json';
    if (cookie && call.transport === true) headers['X-Token-Transport'] = 'cookie';
    const init: Init = {
      method: call.method,
      headers,
      body: call.body === undefined ? undefined : JSON.stringify(call.body),
    };
    // The refresh cookie goes along (and is accepted back) cross-origin too:
    // the API's CORS answer allows credentials for the origins it lists.
    if (cookie) init.credentials = 'include';
    if (dpop === undefined) return fetchOnce(url, init);
    // Resource requests are signed only with a bound access token, whose hash
    // the proof then carries (`ath`, RFC 9449 §4.2); with a Bearer one they go
    // out as without DPoP.
    if (dpopBound) return signed(dpop, url, init, tokens.access_token);
    if (call.proof === true) return signed(dpop, url, init);
    return remembering(dpop, url, init);
  }

  async function exchange(call: Call, tokens?: StoredTokens): Promise<Response> {
    for (let attempt = 1; ; attempt++) {
      let response: Response;
      try {
        response = await send(call, tokens);
      } catch (error) {
        if (!(error instanceof LineageNetworkError)) throw error;
        const delay = retryDelay(retry, attempt, { kind: 'network' }, call.idempotent);
        if (delay === undefined) throw error;
        await sleep(delay);
        continue;
      }
      if (response.status !== 429 && response.status !== 503) return response;
      const retryAfter = LineageApiError.retryAfterOf(response);
      const delay = retryDelay(
        retry,
        attempt,
        { kind: 'status', status: response.status, retryAfter },
        call.idempotent,
      );
      if (delay === undefined) return response;
      await response.body?.cancel();
      await sleep(delay);
    }
  }

  /** Sends a DPoP client's unsigned request, keeping the server's `DPoP-Nonce` (RFC 9449 §8.2). */
  async function remembering(signer: DpopSigner, url: URL, init: Init): Promise<Response> {
    const response = await fetchOnce(url, init);
    signer.remember(url, response);
    return response;
  }

  /**
   * Sends a request with a proof; when the server answers that it wants its
   * nonce in the proof, signs again with the nonce it sent and resends, once
   * (RFC 9449 §8, §9).
   */
  async function signed(
    signer: DpopSigner,
    url: URL,
    init: Init,
    accessToken?: string,
  ): Promise<Response> {
    // A new proof per attempt: a resent proof (same jti) is a replay (§11.1).
    const attempt = async () => {
      const proof = await signer.proof(init.method, url, accessToken);
      return remembering(signer, url, { ...init, headers: { ...init.headers, DPoP: proof } });
    };
    const response = await attempt();
    if (!(await asksForNonce(response))) return response;
    await response.body?.cancel();
    // The retry's answer is final, whatever it is: a server that asks again is not asked twice.
    return attempt();
  }

  return { exchange };
}

/** A `use_dpop_nonce` refusal that came with the nonce to use. */
async function asksForNonce(response: Response): Promise<boolean> {
  if (response.status !== 400 && response.status !== 401) return false;
  if (!response.headers.has('DPoP-Nonce')) return false;
  // Read from a copy: the caller reads the body of a refusal that is not this one.
  return (await LineageApiError.from(response.clone())).code === USE_DPOP_NONCE;
}

export async function expectOk(response: Response): Promise<Response> {
  if (!response.ok) throw await LineageApiError.from(response);
  return response;
}

export async function json<T>(response: Response): Promise<T> {
  return (await (await expectOk(response)).json()) as T;
}

/** A response's JSON body; undefined for one without a body (204). */
export async function optionalJson(response: Response): Promise<unknown> {
  await expectOk(response);
  const text = await response.text();
  return text === '' ? undefined : (JSON.parse(text) as unknown);
}
