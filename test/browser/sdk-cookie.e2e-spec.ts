import type { Browser, BrowserContext, Page } from 'playwright-core';
import { describeInChromium, launchChromium } from '../support/browser.js';
import { PASSWORD, uniqueUsername } from '../support/requests.js';
import {
  compileSdk,
  loadSdkPage,
  pageFunctions,
  serveSdkPage,
  startSdkPageServer,
} from '../support/sdk-page.js';
import { freePort } from '../support/app-process.js';
import { startTestApp, useTestApp } from '../support/test-app.js';
import { countRequests } from '../client/support.js';

const STEP_MS = 15_000;
/** Chromium logs the 4xx and 5xx the page's fetches get; these are the tests' plan. */
const EXPECTED_REFUSAL =
  /^Failed to load resource: the server responded with a status of (400|401|503)\b/;

/**
 * The page: the SDK with its browser defaults (cookie transport, access token
 * in memory, tabs coordinated), its auth-state events recorded, and a few
 * functions the test calls through page.evaluate. `?retry` turns retries on.
 */
const PAGE = `<!doctype html>
<meta charset="utf-8">
<title>Lineage SDK cookie transport</title>
<script type="module">
  import { createLineageClient } from './sdk/lineage-client.js';

  const retry = new URLSearchParams(location.search).has('retry')
    ? { attempts: 3, baseDelay: 50 }
    : undefined;
  // The API's origin: the page's own, or another one of the same site (\`?api=\`).
  const baseUrl = new URLSearchParams(location.search).get('api') ?? location.origin;
  const dpop = new URLSearchParams(location.search).has('dpop') ? true : undefined;
  const client = createLineageClient({ baseUrl, retry, dpop });
  const events = [];
  client.onAuthStateChange((event) => events.push(event));

  async function outcome(promise) {
    try {
      return { value: await promise };
    } catch (error) {
      return {
        error: { status: error.status, code: error.code, name: error.name, requestId: error.requestId },
      };
    }
  }

  globalThis.sdkTest = {
    register: (username, password) =>
      outcome(client.register({ username, password }).then((tokens) => Object.keys(tokens))),
    tokenType: (username, password) =>
      outcome(client.register({ username, password }).then((tokens) => tokens.token_type)),
    sessions: () => outcome(client.sessions.list()),
    restore: () => outcome(client.restore()),
    refresh: () => outcome(client.refresh()),
    me: () => outcome(client.users.me()),
    missing: () => outcome(client.todos.get('00000000-0000-4000-8000-000000000000')),
    logout: () => outcome(client.logout()),
    loggedIn: () => client.isLoggedIn(),
    accessToken: () => client.getAccessToken(),
    events: () => events.map(({ type, source, code }) => ({ type, source, code })),
    cookies: () => document.cookie,
  };
  document.body.dataset.ready = 'true';
</script>
<body></body>`;

interface Outcome<T> {
  value?: T;
  error?: { status?: number; code?: string; name: string; requestId?: string };
}
interface PageEvent {
  type: string;
  source: string;
  code?: string;
}
interface User {
  id: string;
  username: string;
}

interface TestPage {
  sdkTest: {
    register(username: string, password: string): Promise<Outcome<string[]>>;
    tokenType(username: string, password: string): Promise<Outcome<string>>;
    sessions(): Promise<Outcome<{ current: boolean; dpop_bound: boolean }[]>>;
    restore(): Promise<Outcome<User | null>>;
    refresh(): Promise<Outcome<undefined>>;
    me(): Promise<Outcome<User>>;
    missing(): Promise<Outcome<unknown>>;
    logout(): Promise<Outcome<undefined>>;
    loggedIn(): Promise<boolean>;
    accessToken(): Promise<string | null>;
    events(): PageEvent[];
    cookies(): string;
  };
}
type PageApi = TestPage['sdkTest'];

const call = pageFunctions<PageApi>('sdkTest');

const types = (events: PageEvent[]) => events.map((event) => event.type);

describeInChromium('client SDK with the refresh cookie in a real browser', () => {
  const t = useTestApp({}, { listen: true });
  let browser: Browser;
  let sdk: Awaited<ReturnType<typeof compileSdk>> | undefined;
  let baseUrl: string;
  let refreshes: { count: number };
  let sessionStarts: { count: number };
  const problems: string[] = [];

  beforeAll(async () => {
    baseUrl = t.baseUrl;
    refreshes = countRequests(t, 'POST', '/auth/refresh');
    sessionStarts = countRequests(t, 'POST', '/auth/login');
    sdk = await compileSdk();
    browser = await launchChromium();
  }, 90_000);

  afterAll(async () => {
    await browser?.close();
    await sdk?.remove();
  });

  /** A new browser profile (empty cookie jar) whose pages are served the test page. */
  async function newProfile(): Promise<BrowserContext> {
    problems.length = 0;
    const context = await browser.newContext();
    await serveSdkPage(context, baseUrl, sdk!.dir, PAGE);
    return context;
  }

  async function openTab(context: BrowserContext, query = ''): Promise<Page> {
    const page = await context.newPage();
    page.setDefaultTimeout(STEP_MS);
    page.on('pageerror', (error) => problems.push(`pageerror: ${error.message}`));
    page.on('console', (message) => {
      if (message.type() === 'error' && !EXPECTED_REFUSAL.test(message.text())) {
        problems.push(`console: ${message.text()}`);
      }
    });
    await page.goto(`${baseUrl}/sdk-test/index.html${query}`);
    await page.locator('body[data-ready="true"]').waitFor({ state: 'attached' });
    return page;
  }

  async function signUp(page: Page): Promise<string> {
    const username = uniqueUsername('cookie');
    const registered = await call(page, 'register', username, PASSWORD);
    // The refresh token went into the cookie, not into the page.
    expect(registered.value).not.toContain('refresh_token');
    return username;
  }

  /** Two tabs of one profile on one session: signed up in the first, restored in the second. */
  async function twoSignedInTabs(context: BrowserContext): Promise<[Page, Page]> {
    const first = await openTab(context);
    await signUp(first);
    const second = await openTab(context);
    // The second tab learns of the session from the first (or the cookie): either way, one session.
    expect((await call(second, 'restore')).value).toBeTruthy();
    return [first, second];
  }

  it('survives a reload: restore() refreshes by cookie, with no new login, and script never sees the cookie', async () => {
    const context = await newProfile();
    try {
      const page = await openTab(context);
      const username = await signUp(page);
      expect(await call(page, 'cookies')).toBe('');
      expect(await call(page, 'loggedIn')).toBe(true);

      await loadSdkPage(page, baseUrl, true);
      // After the reload the access token is gone (memory only).
      expect(await call(page, 'loggedIn')).toBe(false);
      sessionStarts.count = 0;
      refreshes.count = 0;

      const restored = await call(page, 'restore');

      expect(restored.value).toMatchObject({ username });
      expect(refreshes.count).toBe(1);
      expect(sessionStarts.count).toBe(0);
      expect(types(await call(page, 'events'))).toEqual(['signed_in']);
      expect((await call(page, 'me')).value).toMatchObject({ username });
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  }, 90_000);

  it('with DPoP too: the session is bound, and restore() after a reload signs the cookie refresh with the kept key', async () => {
    const context = await newProfile();
    try {
      const page = await openTab(context, '?dpop');
      expect(await call(page, 'tokenType', uniqueUsername('cookie'), PASSWORD)).toEqual({
        value: 'DPoP',
      });
      await loadSdkPage(page, baseUrl, true);
      refreshes.count = 0;

      expect((await call(page, 'restore')).value).toBeTruthy();

      expect(refreshes.count).toBe(1);
      expect((await call(page, 'sessions')).value).toEqual([
        expect.objectContaining({ current: true, dpop_bound: true }),
      ]);
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  }, 90_000);

  it('restore() without a session resolves to null, and emits nothing', async () => {
    const context = await newProfile();
    try {
      const page = await openTab(context);
      expect(await call(page, 'restore')).toEqual({ value: null });
      expect(await call(page, 'events')).toEqual([]);
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  }, 90_000);

  it('restore() with a cookie whose session was ended elsewhere resolves to null and emits session_ended', async () => {
    const context = await newProfile();
    try {
      const page = await openTab(context);
      await signUp(page);
      const accessToken = await call(page, 'accessToken');
      if (accessToken === null) throw new Error('no access token after signing up');
      // Another device ends every session of the account.
      await t
        .http()
        .post('/auth/logout-all')
        .set('Authorization', `Bearer ${accessToken}`)
        .send({})
        .expect(200);

      await loadSdkPage(page, baseUrl, true);
      const restored = await call(page, 'restore');

      expect(restored).toEqual({ value: null });
      expect(await call(page, 'events')).toEqual([
        { type: 'session_ended', source: 'this_tab', code: 'session_revoked' },
      ]);
      // The refusal cleared the dead cookie: the next restore finds none, and says nothing.
      expect(await call(page, 'restore')).toEqual({ value: null });
      expect(await call(page, 'events')).toHaveLength(1);
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  }, 90_000);

  it('two tabs refreshing at once make one refresh request, and both get its access token', async () => {
    const context = await newProfile();
    try {
      const [first, second] = await twoSignedInTabs(context);
      const before = [(await call(first, 'events')).length, (await call(second, 'events')).length];
      refreshes.count = 0;

      const [a, b] = await Promise.all([call(first, 'refresh'), call(second, 'refresh')]);

      expect(a).toEqual({});
      expect(b).toEqual({});
      expect(refreshes.count).toBe(1);
      const [tokenA, tokenB] = await Promise.all([
        call(first, 'accessToken'),
        call(second, 'accessToken'),
      ]);
      expect(tokenA).toEqual(expect.any(String));
      expect(tokenB).toBe(tokenA);
      const sources = [
        ...(await call(first, 'events')).slice(before[0]),
        ...(await call(second, 'events')).slice(before[1]),
      ]
        .filter((event) => event.type === 'token_refreshed')
        .map((event) => event.source)
        .sort();
      // One tab refreshed, the other was handed the result.
      expect(sources).toEqual(['other_tab', 'this_tab']);
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  }, 90_000);

  it('a logout in one tab signs the other out: it gets signed_out and its next call is refused', async () => {
    const context = await newProfile();
    try {
      const [first, second] = await twoSignedInTabs(context);
      expect((await call(second, 'me')).value).toBeTruthy();

      expect(await call(first, 'logout')).toEqual({});

      await second.waitForFunction(() =>
        (globalThis as unknown as TestPage).sdkTest
          .events()
          .some((event) => event.type === 'signed_out'),
      );
      expect(await call(second, 'events')).toContainEqual({
        type: 'signed_out',
        source: 'other_tab',
      });
      expect(await call(second, 'loggedIn')).toBe(false);
      expect((await call(second, 'me')).error).toMatchObject({
        status: 401,
        code: 'token_missing',
      });
      // The cookie went with the logout: a reload finds no session.
      await loadSdkPage(second, baseUrl, true);
      expect(await call(second, 'restore')).toEqual({ value: null });
      // The first tab: its sign-in, the second tab's restore (a refresh it was handed), its logout.
      expect(await call(first, 'events')).toEqual([
        { type: 'signed_in', source: 'this_tab' },
        { type: 'token_refreshed', source: 'other_tab' },
        { type: 'signed_out', source: 'this_tab' },
      ]);
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  }, 90_000);

  it.each([
    ['with retry, the refresh is retried after Retry-After', '?retry'],
    ['without retry, the refresh fails and the next one succeeds', ''],
  ])(
    'a 503 in front of the server during a refresh keeps the session (%s)',
    async (_what, query) => {
      const context = await newProfile();
      try {
        const page = await openTab(context, query);
        const username = await signUp(page);
        // One refresh answered by an outage in front of the API, as a proxy would.
        let outages = 1;
        const seen: number[] = [];
        await page.route(`${baseUrl}/auth/refresh`, async (route) => {
          if (outages > 0) {
            outages -= 1;
            seen.push(503);
            return route.fulfill({
              status: 503,
              headers: { 'Retry-After': '1', 'Content-Type': 'application/json' },
              body: JSON.stringify({
                statusCode: 503,
                error: 'Service Unavailable',
                code: 'service_unavailable',
                message: 'Try again shortly',
              }),
            });
          }
          seen.push(0);
          return route.continue();
        });
        refreshes.count = 0;

        const first = await call(page, 'refresh');
        if (query === '') {
          expect(first.error).toMatchObject({ status: 503, code: 'service_unavailable' });
          expect(await call(page, 'loggedIn')).toBe(true);
          expect(await call(page, 'refresh')).toEqual({});
        } else {
          expect(first).toEqual({});
        }

        expect(seen).toEqual([503, 0]);
        expect(refreshes.count).toBe(1);
        expect((await call(page, 'me')).value).toMatchObject({ username });
        const events = await call(page, 'events');
        expect(types(events)).toEqual(['signed_in', 'token_refreshed']);
        expect(problems).toEqual([]);
      } finally {
        await context.close();
      }
    },
    90_000,
  );
});

describeInChromium(
  'client SDK with the refresh cookie, from another origin of the same site (CORS)',
  () => {
    // The page at another port of 127.0.0.1: another origin, the same site, so
    // the SameSite=Strict cookie goes along with credentialed requests.
    let pageServer: Awaited<ReturnType<typeof startSdkPageServer>> | undefined;
    let pageOrigin: string;
    let corsApi: Awaited<ReturnType<typeof startTestApp>> | undefined;
    let apiUrl: string;
    let browser: Browser;
    let sdk: Awaited<ReturnType<typeof compileSdk>> | undefined;

    beforeAll(async () => {
      sdk = await compileSdk();
      pageServer = await startSdkPageServer(sdk.dir, PAGE);
      pageOrigin = pageServer.origin;
      const port = await freePort();
      apiUrl = `http://127.0.0.1:${port}`;
      corsApi = await startTestApp({ CORS_ORIGINS: pageOrigin, PUBLIC_URL: apiUrl });
      await corsApi.app.listen({ port, host: '127.0.0.1' });
      browser = await launchChromium();
    }, 90_000);

    afterAll(async () => {
      await browser?.close();
      await sdk?.remove();
      await pageServer?.close();
      await corsApi?.close();
    });

    it('signs up, survives a reload through restore(), and reads the request id of an error', async () => {
      const context = await browser.newContext();
      try {
        const page = await context.newPage();
        page.setDefaultTimeout(STEP_MS);
        await page.goto(`${pageOrigin}/sdk-test/index.html?api=${encodeURIComponent(apiUrl)}`);
        await page.locator('body[data-ready="true"]').waitFor({ state: 'attached' });
        const username = uniqueUsername('cors');
        const registered = await call(page, 'register', username, PASSWORD);
        expect(registered.error).toBeUndefined();
        expect(registered.value).not.toContain('refresh_token');

        await loadSdkPage(page, pageOrigin, true);
        expect((await call(page, 'restore')).value).toMatchObject({ username });

        const missing = await call(page, 'missing');
        expect(missing.error).toMatchObject({ status: 404, code: 'not_found' });
        expect(missing.error?.requestId).toEqual(expect.any(String));
      } finally {
        await context.close();
      }
    }, 90_000);
  },
);
