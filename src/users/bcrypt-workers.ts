import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Logger } from '@nestjs/common';
import { Piscina } from 'piscina';

/**
 * The worker module, next to this file: src/users/ when Jest runs the
 * TypeScript sources, dist/src/users/ when Node runs the build (nest-cli.json
 * copies it there). Either way it is plain JavaScript, which the worker
 * thread loads without a compiler.
 */
const WORKER_FILE = fileURLToPath(new URL('./bcrypt.worker.mjs', import.meta.url));

/**
 * How far below the event loop the bcrypt threads run (nice(1) steps). Applied
 * by the worker itself with os.setPriority rather than by piscina's
 * `niceIncrement`: that option needs the optional native package
 * @napi-rs/nice, and piscina silently skips it when the package is missing,
 * as it is in an install with `--omit=optional` (the container image).
 */
const NICE_INCREMENT = 10;

/** The pool was closed (the process is shutting down): the work was not done. */
export class BcryptWorkersClosedError extends Error {
  constructor() {
    super('bcrypt workers closed');
    this.name = 'BcryptWorkersClosedError';
  }
}

/**
 * A fixed pool of low-priority threads for bcrypt: at most one computation
 * per thread, the rest queued in arrival order.
 */
export class BcryptWorkers {
  private readonly logger = new Logger(BcryptWorkers.name);
  private readonly pool: Piscina;
  private closed = false;

  constructor(size: number) {
    // Fail at boot, naming the file, rather than with a pool whose threads never start.
    if (!existsSync(WORKER_FILE)) throw new Error(`bcrypt worker module not found: ${WORKER_FILE}`);
    this.pool = new Piscina({
      filename: WORKER_FILE,
      workerData: { niceIncrement: NICE_INCREMENT },
      // Every thread started up front and kept: a login never waits for one to spawn.
      minThreads: size,
      maxThreads: size,
      idleTimeout: Infinity,
      concurrentTasksPerWorker: 1,
      // Unbounded: beyond the threads, logins wait their turn.
      maxQueue: Infinity,
    });
    // A thread that dies while idle is replaced by the pool; with no task to
    // fail, piscina reports it here (unheard, it would crash the process).
    this.pool.on('error', (error: unknown) => {
      if (!this.closed) this.logger.error(`bcrypt worker failed: ${String(error)}`);
    });
  }

  hash(password: string, cost: number): Promise<string> {
    return this.run<string>('hash', { password, cost });
  }

  compare(password: string, hash: string): Promise<boolean> {
    return this.run<boolean>('compare', { password, hash });
  }

  /** Fails what is queued or running with BcryptWorkersClosedError and stops the threads. */
  async close(): Promise<void> {
    this.closed = true;
    await this.pool.destroy();
  }

  private async run<T>(name: 'hash' | 'compare', task: object): Promise<T> {
    // Checked here, not left to piscina: after destroy() it would start new threads.
    if (this.closed) throw new BcryptWorkersClosedError();
    try {
      return (await this.pool.run(task, { name })) as T;
    } catch (error) {
      throw this.closed ? new BcryptWorkersClosedError() : error;
    }
  }
}
