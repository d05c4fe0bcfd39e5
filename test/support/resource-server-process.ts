import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const ROOT = join(import.meta.dirname, '..', '..');

let built: Promise<void> | undefined;

/**
 * Builds @lineage/client (`tsc -p client/tsconfig.json`, into client/dist) as
 * a consumer of the package would use it; once per test process.
 */
export function buildClient(): Promise<void> {
  built ??= new Promise<void>((resolve, reject) => {
    const tsc = spawn(
      process.execPath,
      [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'client/tsconfig.json'],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const output: string[] = [];
    tsc.stdout.on('data', (chunk: Buffer) => output.push(chunk.toString()));
    tsc.stderr.on('data', (chunk: Buffer) => output.push(chunk.toString()));
    tsc.once('error', reject);
    tsc.once('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`building the client failed:\n${output.join('')}`)),
    );
  });
  return built;
}

export interface ResourceServerProcess {
  url: string;
  process: ChildProcess;
  /** Everything it printed so far. */
  output: string[];
  /**
   * GET /protected with the token (as Bearer, or under `scheme` with the
   * `proof` header): the status and the body's code (when refused).
   */
  call(
    token: string,
    dpop?: { scheme: 'Bearer' | 'DPoP'; proof?: string },
  ): Promise<{ status: number; code?: string }>;
  feedUp(): Promise<boolean>;
  stop(): Promise<void>;
}

/**
 * Starts test/support/toy-resource-server.mjs (a separate Node process using
 * the built client's token verifier) with `env`, and waits until it listens.
 * buildClient() must have run.
 */
export async function startResourceServer(
  env: Record<string, string>,
): Promise<ResourceServerProcess> {
  const child = spawn(
    process.execPath,
    [join(ROOT, 'test', 'support', 'toy-resource-server.mjs')],
    {
      cwd: ROOT,
      env: { PATH: process.env.PATH, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const output: string[] = [];
  child.stderr?.on('data', (chunk: Buffer) => output.push(chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout?.on('data', (chunk: Buffer) => {
      const text = chunk.toString();
      output.push(text);
      const match = /\{"listening":(\d+)\}/.exec(text);
      if (match) resolve(Number(match[1]));
    });
    child.once('exit', (code) =>
      reject(new Error(`the resource server exited (${code}):\n${output.join('')}`)),
    );
  });
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    process: child,
    output,
    async call(token, dpop) {
      const res = await fetch(`${url}/protected`, {
        headers: {
          Authorization: `${dpop?.scheme ?? 'Bearer'} ${token}`,
          ...(dpop?.proof === undefined ? {} : { DPoP: dpop.proof }),
        },
      });
      const body = (await res.json()) as { code?: string };
      return { status: res.status, code: body.code };
    },
    async feedUp() {
      const res = await fetch(`${url}/health`);
      return ((await res.json()) as { feedUp: boolean }).feedUp;
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      await Promise.race([exited, sleep(5_000)]);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}
