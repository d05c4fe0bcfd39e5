import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Browser, type Locator, type Page } from 'playwright-core';
import { PASSWORD, register, uniqueUsername } from '../support/requests.js';
import { describeInChromium, launchChromium } from '../support/browser.js';
import { useTestApp } from '../support/test-app.js';

/** Bound for each UI step; the UI answers in well under a second on an idle machine. */
const STEP_MS = 15_000;

describeInChromium('Swagger UI in a real browser', () => {
  const t = useTestApp({}, { listen: true });
  let browser: Browser;
  let page: Page;
  let baseUrl: string;
  /** Uncaught script errors and console errors; Chromium reports CSP violations as the latter. */
  const pageProblems: string[] = [];

  beforeAll(async () => {
    baseUrl = t.baseUrl;
    browser = await launchChromium();
    page = await browser.newPage();
    page.setDefaultTimeout(STEP_MS);
    page.on('pageerror', (error) => pageProblems.push(`pageerror: ${error.message}`));
    page.on('console', (message) => {
      if (message.type() === 'error') pageProblems.push(`console: ${message.text()}`);
    });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
  });

  /** The operation block of `method path`, found by Swagger UI's own classes and data-path. */
  function operation(method: 'get' | 'post', path: string): Locator {
    return page.locator(`.opblock.opblock-${method}`, {
      has: page.locator(`.opblock-summary-path[data-path="${path}"]`),
    });
  }

  /** Expands an operation, presses "Try it out", and returns its block. */
  async function tryOut(method: 'get' | 'post', path: string): Promise<Locator> {
    const block = operation(method, path);
    await block.locator('.opblock-summary').click();
    await block.getByRole('button', { name: 'Try it out' }).click();
    return block;
  }

  /** Presses "Execute" and waits for the live response (status cell) of this operation. */
  async function execute(block: Locator): Promise<{ status: string; body: string }> {
    await block.getByRole('button', { name: 'Execute' }).click();
    const live = block.locator('.live-responses-table .response');
    const status = live.locator('.response-col_status');
    await status.waitFor();
    return {
      status: (await status.innerText()).trim(),
      body: await live.locator('.response-col_description pre').first().innerText(),
    };
  }

  async function screenshotOnFailure(error: unknown): Promise<never> {
    let where = 'no screenshot (the page was not open)';
    if (page) {
      const dir = await mkdtemp(join(tmpdir(), 'lineage-swagger-ui-'));
      const file = join(dir, 'failure.png');
      await page.screenshot({ path: file, fullPage: true }).then(
        () => (where = `screenshot: ${file}`),
        (shotError: unknown) => (where = `screenshot failed: ${String(shotError)}`),
      );
    }
    const message = error instanceof Error ? error.message : String(error);
    throw new Error(
      `${message}\n${where}\npage problems: ${JSON.stringify(pageProblems, null, 2)}`,
      { cause: error },
    );
  }

  // The README's "Swagger UI" quick start, step by step.
  it('registers, authorizes with the access token, adds and lists todos, logs out', async () => {
    const username = uniqueUsername();
    try {
      // 1. Open /docs.
      await page.goto(`${baseUrl}/docs`);
      await operation('get', '/todos').waitFor();

      // 2. POST /auth/register: Try it out, the body, Execute.
      const registration = await tryOut('post', '/auth/register');
      await registration
        .locator('textarea.body-param__text')
        .fill(JSON.stringify({ username, password: PASSWORD }));
      const registered = await execute(registration);
      expect(registered.status).toBe('201');
      const { access_token } = JSON.parse(registered.body) as { access_token: string };
      expect(access_token).toMatch(/^eyJ/);

      // 3. Authorize, the bearer form, the pasted access token.
      await page.locator('.auth-wrapper button.authorize').click();
      const modal = page.locator('.modal-ux');
      // One form per security scheme (bearer, and the refresh-token cookie): use the bearer one.
      const bearerForm = modal.locator('form', {
        has: page.getByRole('heading', { name: 'bearer (http, Bearer)' }),
      });
      await bearerForm.locator('input[aria-label="auth-bearer-value"]').fill(access_token);
      await bearerForm.getByRole('button', { name: 'Apply credentials' }).click();
      // Authorized: the scheme now offers "Logout" instead of its input.
      await bearerForm.getByRole('button', { name: 'Remove authorization' }).waitFor();
      await bearerForm.getByRole('button', { name: 'Close' }).click();
      await modal.waitFor({ state: 'detached' });

      // 4. POST /todos with a title, then GET /todos lists it.
      const creation = await tryOut('post', '/todos');
      await creation
        .locator('textarea.body-param__text')
        .fill(JSON.stringify({ title: 'Read the docs' }));
      expect((await execute(creation)).status).toBe('201');
      const todos = await tryOut('get', '/todos');
      const listed = await execute(todos);
      expect(listed.status).toBe('200');
      expect(JSON.parse(listed.body)).toEqual([
        expect.objectContaining({ title: 'Read the docs' }),
      ]);
      // The request Swagger UI shows it sent went to the document's server
      // (PUBLIC_URL, this app's origin) and carried the pasted token.
      const sent = await todos.locator('.curl-command').innerText();
      expect(sent).toContain(`'${baseUrl}/todos?`);
      expect(sent).toContain(`Authorization: Bearer ${access_token}`);

      // The strict CSP let everything the UI needs run: no blocked script or style.
      expect(pageProblems).toEqual([]);

      // 5. POST /auth/logout as the page offers it, then GET /todos again: 401.
      const logout = await tryOut('post', '/auth/logout');
      expect((await execute(logout)).status).toBe('200');
      const afterLogout = await execute(todos);
      expect(afterLogout.status).toBe('401');
      expect(JSON.parse(afterLogout.body)).toMatchObject({ code: 'session_revoked' });
      // Chromium logs the refused request, and nothing else went wrong.
      expect(pageProblems).toEqual([
        expect.stringMatching(/^console: Failed to load resource: .* 401/),
      ]);
      pageProblems.length = 0;
    } catch (error) {
      await screenshotOnFailure(error);
    }
  }, 90_000);

  it('authorizes through the OAuth 2 password flow and lists todos with 200', async () => {
    const { username } = await register(t);
    // A fresh page: the first test's persisted authorization must not carry over.
    const context = await browser.newContext();
    const fresh = await context.newPage();
    fresh.setDefaultTimeout(STEP_MS);
    page = fresh;
    try {
      await page.goto(`${baseUrl}/docs`);
      await operation('get', '/todos').waitFor();

      await page.locator('.auth-wrapper button.authorize').click();
      const modal = page.locator('.modal-ux');
      const oauthForm = modal.locator('.auth-container', {
        has: page.getByRole('heading', { name: /^oauth2 \(OAuth2, password\)/ }),
      });
      await oauthForm.locator('#oauth_username').fill(username);
      await oauthForm.locator('#oauth_password').fill(PASSWORD);
      // Prefilled by the page (initOAuth): the client the dialog logs in as.
      await expect(oauthForm.locator('input[data-name="clientId"]').inputValue()).resolves.toBe(
        'swagger-ui',
      );
      await oauthForm.getByRole('button', { name: 'Apply given OAuth2 credentials' }).click();
      // Authorized: the form now offers "Logout" instead of its inputs.
      await oauthForm.getByRole('button', { name: 'Remove authorization' }).waitFor();
      await modal.getByRole('button', { name: 'Close' }).first().click();
      await modal.waitFor({ state: 'detached' });

      const todos = await tryOut('get', '/todos');
      const listed = await execute(todos);
      expect(listed.status).toBe('200');
      expect(JSON.parse(listed.body)).toEqual([]);
      await expect(todos.locator('.curl-command').innerText()).resolves.toMatch(
        /Authorization: Bearer eyJ/,
      );
      expect(pageProblems).toEqual([]);
    } catch (error) {
      await screenshotOnFailure(error);
    } finally {
      await context.close();
    }
  }, 90_000);
});
