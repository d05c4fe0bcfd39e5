import type { StoredTokens } from './token-storage.js';

/**
 * What the tabs of one origin tell each other about the session they share
 * (with the cookie transport, the browser's cookie jar holds one refresh
 * token for all of them). BroadcastChannel reaches only same-origin contexts
 * (WHATWG HTML §9.6), so the access token never leaves the origin.
 */
export type TabMessage =
  /** A tab signed in or refreshed: the access token every tab may now use. */
  | { type: 'tokens'; tokens: StoredTokens }
  /** A tab's refresh failed without ending the session (429, 503, network): try yourselves. */
  | { type: 'refresh_failed' }
  /** A tab is refreshing (sent only where Web Locks are missing): wait for its outcome. */
  | { type: 'refreshing' }
  /** A tab logged out. */
  | { type: 'signed_out' }
  /** A tab learned from the server that the session is over. */
  | { type: 'session_ended'; code: string; message: string; status: number };

/** The outcome of `refresh` in a tab that did not run it itself. */
export const SHARED = Symbol('refreshed by another tab');

export interface TabCoordinator {
  /**
   * Runs `run` (a refresh that posts its outcome before it settles) unless
   * another tab is refreshing: then waits for that tab's outcome and resolves
   * to SHARED, after the message handler has seen it. Another tab's failure
   * that left the session alive is no outcome: `run` then runs here.
   */
  refresh<T>(run: () => Promise<T>): Promise<T | typeof SHARED>;
  post(message: TabMessage): void;
  close(): void;
}

/** How long a tab that waited for the lock waits for the holder's message (a closed tab sends none). */
const OUTCOME_WAIT_MS = 2_000;
/** Without Web Locks: how long another tab's announced refresh is waited for. */
const ANNOUNCED_REFRESH_MS = 10_000;

interface LockManagerLike {
  request<T>(
    name: string,
    options: { ifAvailable?: boolean },
    callback: (lock: unknown) => Promise<T>,
  ): Promise<T>;
}

const NOT_AVAILABLE = Symbol('lock held elsewhere');

/**
 * One refresh for all tabs of an origin. With Web Locks (`navigator.locks`),
 * a tab refreshes while holding an exclusive lock named after the API; a tab
 * that finds the lock held waits for it and then uses the holder's result,
 * which the holder posts on a BroadcastChannel before releasing the lock.
 * Without Web Locks, a tab announces its refresh on the channel and tabs that
 * heard an announcement wait for its outcome; two tabs that announce at the
 * same moment both refresh, which the server's rotation rule makes harmless
 * (the parent of the newest token gets that same newest token back).
 *
 * Undefined where there is no BroadcastChannel (Node, old browsers): the
 * client then coordinates only within its own process.
 */
export function createTabCoordinator(
  name: string,
  onMessage: (message: TabMessage) => Promise<void>,
): TabCoordinator | undefined {
  if (typeof BroadcastChannel === 'undefined') return undefined;
  const channel = new BroadcastChannel(name);
  const locks = (globalThis as { navigator?: { locks?: LockManagerLike } }).navigator?.locks;
  /** Outcome messages seen so far (`tokens`, `signed_out`, `session_ended`, `refresh_failed`). */
  let outcomes = 0;
  let lastOutcome: TabMessage | undefined;
  let announcedUntil = 0;
  const waiters = new Set<() => void>();

  channel.onmessage = (event: { data: unknown }) => {
    const message = event.data as TabMessage;
    if (message.type === 'refreshing') {
      announcedUntil = Date.now() + ANNOUNCED_REFRESH_MS;
      return;
    }
    announcedUntil = 0;
    // Counted once handled, so a tab woken by it finds the tokens already kept.
    void onMessage(message)
      .catch(() => undefined)
      .then(() => {
        outcomes += 1;
        lastOutcome = message;
        for (const wake of waiters) wake();
      });
  };

  /** Resolves once an outcome beyond `seen` has arrived, or after `ms`. */
  function outcomeAfter(seen: number, ms: number): Promise<void> {
    if (outcomes > seen) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      waiters.add(done);
    });
  }

  /** Whether another tab's outcome since `seen` settles this tab's refresh. */
  const settled = (seen: number) =>
    outcomes > seen && lastOutcome !== undefined && lastOutcome.type !== 'refresh_failed';

  async function refresh<T>(run: () => Promise<T>): Promise<T | typeof SHARED> {
    const seen = outcomes;
    if (locks === undefined) {
      if (announcedUntil > Date.now()) {
        await outcomeAfter(seen, announcedUntil - Date.now());
        if (settled(seen)) return SHARED;
      }
      channel.postMessage({ type: 'refreshing' } satisfies TabMessage);
      return run();
    }
    const lockName = `${name}:refresh`;
    const mine = await locks.request(lockName, { ifAvailable: true }, async (lock) =>
      lock === null ? NOT_AVAILABLE : { value: await run() },
    );
    if (mine !== NOT_AVAILABLE) return mine.value;
    return locks.request(lockName, {}, async () => {
      // The holder posted before releasing, but the message and the lock
      // grant travel separately: wait for the message if it is not here yet.
      await outcomeAfter(seen, OUTCOME_WAIT_MS);
      if (settled(seen)) return SHARED;
      return run();
    });
  }

  return {
    refresh,
    post: (message) => channel.postMessage(message),
    close: () => {
      for (const wake of waiters) wake();
      channel.close();
    },
  };
}
