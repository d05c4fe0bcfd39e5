import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

// Runs in each worker thread. It lowers its own scheduling priority first
// (on Linux the nice value is per thread), so bcrypt gets the CPU the event
// loop and the database leave over: logins in flight do not stretch the
// latency of other requests. Inside a worker the synchronous bcrypt calls are
// the right ones: this thread exists only to do that work, and the event
// loop is on another thread.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
try { require('node:os').setPriority(0, 10); } catch {}
const bcrypt = require(workerData.bcryptPath);
parentPort.on('message', ({ op, password, arg }) => {
  try {
    const result = op === 'hash' ? bcrypt.hashSync(password, arg) : bcrypt.compareSync(password, arg);
    parentPort.postMessage({ result });
  } catch (error) {
    parentPort.postMessage({ error: String(error && error.message || error) });
  }
});
`;

/** The pool was closed (the process is shutting down): the work was not done. */
export class BcryptWorkersClosedError extends Error {
  constructor() {
    super('bcrypt workers closed');
    this.name = 'BcryptWorkersClosedError';
  }
}

interface Job {
  op: 'hash' | 'compare';
  password: string;
  arg: string | number;
  resolve: (value: string | boolean) => void;
  reject: (error: Error) => void;
}

interface Slot {
  worker: Worker;
  job: Job | null;
}

/**
 * A fixed pool of low-priority threads for bcrypt: at most one computation
 * per thread, the rest queued in arrival order.
 */
export class BcryptWorkers {
  private readonly slots: Slot[] = [];
  private readonly queue: Job[] = [];
  private readonly bcryptPath = createRequire(import.meta.url).resolve('bcrypt');
  private closed = false;

  constructor(size: number) {
    for (let i = 0; i < size; i += 1) this.slots.push(this.spawn());
  }

  hash(password: string, cost: number): Promise<string> {
    return this.submit('hash', password, cost) as Promise<string>;
  }

  compare(password: string, hash: string): Promise<boolean> {
    return this.submit('compare', password, hash) as Promise<boolean>;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const job of this.queue.splice(0)) job.reject(new BcryptWorkersClosedError());
    await Promise.all(this.slots.map((slot) => slot.worker.terminate()));
  }

  private submit(op: Job['op'], password: string, arg: string | number): Promise<string | boolean> {
    if (this.closed) return Promise.reject(new BcryptWorkersClosedError());
    return new Promise((resolve, reject) => {
      this.queue.push({ op, password, arg, resolve, reject });
      this.dispatch();
    });
  }

  private dispatch(): void {
    for (const slot of this.slots) {
      if (slot.job || this.queue.length === 0) continue;
      const job = this.queue.shift()!;
      slot.job = job;
      slot.worker.postMessage({ op: job.op, password: job.password, arg: job.arg });
    }
  }

  private spawn(): Slot {
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { bcryptPath: this.bcryptPath },
    });
    worker.unref();
    const slot: Slot = { worker, job: null };
    worker.on('message', (message: { result?: string | boolean; error?: string }) => {
      const job = slot.job;
      slot.job = null;
      if (job) {
        if (message.error !== undefined) job.reject(new Error(message.error));
        else job.resolve(message.result!);
      }
      this.dispatch();
    });
    // A worker that dies fails its job and is replaced.
    worker.on('error', (error) => this.replace(slot, error));
    worker.on('exit', () => this.replace(slot, new Error('bcrypt worker exited')));
    return slot;
  }

  private replace(slot: Slot, error: Error): void {
    const job = slot.job;
    slot.job = null;
    job?.reject(this.closed ? new BcryptWorkersClosedError() : error);
    if (this.closed) return;
    const index = this.slots.indexOf(slot);
    if (index === -1) return;
    this.slots[index] = this.spawn();
    this.dispatch();
  }
}
