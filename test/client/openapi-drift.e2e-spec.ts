import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { useTestApp } from '../support/test-app.js';

const ROOT = join(import.meta.dirname, '..', '..');
const DOCUMENT = join(ROOT, 'client', 'openapi.json');
const SCHEMA = join(ROOT, 'client', 'src', 'schema.ts');

/** Runs a repository tool (the same ones `npm run client:generate` runs) and returns its stdout. */
async function run(bin: string, args: string[], input?: string): Promise<string> {
  const child = promisify(execFile)(process.execPath, [join(ROOT, bin), ...args], {
    cwd: ROOT,
    maxBuffer: 16 * 1024 * 1024,
  });
  if (input !== undefined) child.child.stdin?.end(input);
  return (await child).stdout;
}

/**
 * The SDK is typed from the committed client/openapi.json. Both must follow
 * the API: a route or DTO change without `npm run client:generate` fails here.
 */
describe('client SDK: OpenAPI document and generated types do not drift (e2e)', () => {
  // The PUBLIC_URL client/scripts/write-openapi.mjs generates the document with (its `servers`).
  const t = useTestApp({ PUBLIC_URL: 'https://lineage.example' });

  it('the document the app serves at /docs-json is the committed client/openapi.json', async () => {
    const served = (await t.http().get('/docs-json').expect(200)).body as unknown;
    const committed = JSON.parse(await readFile(DOCUMENT, 'utf8')) as unknown;
    expect(served).toEqual(committed);
  });

  it('client/src/schema.ts is what openapi-typescript generates from it, formatted', async () => {
    const generated = await run('node_modules/openapi-typescript/bin/cli.js', [
      DOCUMENT,
      '--default-non-nullable',
      'false',
    ]);
    const formatted = await run(
      'node_modules/prettier/bin/prettier.cjs',
      ['--stdin-filepath', SCHEMA],
      generated,
    );
    expect(formatted).toBe(await readFile(SCHEMA, 'utf8'));
  }, 60000);
});
