import { calculateJwkThumbprint, type JWK } from 'jose';
import { type Browser, type BrowserContext, type Page } from 'playwright-core';
import type { StoredTokens } from '../../client/src/lineage-client.js';
import { PASSWORD, uniqueUsername } from '../support/requests.js';
import { describeInChromium, launchChromium } from '../support/browser.js';
import { compileSdk, loadSdkPage, pageFunctions, serveSdkPage } from '../support/sdk-page.js';
import { useTestApp } from '../support/test-app.js';
import { expiredAccessToken } from '../support/tokens.js';

const STEP_MS = 15_000;
const EXPECTED_REFUSAL = /^Failed to load resource: the server responded with a status of 40[01]\b/;

/**
 * The page: the SDK as the browser loads it (ES modules compiled by tsc), a
 * DPoP client with the default key store (IndexedDB in a browser), and a few
 * functions the test calls through page.evaluate.
 */
const PAGE = `<!doctype html>
<meta charset="utf-8">
<title>Lineage SDK DPoP</title>
<script type="module">
  import {
    createLineageClient,
    exportDpopPublicJwk,
    indexedDbDpopKeyStore,
    memoryDpopKeyStore,
    memoryTokenStorage,
  } from './sdk/lineage-client.js';

  // The test's own choice, not the SDK's: the refresh token must outlive the
  // page reload the test makes, so this page keeps the tokens in
  // sessionStorage. The SDK's default stays memory (a store script can read
  // hands the refresh token to any XSS payload).
  const sessionTokens = {
    get: () => JSON.parse(sessionStorage.getItem('lineage-tokens') ?? 'null'),
    set: (tokens) => sessionStorage.setItem('lineage-tokens', JSON.stringify(tokens)),
    clear: () => sessionStorage.removeItem('lineage-tokens'),
  };
  const baseUrl = location.origin;
  // The body transport, for the same reason (the cookie one is the browser default).
  const client = createLineageClient({
    baseUrl,
    transport: 'body',
    storage: sessionTokens,
    dpop: true,
  });

  const encoder = new TextEncoder();
  const base64url = (bytes) =>
    btoa(String.fromCharCode(...new Uint8Array(bytes)))
      .replace(/\\+/g, '-').replace(/\\//g, '_').replace(/=+$/, '');

  /** Calls the SDK and hands back either its value or the API error's status and code. */
  async function outcome(promise) {
    try {
      return { value: await promise };
    } catch (error) {
      return { error: { status: error.status, code: error.code, message: String(error) } };
    }
  }

  globalThis.dpopTest = {
    register: (username, password) => client.register({ username, password }),
    tokens: () => sessionTokens.get(),
    setTokens: (tokens) => sessionTokens.set(tokens),
    async todoRoundTrip(title) {
      const created = await client.todos.create({ title });
      const { items } = await client.todos.list();
      return { created: created.id, listed: items.map((todo) => todo.id) };
    },
    /** The stored key pair, as the page sees it. */
    async key() {
      const pair = await indexedDbDpopKeyStore().get();
      if (pair === null) return null;
      const jwk = await exportDpopPublicJwk(pair.publicKey);
      // RFC 7638 §3: the SHA-256 of the required members, in lexicographic order.
      const members = JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y });
      const thumbprint = base64url(await crypto.subtle.digest('SHA-256', encoder.encode(members)));
      const exported = await crypto.subtle.exportKey('jwk', pair.privateKey).then(
        () => 'exported',
        (error) => error.name,
      );
      return { jwk, thumbprint, privateExtractable: pair.privateKey.extractable, exported };
    },
    /**
     * What a thief holding the tokens but not the key gets: a second client,
     * on a fresh key in memory, whose requests are logged.
     */
    async otherKey(tokens) {
      const calls = [];
      const logged = async (input, init) => {
        const response = await fetch(input, init);
        calls.push({ method: init.method, path: new URL(input).pathname, status: response.status });
        return response;
      };
      const thief = createLineageClient({
        baseUrl,
        transport: 'body',
        storage: memoryTokenStorage(tokens),
        fetch: logged,
        dpop: { keys: memoryDpopKeyStore() },
      });
      return { ...(await outcome(thief.todos.list())), calls };
    },
  };
  document.body.dataset.ready = 'true';
</script>
<body></body>`;

interface TodoRoundTrip {
  created: string;
  listed: string[];
}

interface PageKey {
  jwk: JWK;
  thumbprint: string;
  privateExtractable: boolean;
  exported: string;
}

interface Outcome<T> {
  value?: T;
  error?: { status: number; code: string; message: string };
}

/** What the page script puts on globalThis (typed here, where the DOM library is absent). */
interface TestPage {
  dpopTest: {
    register(username: string, password: string): Promise<{ token_type: string }>;
    tokens(): StoredTokens | null;
    setTokens(tokens: StoredTokens): void;
    todoRoundTrip(title: string): Promise<TodoRoundTrip>;
    key(): Promise<PageKey | null>;
    otherKey(
      tokens: StoredTokens,
    ): Promise<Outcome<unknown> & { calls: { method: string; path: string; status: number }[] }>;
  };
}

type PageApi = TestPage['dpopTest'];

const call = pageFunctions<PageApi>('dpopTest');

describeInChromium('client SDK with DPoP in a real browser', () => {
  const t = useTestApp({}, { listen: true });
  let browser: Browser;
  let sdk: Awaited<ReturnType<typeof compileSdk>> | undefined;
  let baseUrl: string;
  /** Uncaught script errors and console errors of the page open now. */
  const pageProblems: string[] = [];

  beforeAll(async () => {
    baseUrl = t.baseUrl;
    sdk = await compileSdk();
    browser = await launchChromium();
  }, 90_000);

  afterAll(async () => {
    await browser?.close();
    await sdk?.remove();
  });

  /** A new browser profile (empty IndexedDB and sessionStorage) with the page open. */
  async function openPage(): Promise<{ context: BrowserContext; page: Page }> {
    pageProblems.length = 0;
    const context = await browser.newContext();
    const page = await context.newPage();
    page.setDefaultTimeout(STEP_MS);
    page.on('pageerror', (error) => pageProblems.push(`pageerror: ${error.message}`));
    page.on('console', (message) => {
      // Chromium logs every 4xx the page's fetches get; the 401 of an expired
      // access token and the 400 of a refused proof are this test's plan.
      if (message.type() === 'error' && !EXPECTED_REFUSAL.test(message.text())) {
        pageProblems.push(`console: ${message.text()}`);
      }
    });
    await serveSdkPage(page, baseUrl, sdk!.dir, PAGE);
    await load(page);
    return { context, page };
  }

  const load = (page: Page, reload = false) => loadSdkPage(page, baseUrl, reload);

  async function storedTokens(page: Page): Promise<StoredTokens> {
    const tokens = await call(page, 'tokens');
    if (tokens === null) throw new Error('the page stored no tokens');
    return tokens;
  }

  /** Stores an expired access token of the same session in the page, so the next call refreshes. */
  async function expireAccessToken(page: Page): Promise<StoredTokens> {
    const tokens = await storedTokens(page);
    const expired = { ...tokens, access_token: expiredAccessToken(t, tokens.access_token) };
    await call(page, 'setTokens', expired);
    return expired;
  }

  async function withProblems<T>(run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      throw new Error(`${message}\npage problems: ${JSON.stringify(pageProblems, null, 2)}`, {
        cause: error,
      });
    }
  }

  it('binds the session to a non-extractable key in IndexedDB that survives a reload, and refresh keeps rotating', async () => {
    const { context, page } = await openPage();
    try {
      await withProblems(async () => {
        const username = uniqueUsername('dpop');
        const registered = await call(page, 'register', username, PASSWORD);
        expect(registered.token_type).toBe('DPoP');
        expect(await storedTokens(page)).toMatchObject({ token_type: 'DPoP' });
        const first = await call(page, 'todoRoundTrip', 'before the reload');
        expect(first.listed).toEqual([first.created]);
        const before = await call(page, 'key');
        if (before === null) throw new Error('no key pair in IndexedDB after registering');

        await load(page, true);

        const after = await call(page, 'key');
        expect(after?.jwk).toEqual(before.jwk);
        expect(after?.thumbprint).toBe(before.thumbprint);
        // The page's RFC 7638 thumbprint is the one jose computes.
        expect(after?.thumbprint).toBe(await calculateJwkThumbprint(before.jwk));
        expect(after?.privateExtractable).toBe(false);
        expect(after?.exported).toBe('InvalidAccessError');

        // After the reload: an expired access token makes the SDK refresh,
        // signed with the key from IndexedDB; rotation goes on.
        const expired = await expireAccessToken(page);
        const second = await call(page, 'todoRoundTrip', 'after the reload');
        expect(second.listed).toEqual([second.created, first.created]);
        const rotated = await storedTokens(page);
        expect(rotated.refresh_token).not.toBe(expired.refresh_token);
        expect(rotated.access_token).not.toBe(expired.access_token);
        expect(rotated.token_type).toBe('DPoP');
        expect(pageProblems).toEqual([]);
      });
    } finally {
      await context.close();
    }
  }, 90_000);

  it('refuses a refresh signed with another key (invalid_dpop_proof), and the key holder still refreshes', async () => {
    const { context, page } = await openPage();
    try {
      await withProblems(async () => {
        const username = uniqueUsername('dpop');
        await call(page, 'register', username, PASSWORD);
        const expired = await expireAccessToken(page);

        const stolen = await call(page, 'otherKey', expired);
        expect(stolen.error).toMatchObject({ status: 400, code: 'invalid_dpop_proof' });
        // It was the refresh that was refused, not only the expired access token.
        expect(stolen.calls).toContainEqual({ method: 'POST', path: '/auth/refresh', status: 400 });

        // The session is intact: the page's own client refreshes with its key.
        const own = await call(page, 'todoRoundTrip', 'still mine');
        expect(own.listed).toEqual([own.created]);
        expect((await storedTokens(page)).refresh_token).not.toBe(expired.refresh_token);
        expect(pageProblems).toEqual([]);
      });
    } finally {
      await context.close();
    }
  }, 90_000);
});
