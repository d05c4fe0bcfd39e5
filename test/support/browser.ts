import { existsSync } from 'node:fs';
import { type Browser, chromium } from 'playwright-core';

// Debian's Chromium (`apt-get install chromium`), not a Playwright-downloaded
// build: CI installs it from the distribution, so nothing is fetched at test time.
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
// In CI a missing browser is a broken pipeline (.ci/run installs it), never a
// silent skip; on a developer machine `npm test` must still pass without it.
// Any CI value but "false" counts, as for Jest's own CI detection (ci-info).
const IN_CI = Boolean(process.env.CI) && process.env.CI !== 'false';
const HAS_CHROMIUM = existsSync(CHROMIUM);

/**
 * `describe` for a suite that drives Chromium: run where there is one and
 * always in CI (where launchChromium then fails loudly), skipped with a
 * warning on a machine without it.
 */
export function describeInChromium(title: string, body: () => void): void {
  if (!HAS_CHROMIUM && !IN_CI) {
    console.warn(
      `Skipping "${title}": no Chromium at ${CHROMIUM}. ` +
        'Install it with `sudo apt-get install chromium`, or point CHROMIUM_PATH at a Chromium binary.',
    );
    describe.skip(title, body);
    return;
  }
  describe(title, body);
}

/** Headless Chromium, with the flags a closed network needs. */
export function launchChromium(): Promise<Browser> {
  if (!HAS_CHROMIUM) {
    throw new Error(
      `In CI but no Chromium at ${CHROMIUM}: .ci/run installs it with ` +
        '`apt-get install -y --no-install-recommends chromium`.',
    );
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    timeout: 30_000,
  });
}
