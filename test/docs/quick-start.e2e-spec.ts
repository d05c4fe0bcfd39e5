import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from 'pg';

/**
 * The README's curl quick start, run as it is written: the script is read out
 * of README.md, so the two cannot drift apart. It runs against the server as
 * `npm start` runs it (development mode, port 8000): with no DATABASE_URL, on
 * the embedded PostgreSQL the server starts itself; under TEST_DATABASE_URL,
 * on a fresh database of that server. What it prints must be what the README
 * says it prints.
 */

const ROOT = join(import.meta.dirname, '..', '..');
const IN_CI = Boolean(process.env.CI) && process.env.CI !== 'false';
const PORT = 8000;

/** The fenced block that follows `<!-- quick-start:<name> -->`. */
function blockAfter(readme: string, name: string): string {
  const marker = `<!-- quick-start:${name} -->`;
  const at = readme.indexOf(marker);
  if (at < 0) throw new Error(`README.md has no ${marker}`);
  const block = /```[a-z]*\n([\s\S]*?)```/.exec(readme.slice(at + marker.length));
  if (!block?.[1]) throw new Error(`no fenced block after ${marker}`);
  return block[1];
}

function hasCommand(name: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

async function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, () => server.close(() => resolve(true)));
  });
}

function run(script: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    // -e and pipefail: a command that fails stops the script instead of
    // printing a wrong line further down.
    const child = spawn('bash', ['-e', '-o', 'pipefail', '-s'], { cwd: ROOT });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(script);
  });
}

const tools = ['bash', 'curl', 'jq'].filter((name) => !hasCommand(name));
// A developer's own `npm start` holds the port the script talks to.
const portFree = await portIsFree(PORT);
const missing = [
  ...(tools.length > 0 ? [`${tools.join(', ')} not installed`] : []),
  ...(portFree ? [] : [`port ${PORT} in use (is the server running?)`]),
];
// In CI nothing is skipped: beforeAll then fails, saying why.
const describeRunnable = missing.length === 0 || IN_CI ? describe : describe.skip;
if (missing.length > 0 && !IN_CI) {
  console.warn(`Skipping the README quick start: ${missing.join('; ')}.`);
}

describeRunnable('the README curl quick start', () => {
  const serverUrl = process.env.TEST_DATABASE_URL;
  const database = `lineage_quick_start_${process.pid}`;
  let dataDir: string;
  let server: ChildProcess | undefined;
  const output: string[] = [];

  /** Runs `sql` on the TEST_DATABASE_URL server's database. */
  async function admin(sql: string): Promise<void> {
    const client = new Client({ connectionString: serverUrl });
    await client.connect();
    try {
      await client.query(sql);
    } finally {
      await client.end();
    }
  }

  beforeAll(async () => {
    if (tools.length > 0) throw new Error(`CI must install ${tools.join(', ')} (.ci/run does)`);
    if (!(await portIsFree(PORT))) {
      throw new Error(`port ${PORT} is in use: the quick start talks to localhost:${PORT}`);
    }
    dataDir = await mkdtemp(join(tmpdir(), 'lineage-quick-start-'));
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? dataDir,
      LINEAGE_DATA_DIR: dataDir,
      LOG_LEVEL: 'warn',
    };
    if (serverUrl) {
      await admin(`DROP DATABASE IF EXISTS ${database}`);
      await admin(`CREATE DATABASE ${database}`);
      const url = new URL(serverUrl);
      url.pathname = `/${database}`;
      env.DATABASE_URL = url.toString();
    }
    // `npm start` without its build step: `npm test` built dist/ first.
    server = spawn(process.execPath, ['dist/src/main.js'], {
      cwd: ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    server.stdout?.on('data', (chunk: Buffer) => output.push(chunk.toString()));
    server.stderr?.on('data', (chunk: Buffer) => output.push(chunk.toString()));
    for (let i = 0; i < 1200 && server.exitCode === null; i += 1) {
      const up = await fetch(`http://127.0.0.1:${PORT}/health`).then(
        (res) => res.ok,
        () => false,
      );
      if (up) return;
      await sleep(100);
    }
    throw new Error(`the server did not come up:\n${output.join('')}`);
  }, 180_000);

  afterAll(async () => {
    if (server && server.exitCode === null) {
      const exited = new Promise((resolve) => server?.once('exit', resolve));
      server.kill('SIGTERM');
      const timeout = new AbortController();
      await Promise.race([exited, sleep(30_000, undefined, { signal: timeout.signal })]).catch(
        () => undefined,
      );
      timeout.abort();
      if (server.exitCode === null) server.kill('SIGKILL');
    }
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
    if (serverUrl) await admin(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
  }, 60_000);

  it('prints what the README says it prints', async () => {
    const readme = await readFile(join(ROOT, 'README.md'), 'utf8');
    const script = blockAfter(readme, 'curl');
    const expected = blockAfter(readme, 'curl-output');
    // The script as written targets the server the README starts.
    expect(script).toContain(`API=http://localhost:${PORT}\n`);

    const result = await run(script);

    expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: '' });
    expect(result.stdout).toBe(expected);
  }, 60_000);
});
