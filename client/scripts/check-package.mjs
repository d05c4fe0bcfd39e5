// Checks the built package (client/dist, from `npm run client:build`) the way
// a consumer meets it: installed under its name in a scratch project, its
// `exports` resolved by Node and by TypeScript (nodenext), its declaration
// files compiled against, its JavaScript imported; and `npm pack` listing
// only the files meant to ship.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const client = join(dirname(fileURLToPath(import.meta.url)), '..');
const root = join(client, '..');
const fail = (message) => {
  console.error(`check-package: ${message}`);
  process.exit(1);
};

for (const entry of ['lineage-client', 'resource-server']) {
  for (const ext of ['js', 'd.ts']) {
    if (!existsSync(join(client, 'dist', `${entry}.${ext}`))) {
      fail(`dist/${entry}.${ext} is missing: run npm run client:build`);
    }
  }
}

const consumer = await mkdtemp(join(tmpdir(), 'lineage-client-consumer-'));
try {
  await mkdir(join(consumer, 'node_modules', '@lineage'), { recursive: true });
  await symlink(client, join(consumer, 'node_modules', '@lineage', 'client'), 'dir');
  // The one runtime dependency, from this checkout's install.
  await symlink(join(root, 'node_modules', 'jose'), join(consumer, 'node_modules', 'jose'), 'dir');
  await writeFile(join(consumer, 'package.json'), JSON.stringify({ type: 'module' }));
  await writeFile(
    join(consumer, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        module: 'nodenext',
        moduleResolution: 'nodenext',
        target: 'ES2022',
        lib: ['ES2022', 'DOM'],
        types: [],
        strict: true,
        noEmit: true,
      },
      files: ['consumer.ts'],
    }),
  );
  await writeFile(
    join(consumer, 'consumer.ts'),
    `import {
  createLineageClient,
  LineageApiError,
  LineageNetworkError,
  type AuthStateEvent,
  type LineageErrorCode,
  type Todo,
} from '@lineage/client';
import { createTokenVerifier } from '@lineage/client/resource-server';

const client = createLineageClient({ baseUrl: 'https://api.example.com', retry: { attempts: 3 } });
const stop: () => void = client.onAuthStateChange((event: AuthStateEvent) => {
  if (event.type === 'session_ended') {
    const code: LineageErrorCode = event.code;
    void code;
  }
});
export async function use(): Promise<Todo> {
  try {
    return await client.request('GET', '/todos/{id}', { params: { id: 'x' } });
  } catch (error) {
    if (error instanceof LineageApiError) console.log(error.code, error.retryAfter, error.requestId);
    if (error instanceof LineageNetworkError) console.log(error.cause);
    throw error;
  } finally {
    stop();
  }
}
void createTokenVerifier;
`,
  );
  execFileSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', consumer], {
    stdio: 'inherit',
  });
  execFileSync(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `const sdk = await import('@lineage/client');
const rs = await import('@lineage/client/resource-server');
const client = sdk.createLineageClient({ baseUrl: 'http://127.0.0.1:9' });
if (typeof client.request !== 'function' || typeof rs.createTokenVerifier !== 'function') process.exit(1);
if (!(new sdk.LineageNetworkError('GET', 'x', new Error('e')) instanceof Error)) process.exit(1);
client.close();`,
    ],
    { cwd: consumer, stdio: 'inherit' },
  );
} finally {
  await rm(consumer, { recursive: true, force: true });
}

const [packed] = JSON.parse(
  execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
    cwd: client,
    encoding: 'utf8',
  }),
);
const stray = packed.files
  .map((file) => file.path)
  .filter((path) => !path.startsWith('dist/') && path !== 'README.md' && path !== 'package.json');
if (stray.length > 0) fail(`npm pack would ship more than dist/, README.md and package.json: ${stray.join(', ')}`);
if (!packed.files.some((file) => file.path === 'README.md')) fail('npm pack would ship no README.md');
console.log(`check-package: ${packed.name}@${packed.version}, ${packed.files.length} files, ok`);
