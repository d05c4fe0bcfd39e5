// @ts-check
// Loaded by each bcrypt pool thread (see bcrypt-workers.ts). Plain JavaScript,
// not TypeScript, because a worker thread is a fresh Node.js instance: it runs
// this file as it is, from src/ under Jest as from dist/ (copied there by
// `nest build`, nest-cli.json "assets"), with no compiler in front of it.
import { getPriority, setPriority } from 'node:os';
import { workerData } from 'node:worker_threads';
import bcrypt from 'bcrypt';

// Lower this thread's scheduling priority before any work, so bcrypt gets the
// CPU that the event loop and the database leave over: logins in flight do
// not stretch the latency of other requests. On Linux the nice value belongs
// to the thread (setpriority(2) with PRIO_PROCESS and who = 0 applies to the
// calling thread), so the event loop keeps its own. Elsewhere (macOS, the
// BSDs) the same call would lower the whole process, event loop included, so
// it is made on Linux only. Relative to the inherited value, as nice(1) is,
// and capped at 19, the lowest priority. Where the system refuses, the work
// still runs at the inherited priority.
const { niceIncrement } = /** @type {{ niceIncrement: number }} */ (workerData);
if (process.platform === 'linux') {
  try {
    setPriority(0, Math.min(getPriority(0) + niceIncrement, 19));
  } catch {
    // Keep the inherited priority.
  }
}

// Inside this thread the synchronous calls are the right ones: the thread
// exists only to do this work, and the event loop is on another thread.

/** @param {{ password: string, cost: number }} task */
export function hash({ password, cost }) {
  return bcrypt.hashSync(password, cost);
}

/** @param {{ password: string, hash: string }} task */
export function compare({ password, hash }) {
  return bcrypt.compareSync(password, hash);
}
