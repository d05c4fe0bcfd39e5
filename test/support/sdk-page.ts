import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
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
