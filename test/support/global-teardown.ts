import { rm } from 'node:fs/promises';

export default async function globalTeardown(): Promise<void> {
  const state = globalThis.__LINEAGE_TEST_DB__;
  if (!state?.db || !state.dir) return;
  await state.db.stop();
  await rm(state.dir, { recursive: true, force: true });
}
