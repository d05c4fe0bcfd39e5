import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { BrowserContext, Page } from 'playwright-core';

const ROOT = join(import.meta.dirname, '..', '..');

/** Where a test page and the SDK are served from: under the API's own origin, so no CORS is involved. */
export const SDK_PAGE_PREFIX = '/sdk-test/';

/** The SDK as it ships, compiled by its own tsconfig (DOM library, no Node types) into a temporary directory. */
export async function compileSdk(): Promise<{ dir: string; remove: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'lineage-sdk-'));
  await promisify(execFile)(
    process.execPath,
    [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'client/tsconfig.json', '--outDir', dir],
    { cwd: ROOT },
  );
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

/**
 * Answers `<baseUrl>/sdk-test/index.html` with `html` and
 * `<baseUrl>/sdk-test/sdk/<module>.js` with the compiled SDK, for one page or
 * for every page of a context (several tabs of one origin). Every other
 * request goes to the real server.
 */
export async function serveSdkPage(
  target: Page | BrowserContext,
  baseUrl: string,
  sdkDir: string,
  html: string,
): Promise<void> {
  await target.route(`${baseUrl}${SDK_PAGE_PREFIX}**`, async (route) => {
    const path = new URL(route.request().url()).pathname.slice(SDK_PAGE_PREFIX.length);
    if (path === 'index.html') {
      return route.fulfill({ contentType: 'text/html; charset=utf-8', body: html });
    }
    const module = /^sdk\/([\w-]+\.js)$/.exec(path);
    if (module) {
      return route.fulfill({
        contentType: 'text/javascript; charset=utf-8',
        body: await readFile(join(sdkDir, module[1])),
      });
    }
    return route.fulfill({ status: 404, body: 'not found' });
  });
}

/** Opens (or reloads) the test page and waits until its script marked the body ready. */
export async function loadSdkPage(page: Page, baseUrl: string, reload = false): Promise<void> {
  if (reload) await page.reload();
  else await page.goto(`${baseUrl}${SDK_PAGE_PREFIX}index.html`);
  await page.locator('body[data-ready="true"]').waitFor({ state: 'attached' });
}

/**
 * A plain HTTP server on 127.0.0.1 serving the test page and the compiled SDK
 * at the same paths as serveSdkPage: a page of its own origin, for tests
 * that call the API cross-origin. A real server rather than a Playwright
 * route: Chromium places a document it did not fetch from an address outside
 * the loopback space, and its Local Network Access checks then refuse the
 * page's requests to the API on 127.0.0.1.
 */
export async function startSdkPageServer(
  sdkDir: string,
  html: string,
): Promise<{ origin: string; close: () => Promise<void> }> {
  const server = createServer((request, response) => {
    const path = new URL(request.url ?? '/', 'http://page').pathname;
    const relative = path.startsWith(SDK_PAGE_PREFIX) ? path.slice(SDK_PAGE_PREFIX.length) : '';
    const module = /^sdk\/([\w-]+\.js)$/.exec(relative);
    if (relative === 'index.html') {
      response.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }).end(html);
    } else if (module) {
      readFile(join(sdkDir, module[1])).then(
        (body) =>
          response.writeHead(200, { 'Content-Type': 'text/javascript; charset=utf-8' }).end(body),
        () => response.writeHead(404).end('not found'),
      );
    } else {
      response.writeHead(404).end('not found');
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/**
 * Calls the test page's functions, which it publishes on `globalThis[name]`:
 * each runs in the page, so it names only the page's own globals.
 */
export function pageFunctions<Api extends Record<string, (...args: never[]) => unknown>>(
  name: string,
) {
  return <K extends keyof Api & string>(
    page: Page,
    fn: K,
    ...args: Parameters<Api[K]>
  ): Promise<Awaited<ReturnType<Api[K]>>> =>
    page.evaluate(
      ({ name, fn, args }) => {
        const api = (globalThis as unknown as Record<string, Record<string, unknown>>)[name];
        return (api?.[fn] as (...a: unknown[]) => unknown)(...args);
      },
      { name, fn, args },
    ) as Promise<Awaited<ReturnType<Api[K]>>>;
}
