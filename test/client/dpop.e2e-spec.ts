import { calculateJwkThumbprint } from 'jose';
import {
  createLineageClient,
  exportDpopPublicJwk,
  generateDpopKeyPair,
  memoryDpopKeyStore,
  memoryTokenStorage,
} from '../../client/src/lineage-client.js';
import { claimsOf, PASSWORD, uniqueUsername } from '../support/requests.js';
import { useTestApp } from '../support/test-app.js';
import { countRequests, expireAccessToken, rejection, storedTokens } from './support.js';

/**
 * The SDK's DPoP client (in Node: a key in memory) against the real server
 * when every session must be bound and every proof must carry the server's
 * nonce: the first request learns the nonce from its `use_dpop_nonce`
 * refusal, the later ones already carry it.
 */
describe('client SDK: DPoP with server nonces (e2e)', () => {
  const t = useTestApp({ DPOP_REQUIRED: 'true', DPOP_NONCE: 'true' }, { listen: true });

  it('registers after one nonce retry, binds the session to its key, refreshes and logs out with proofs', async () => {
    const registers = countRequests(t, 'POST', '/auth/register');
    const refreshes = countRequests(t, 'POST', '/auth/refresh');
    const creates = countRequests(t, 'POST', '/todos');
    const logouts = countRequests(t, 'POST', '/auth/logout');
    const revokes = countRequests(t, 'POST', '/auth/revoke');
    const keys = memoryDpopKeyStore(await generateDpopKeyPair());
    const storage = memoryTokenStorage();
    const client = createLineageClient({ baseUrl: t.baseUrl, storage, dpop: { keys } });

    const registered = await client.register({
      username: uniqueUsername('dpop'),
      password: PASSWORD,
    });
    expect(registered.token_type).toBe('DPoP');
    expect(registers.count).toBe(2);
    // RFC 9449 §6.1: the access token names the key it is bound to.
    const pair = await keys.get();
    if (pair === null) throw new Error('no key pair stored');
    const jkt = await calculateJwkThumbprint(await exportDpopPublicJwk(pair.publicKey));
    expect(claimsOf(registered.access_token).cnf).toEqual({ jkt });

    // The nonce came with the register response: no refusal this time.
    const todo = await client.todos.create({ title: 'bound' });
    expect(creates.count).toBe(1);
    await expireAccessToken(t, storage);
    const presented = await storedTokens(storage);
    await expect(client.todos.get(todo.id)).resolves.toEqual(todo);
    expect(refreshes.count).toBe(1);
    const rotated = await storedTokens(storage);
    expect(rotated.refresh_token).not.toBe(presented.refresh_token);
    expect(rotated.token_type).toBe('DPoP');

    await client.logout();
    expect(await client.isLoggedIn()).toBe(false);
    // Logout itself took the proof, with no fallback to revocation.
    expect([logouts.count, revokes.count]).toEqual([1, 0]);
    // The session is over on the server: the same key with the last tokens gets nowhere.
    const after = createLineageClient({
      baseUrl: t.baseUrl,
      storage: memoryTokenStorage(rotated),
      dpop: { keys },
    });
    expect((await rejection(after.users.me())).code).toBe('session_revoked');
  });

  it('logs out with an expired access token through revocation, signed with its key', async () => {
    const revokes = countRequests(t, 'POST', '/auth/revoke');
    const keys = memoryDpopKeyStore();
    const storage = memoryTokenStorage();
    const client = createLineageClient({ baseUrl: t.baseUrl, storage, dpop: { keys } });
    await client.register({ username: uniqueUsername('dpop'), password: PASSWORD });
    await expireAccessToken(t, storage);
    const expired = await storedTokens(storage);

    await client.logout();
    expect(revokes.count).toBe(1);
    const after = createLineageClient({
      baseUrl: t.baseUrl,
      storage: memoryTokenStorage(expired),
      dpop: { keys },
    });
    // The refresh the expired access token leads to finds the session revoked.
    expect((await rejection(after.users.me())).code).toBe('session_revoked');
  });
});
