// `npm run bench`: Lineage (production build) and the hand-written baseline
// (bench/baseline.mjs) against the same PostgreSQL, measured in the same run.
// Embedded PostgreSQL by default; DATABASE_URL is honoured. Loopback only,
// bounded durations. Prints a table and writes bench/results.json.
import { fork, spawn } from 'node:child_process';
import {
  createHash,
  createHmac,
  createSecretKey,
  generateKeyPairSync,
  randomBytes,
  randomUUID,
  sign,
} from 'node:crypto';
import { chmod, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import bcrypt from 'bcrypt';
import pg from 'pg';

const root = fileURLToPath(new URL('..', import.meta.url));
const DURATION = Number(process.env.BENCH_DURATION ?? 10);
// BENCH_QUICK=1: only the GET /todos comparison, for trying a change; no results file.
const QUICK = process.env.BENCH_QUICK === '1';
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);
const USERS = 64;
const TODOS_PER_USER = 20;
const BCRYPT_COST = 12;
const PASSWORD = 'bench password 1';
// The app's V8 flags as `npm run start:prod` passes them (BENCH_APP_NODE_FLAGS overrides).
const startProd = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8'))
  .scripts['start:prod'];
const APP_NODE_FLAGS = (
  process.env.BENCH_APP_NODE_FLAGS ??
  startProd
    .split(' ')
    .filter((word) => word.startsWith('--'))
    .join(' ')
)
  .split(' ')
  .filter(Boolean);
const LOGIN_CONNECTIONS = Number(process.env.BENCH_LOGIN_CONNECTIONS ?? 4);

const log = (...args) => console.error('[bench]', ...args);

async function freePort() {
  const { createServer } = await import('node:net');
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

async function waitFor(url, child, name) {
  for (let i = 0; i < 300; i += 1) {
    if (child.exitCode !== null) throw new Error(`${name} exited with ${child.exitCode}`);
    try {
      const res = await fetch(url);
      if (res.ok) return;
    } catch {
      // not up yet
    }
    await sleep(100);
  }
  throw new Error(`${name} did not come up`);
}

/** Peak resident set of a process, from the kernel's high-water mark. */
async function peakRssMb(pid) {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0);
  return Math.round(kb / 1024);
}

/**
 * CPU seconds a process and its reaped children have used (user + system,
 * from /proc; Linux only): the cost of a request on each side, which the
 * req/s figure on 2 shared cores shows only indirectly.
 */
async function cpuSeconds(pid) {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime + stime, plus cutime + cstime: a PostgreSQL backend that exits
    // (a pool closing an idle connection) is accounted to the postmaster.
    return fields.slice(11, 15).reduce((sum, ticks) => sum + Number(ticks), 0) / 100;
  } catch {
    return Number.NaN;
  }
}

/** CPU seconds of every PostgreSQL server process (embedded or local). */
async function postgresCpuSeconds() {
  let total = 0;
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const comm = await readFile(`/proc/${entry}/comm`, 'utf8').catch(() => '');
    if (comm.startsWith('postgres')) total += (await cpuSeconds(Number(entry))) || 0;
  }
  return total;
}

/** Runs one measurement and adds the CPU milliseconds per request it cost the server and PostgreSQL. */
async function withCpu(pid, measure) {
  const [server0, pg0] = [await cpuSeconds(pid), await postgresCpuSeconds()];
  const result = summary(await measure());
  const [server1, pg1] = [await cpuSeconds(pid), await postgresCpuSeconds()];
  const perRequest = (seconds) => +((seconds * 1000) / Math.max(result.total, 1)).toFixed(3);
  return {
    ...result,
    server_cpu_ms_per_request: perRequest(server1 - server0),
    postgres_cpu_ms_per_request: perRequest(pg1 - pg0),
  };
}

/**
 * WAL bytes and table rows written per request, from pg_current_wal_lsn() and
 * pg_stat_user_tables before and after: figures that do not move with the
 * machine's noise. Backends report table statistics up to a second after a
 * transaction ends, so the reading after the run waits for them.
 */
async function withWrites(db, measure) {
  const read = async () => {
    await db.query('SELECT pg_stat_clear_snapshot()');
    const { rows } = await db.query(
      `SELECT pg_current_wal_lsn()::text AS lsn,
              (SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0)
                 FROM pg_stat_user_tables)::bigint AS rows`,
    );
    return rows[0];
  };
  // A checkpoint first: no checkpoint falls inside the window, and each page
  // the run touches pays its one full-page image there, as in steady state.
  await db.query('CHECKPOINT');
  const before = await read();
  const result = await measure();
  // Backends report their row counts when they exit or after 10 s idle
  // (PGSTAT_IDLE_INTERVAL); both pools close idle connections after 10 s.
  await sleep(11_500);
  const after = await read();
  const { rows } = await db.query('SELECT pg_wal_lsn_diff($1, $2)::bigint AS bytes', [
    after.lsn,
    before.lsn,
  ]);
  const total = Math.max(result.total, 1);
  return {
    ...result,
    wal_bytes_per_request: Math.round(Number(rows[0].bytes) / total),
    rows_written_per_request: +((Number(after.rows) - Number(before.rows)) / total).toFixed(2),
  };
}

/** The round with the median throughput (errors summed over all rounds). */
function median(runs) {
  const sorted = [...runs].sort((a, b) => a.requests_per_s - b.requests_per_s);
  const middle = sorted[Math.floor(sorted.length / 2)];
  return { ...middle, errors: runs.reduce((sum, run) => sum + run.errors, 0) };
}

function summary(result) {
  return {
    // One decimal where rates are small (login), so the ratio is not rounding.
    requests_per_s:
      result.requests.average < 100
        ? +result.requests.average.toFixed(1)
        : Math.round(result.requests.average),
    p50_ms: result.latency.p50,
    p99_ms: result.latency.p99,
    errors: result.errors + result.timeouts + result.non2xx,
    total: result.requests.total,
  };
}

function run(options) {
  return new Promise((resolve, reject) => {
    const instance = autocannon(
      { duration: DURATION, connections: CONNECTIONS, ...options },
      (error, result) => (error ? reject(error) : resolve(result)),
    );
    autocannon.track(instance, {
      renderProgressBar: false,
      renderResultsTable: false,
      renderLatencyTable: false,
    });
  });
}

/**
 * Lineage's ES256 access token re-signed as the HS256 token the baseline
 * checks: same claims (so the same user's rows and session), its own key.
 */
function asBaselineToken(token, secret) {
  const payload = token.split('.')[1];
  const header = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'at+jwt' })).toString('base64url');
  const key = createSecretKey(Buffer.from(secret, 'utf8'));
  const signature = createHmac('sha256', key).update(`${header}.${payload}`).digest('base64url');
  return `${header}.${payload}.${signature}`;
}

/**
 * A client's DPoP key (RFC 9449 §4.2): an EC P-256 key pair, its proof
 * header (with the public JWK) encoded once, and its RFC 7638 thumbprint.
 */
function newProofKey() {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = publicKey.export({ format: 'jwk' });
  const header = Buffer.from(JSON.stringify({ typ: 'dpop+jwt', alg: 'ES256', jwk })).toString(
    'base64url',
  );
  const jkt = createHash('sha256')
    .update(JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y }))
    .digest('base64url');
  return { privateKey, header, jkt };
}

/** A new proof for one request: a fresh jti, iat now, signed synchronously. */
function dpopProof(key, htm, htu, ath) {
  const claims = { jti: randomUUID(), htm, htu, iat: Math.floor(Date.now() / 1000) };
  if (ath !== undefined) claims.ath = ath;
  const body = `${key.header}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
  const signature = sign('sha256', Buffer.from(body), {
    key: key.privateKey,
    dsaEncoding: 'ieee-p1363',
  });
  return `${body}.${signature.toString('base64url')}`;
}

/** RFC 9449 §4.2: the `ath` of a proof sent with an access token. */
const accessTokenHash = (token) => createHash('sha256').update(token, 'ascii').digest('base64url');

/** GET with the bearer token of one of the seeded users, round robin. */
function getScenario(base, path, tokens) {
  let next = 0;
  return run({
    url: base,
    requests: [
      {
        method: 'GET',
        path,
        setupRequest: (request) => ({
          ...request,
          headers: {
            ...request.headers,
            authorization: `Bearer ${tokens[next++ % tokens.length]}`,
          },
        }),
      },
    ],
  });
}

/**
 * GET with the DPoP-bound token of one of the seeded users, round robin:
 * `Authorization: DPoP` and a new proof of the user's key (RFC 9449 §7.1).
 * `users` holds each one's token, key and `ath`; `htu` is the URL the server
 * compares with (its PUBLIC_URL and the path).
 */
function boundGetScenario(base, path, users) {
  let next = 0;
  const htu = `${base}${path}`;
  return run({
    url: base,
    requests: [
      {
        method: 'GET',
        path,
        setupRequest: (request) => {
          const user = users[next++ % users.length];
          return {
            ...request,
            headers: {
              ...request.headers,
              authorization: `DPoP ${user.token}`,
              dpop: dpopProof(user.key, 'GET', htu, user.ath),
            },
          };
        },
      },
    ],
  });
}

/**
 * Rotating chains: every request takes a token no one has presented yet and
 * every 200 gives one back, so a token is never presented twice (autocannon
 * resets its per-request context, so the tokens live in this queue).
 * The queue holds more chains than connections, so one is always ready; it
 * carries the chains' current tokens from one round to the next.
 */
function refreshScenario(base, ready, connections) {
  return run({
    url: base,
    connections,
    requests: [
      {
        method: 'POST',
        path: '/auth/refresh',
        headers: { 'content-type': 'application/json' },
        setupRequest: (request) => ({
          ...request,
          body: JSON.stringify({ refresh_token: ready.shift() }),
        }),
        onResponse: (status, body) => {
          if (status === 200) ready.push(JSON.parse(body).refresh_token);
        },
      },
    ],
  });
}

/**
 * refreshScenario for DPoP-bound chains: each chain (its refresh token and
 * key) goes with its request in autocannon's context, which it keeps until
 * that request's response, and comes back with the new token.
 */
function boundRefreshScenario(base, ready, connections) {
  const htu = `${base}/auth/refresh`;
  return run({
    url: base,
    connections,
    requests: [
      {
        method: 'POST',
        path: '/auth/refresh',
        headers: { 'content-type': 'application/json' },
        setupRequest: (request, context) => {
          const chain = ready.shift();
          context.chain = chain;
          return {
            ...request,
            headers: { ...request.headers, dpop: dpopProof(chain.key, 'POST', htu) },
            body: JSON.stringify({ refresh_token: chain.token }),
          };
        },
        onResponse: (status, body, context) => {
          if (status !== 200) return;
          context.chain.token = JSON.parse(body).refresh_token;
          ready.push(context.chain);
        },
      },
    ],
  });
}

function loginScenario(base, usernames, connections = LOGIN_CONNECTIONS) {
  let next = 0;
  return run({
    url: base,
    connections,
    requests: [
      {
        method: 'POST',
        path: '/auth/login',
        headers: { 'content-type': 'application/json' },
        setupRequest: (request) => ({
          ...request,
          body: JSON.stringify({
            username: usernames[next++ % usernames.length],
            password: PASSWORD,
          }),
        }),
      },
    ],
  });
}

/**
 * Sessions written straight into the tables, each with its first refresh
 * token signed exactly as Lineage signs one (HS256, typ rt+jwt, whole-second
 * iat/exp; only its SHA-256 is stored): the same state a login leaves,
 * without paying bcrypt for hundreds of logins. With `keys`, chain i is
 * bound to keys[i]: its token carries the key's thumbprint as `cnf.jkt`.
 */
async function seedBaselineChains(db, refreshSecret, usernames, count, keys) {
  const key = createSecretKey(Buffer.from(refreshSecret, 'utf8'));
  const b64 = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const { rows } = await db.query('SELECT id FROM users WHERE username = ANY($1::text[])', [
    usernames,
  ]);
  const iat = Math.floor(Date.now() / 1000);
  const exp = iat + 7 * 86400;
  const tokens = [];
  const families = [];
  for (let i = 0; i < count; i += 1) {
    const userId = rows[i % rows.length].id;
    const familyId = randomUUID();
    const tokenId = randomUUID();
    const claims = {
      sub: userId,
      sid: familyId,
      jti: tokenId,
      iat,
      exp,
      iss: 'lineage',
      aud: 'lineage-api',
    };
    if (keys) claims.cnf = { jkt: keys[i].jkt };
    const body = `${b64({ alg: 'HS256', typ: 'rt+jwt' })}.${b64(claims)}`;
    const token = `${body}.${createHmac('sha256', key).update(body).digest('base64url')}`;
    tokens.push(token);
    families.push({
      userId,
      familyId,
      tokenId,
      hash: createHash('sha256').update(token).digest('hex'),
    });
  }
  await db.query(
    `WITH f AS (
       INSERT INTO baseline_families (id, user_id, created_at, last_used_at, expires_at, absolute_expires_at)
       SELECT family_id, user_id, to_timestamp($5), to_timestamp($5), to_timestamp($6), to_timestamp($5) + interval '30 days'
         FROM unnest($1::uuid[], $2::uuid[]) AS x(family_id, user_id)
     )
     INSERT INTO baseline_refresh_tokens (id, family_id, token_hash, issued_at, expires_at)
     SELECT token_id, family_id, decode(hash, 'hex'), to_timestamp($5), to_timestamp($6)
       FROM unnest($1::uuid[], $3::uuid[], $4::text[]) AS y(family_id, token_id, hash)`,
    [
      families.map((f) => f.familyId),
      families.map((f) => f.userId),
      families.map((f) => f.tokenId),
      families.map((f) => f.hash),
      iat,
      exp,
    ],
  );
  return tokens;
}

/** A login; with a DPoP key, its session is bound to it (RFC 9449 §5). */
async function login(base, username, key) {
  const headers = { 'content-type': 'application/json' };
  if (key) headers.dpop = dpopProof(key, 'POST', `${base}/auth/login`);
  const res = await fetch(`${base}/auth/login`, {
    method: 'POST',
    headers,
    body: JSON.stringify({ username, password: PASSWORD }),
  });
  if (res.status !== 200) throw new Error(`seed login failed: ${res.status} ${await res.text()}`);
  const body = await res.json();
  if (body.token_type !== (key ? 'DPoP' : 'Bearer')) {
    throw new Error(`seed login gave a ${body.token_type} token`);
  }
  return body;
}

async function main() {
  let embedded;
  let dataDir;
  let databaseUrl = process.env.DATABASE_URL;
  if (!databaseUrl) {
    const { startEmbeddedPostgres } = await import('../dist/src/database/embedded-postgres.js');
    dataDir = await mkdtemp(join(tmpdir(), 'lineage-bench-'));
    await chmod(dataDir, 0o755);
    log('starting embedded PostgreSQL');
    embedded = await startEmbeddedPostgres({
      dataDir: join(dataDir, 'postgres'),
      database: 'lineage_bench',
    });
    databaseUrl = embedded.url;
  }
  const secrets = { JWT_REFRESH_SECRET: randomBytes(32).toString('hex') };
  // Lineage signs access tokens with ES256 keys it keeps (encrypted) in the
  // database; the baseline checks HS256 access tokens on its GET routes and
  // signs ES256 ones with a prebuilt key on refresh.
  const appSecrets = { ...secrets, SIGNING_KEYS_SECRET: randomBytes(32).toString('hex') };
  const baseSecrets = { ...secrets, JWT_ACCESS_SECRET: randomBytes(32).toString('hex') };
  const metricsToken = randomBytes(24).toString('hex');
  const appPort = await freePort();
  const basePort = await freePort();
  const children = [];
  try {
    // The app runs as `npm run start:prod` runs it (package.json), V8 flags included.
    const app = spawn(process.execPath, [...APP_NODE_FLAGS, 'dist/src/main.js'], {
      cwd: root,
      stdio: ['ignore', 'ignore', 'inherit'],
      env: {
        ...process.env,
        ...appSecrets,
        NODE_ENV: 'production',
        METRICS_TOKEN: metricsToken,
        DATABASE_URL: databaseUrl,
        PORT: String(appPort),
        // The URL autocannon hits: DPoP proofs' htu is compared with it.
        PUBLIC_URL: `http://127.0.0.1:${appPort}`,
        // No Redis: the DPoP replay cache (and the rate limits' counters)
        // stay in this process's memory, as the baseline's does.
        REDIS_URL: '',
        // The issuer the seeded refresh chains and the baseline use.
        JWT_ISSUER: 'lineage',
        HOST: '127.0.0.1',
        BCRYPT_COST: String(BCRYPT_COST),
        // One loader address makes every request look like one client: lift the
        // per-IP and per-account limits, which are not what is measured here.
        RATE_LIMIT_PER_IP: '1000000',
        RATE_LIMIT_REFRESH_PER_IP: '1000000',
        RATE_LIMIT_FREE_FAILURES: '99',
      },
    });
    children.push(app);
    const appBase = `http://127.0.0.1:${appPort}`;
    await waitFor(`${appBase}/health`, app, 'lineage');

    const baseline = fork(join(root, 'bench/baseline.mjs'), [], {
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
      env: {
        ...process.env,
        ...baseSecrets,
        DATABASE_URL: databaseUrl,
        PORT: String(basePort),
        PUBLIC_URL: `http://127.0.0.1:${basePort}`,
      },
    });
    children.push(baseline);
    const baseBase = `http://127.0.0.1:${basePort}`;
    await new Promise((resolve) => baseline.once('message', resolve));

    // Seed: users with one shared bcrypt hash (cost as configured), 20 todos each.
    log(`seeding ${USERS} users and ${USERS * TODOS_PER_USER} todos`);
    const db = new pg.Client({ connectionString: databaseUrl });
    await db.connect();
    const hash = await bcrypt.hash(PASSWORD, BCRYPT_COST);
    const run = randomUUID().slice(0, 8);
    const usernames = Array.from({ length: USERS }, (_, i) => `bench_${run}_${i}`);
    await db.query(
      `INSERT INTO users (id, username, username_key, password_hash)
       SELECT gen_random_uuid(), u, lower(u), $2 FROM unnest($1::text[]) AS u`,
      [usernames, hash],
    );
    await db.query(
      `INSERT INTO todos (id, user_id, title, description, completed, created_at, updated_at)
       SELECT gen_random_uuid(), u.id, 'todo ' || n, 'seeded by the benchmark', n % 3 = 0,
              now() - n * interval '1 minute', now() - n * interval '1 minute'
         FROM users u, generate_series(1, $2) AS n
        WHERE u.username = ANY($1::text[])`,
      [usernames, TODOS_PER_USER],
    );

    // bcrypt bound: cores / one hash's time at the configured cost, measured
    // (median of 5) right before each login round, since this shared
    // machine's speed drifts over a run.
    const cores = availableParallelism();
    const measureBcryptBound = async () => {
      const hashTimes = [];
      for (let i = 0; i < 5; i += 1) {
        const start = process.hrtime.bigint();
        await bcrypt.hash(PASSWORD, BCRYPT_COST);
        hashTimes.push(Number(process.hrtime.bigint() - start) / 1e6);
      }
      hashTimes.sort((a, b) => a - b);
      return { hashMs: hashTimes[2], bound: (cores * 1000) / hashTimes[2] };
    };

    log('logging in seed sessions');
    const sessions = [];
    for (const username of usernames) sessions.push(await login(appBase, username));
    const accessTokens = sessions.map((s) => s.access_token);
    // The same sessions' claims, as the HS256 tokens the baseline verifies.
    const baseAccessTokens = accessTokens.map((token) =>
      asBaselineToken(token, baseSecrets.JWT_ACCESS_SECRET),
    );
    // A second session per user, bound to a key of that user's own; the
    // baseline's token carries the same claims (`cnf.jkt` included), so the
    // same key proves both.
    const boundUsers = [];
    const baseBoundUsers = [];
    for (const username of QUICK ? [] : usernames) {
      const key = newProofKey();
      const token = (await login(appBase, username, key)).access_token;
      const baseToken = asBaselineToken(token, baseSecrets.JWT_ACCESS_SECRET);
      boundUsers.push({ token, key, ath: accessTokenHash(token) });
      baseBoundUsers.push({ token: baseToken, key, ath: accessTokenHash(baseToken) });
    }
    // Separate chains for each server, so neither ever presents a used token,
    // and enough of them that the rounds never run out (a token taken for a
    // request that a round's end cut off is lost with its chain).
    const chainCount = CONNECTIONS * (ROUNDS + 2);
    // Lineage's chains are real logins (its own token format, written by
    // itself); the ceiling's are written into its tables.
    const appChains = [];
    for (let i = 0; i < (QUICK ? 0 : chainCount); i += 1) {
      appChains.push((await login(appBase, usernames[i % usernames.length])).refresh_token);
    }
    const chainUsers = usernames.slice(0, Math.min(chainCount, usernames.length));
    const baseChains = await seedBaselineChains(
      db,
      secrets.JWT_REFRESH_SECRET,
      usernames,
      chainCount,
    );
    // As many DPoP-bound chains on each side, a key each.
    const appBoundChains = [];
    for (let i = 0; i < (QUICK ? 0 : chainCount); i += 1) {
      const key = newProofKey();
      const token = (await login(appBase, usernames[i % usernames.length], key)).refresh_token;
      appBoundChains.push({ token, key });
    }
    const baseBoundKeys = Array.from({ length: chainCount }, newProofKey);
    const baseBoundChains = (
      await seedBaselineChains(db, secrets.JWT_REFRESH_SECRET, usernames, chainCount, baseBoundKeys)
    ).map((token, i) => ({ token, key: baseBoundKeys[i] }));

    const results = {
      machine: { cores, cpu: cpus()[0]?.model, node: process.version },
      duration_s: DURATION,
      connections: CONNECTIONS,
      scenarios: {},
    };
    // Rounds alternate baseline and Lineage, so a noisy moment on this shared
    // machine hits both; each side reports its median round.
    const compare = async (name, lineageRun, baselineRun, { writes = false } = {}) => {
      const rounds = { lineage: [], baseline: [] };
      const measure = (pid, scenario) =>
        writes ? withWrites(db, () => withCpu(pid, scenario)) : withCpu(pid, scenario);
      for (let round = 1; round <= ROUNDS; round += 1) {
        log(`${name}: baseline, round ${round}/${ROUNDS}`);
        rounds.baseline.push(await measure(baseline.pid, baselineRun));
        log(`${name}: lineage, round ${round}/${ROUNDS}`);
        rounds.lineage.push(await measure(app.pid, lineageRun));
      }
      const lin = median(rounds.lineage);
      const base = median(rounds.baseline);
      // A baseline that answers errors (e.g. 401s) does less work: no valid ratio.
      if (base.errors > 0) {
        throw new Error(`${name}: the baseline answered ${base.errors} errors; ratio meaningless`);
      }
      results.scenarios[name] = {
        lineage: lin,
        baseline: base,
        ratio: +(lin.requests_per_s / base.requests_per_s).toFixed(3),
        rounds,
      };
      log(`${name}: app peak RSS so far ${await peakRssMb(app.pid)} MB`);
    };

    await compare(
      'GET /todos',
      () => getScenario(appBase, '/todos', accessTokens),
      () => getScenario(baseBase, '/todos', baseAccessTokens),
    );
    if (!QUICK) {
      await compare(
        'GET /todos (DPoP-bound)',
        () => boundGetScenario(appBase, '/todos', boundUsers),
        () => boundGetScenario(baseBase, '/todos', baseBoundUsers),
      );
      await compare(
        'GET /users/me',
        () => getScenario(appBase, '/users/me', accessTokens),
        () => getScenario(baseBase, '/users/me', baseAccessTokens),
      );
      await compare(
        'POST /auth/refresh',
        () => refreshScenario(appBase, appChains, CONNECTIONS),
        () => refreshScenario(baseBase, baseChains, CONNECTIONS),
        { writes: true },
      );
      await compare(
        'POST /auth/refresh (DPoP-bound)',
        () => boundRefreshScenario(appBase, appBoundChains, CONNECTIONS),
        () => boundRefreshScenario(baseBase, baseBoundChains, CONNECTIONS),
        { writes: true },
      );

      log(`before login: app peak RSS so far ${await peakRssMb(app.pid)} MB`);
      const loginRounds = [];
      for (let round = 1; round <= ROUNDS; round += 1) {
        const { hashMs, bound } = await measureBcryptBound();
        log(`POST /auth/login, round ${round}/${ROUNDS} (bcrypt bound ${bound.toFixed(1)}/s)`);
        const result = summary(await loginScenario(appBase, usernames));
        loginRounds.push({
          ...result,
          bcrypt_bound_per_s: +bound.toFixed(1),
          bcrypt_hash_ms: +hashMs.toFixed(1),
          ratio: +(result.requests_per_s / bound).toFixed(3),
        });
      }
      const login = [...loginRounds].sort((a, b) => a.ratio - b.ratio)[Math.floor(ROUNDS / 2)];
      const { bcrypt_bound_per_s, bcrypt_hash_ms, ratio, ...loginResult } = login;
      results.scenarios['POST /auth/login'] = {
        lineage: { ...loginResult, errors: loginRounds.reduce((sum, r) => sum + r.errors, 0) },
        bcrypt_bound_per_s,
        bcrypt_hash_ms,
        ratio,
        rounds: loginRounds,
      };

      log(`after login: app peak RSS so far ${await peakRssMb(app.pid)} MB`);
      // Alone and under load back to back, so both p99s see the same machine.
      log('GET /todos alone, then under a concurrent login load');
      const alone = summary(await getScenario(appBase, '/todos', accessTokens));
      const [underLoad] = await Promise.all([
        getScenario(appBase, '/todos', accessTokens),
        loginScenario(appBase, usernames),
      ]);
      const loaded = summary(underLoad);
      results.scenarios['GET /todos under login load'] = {
        lineage: loaded,
        alone,
        p99_ratio_to_unloaded: +(loaded.p99_ms / alone.p99_ms).toFixed(2),
      };
    }

    // Invariants after all that rotating. Lineage: every 200 from a refresh
    // advanced one session by exactly one generation (the sum of generations
    // equals the count of rotations), nothing was re-issued, superseded or
    // treated as reuse. The ceiling: no family with two unused tokens, no
    // token with two children.
    const metricsText = await (
      await fetch(`${appBase}/metrics`, { headers: { authorization: `Bearer ${metricsToken}` } })
    ).text();
    const refreshCount = (outcome) =>
      Number(
        new RegExp(`^lineage_refresh_total\\{outcome="${outcome}"\\} (\\d+)`, 'm').exec(
          metricsText,
        )?.[1] ?? NaN,
      );
    const generations = await db.query(
      `SELECT coalesce(sum(s.generation), 0)::int AS n,
              count(*) FILTER (WHERE s.revoked_reason = 'reuse_detected')::int AS reused
         FROM sessions s JOIN users u ON u.id = s.user_id WHERE u.username = ANY($1::text[])`,
      [chainUsers],
    );
    const forks = await db.query(
      `SELECT count(*)::int AS n FROM (
         SELECT family_id FROM baseline_refresh_tokens WHERE used_at IS NULL
          GROUP BY family_id HAVING count(*) > 1) f`,
    );
    const twice = await db.query(
      `SELECT count(*)::int AS n FROM (
         SELECT parent_id FROM baseline_refresh_tokens WHERE parent_id IS NOT NULL
          GROUP BY parent_id HAVING count(*) > 1) p`,
    );
    results.invariants = {
      lineage_rotations: refreshCount('rotated'),
      lineage_generations_advanced: generations.rows[0].n,
      lineage_reissued: refreshCount('reissued'),
      lineage_superseded: refreshCount('superseded'),
      lineage_reuse_detected: refreshCount('reuse_detected'),
      lineage_reuse_revocations: generations.rows[0].reused,
      baseline_forked_families: forks.rows[0].n,
      baseline_tokens_used_twice: twice.rows[0].n,
    };
    const inv = results.invariants;
    if (
      inv.lineage_rotations !== inv.lineage_generations_advanced ||
      inv.lineage_reissued + inv.lineage_superseded + inv.lineage_reuse_detected !== 0 ||
      inv.lineage_reuse_revocations +
        inv.baseline_forked_families +
        inv.baseline_tokens_used_twice !==
        0
    ) {
      throw new Error(`invariants broken: ${JSON.stringify(inv)}`);
    }
    // Every proof the loader signed should have been accepted: a refusal
    // here is a broken proof, and the scenario's errors say where.
    const dpopRefusals = [...metricsText.matchAll(/^lineage_dpop_refusals_total\{[^}]*\} (\d+)/gm)];
    results.dpop = {
      lineage_replay_cache: 'memory (no REDIS_URL)',
      lineage_refusals: dpopRefusals.reduce((sum, match) => sum + Number(match[1]), 0),
    };
    results.lineage_peak_rss_mb = await peakRssMb(app.pid);
    await db.end();

    printTable(results);
    if (!QUICK) {
      await writeFile(join(root, 'bench/results.json'), `${JSON.stringify(results, null, 2)}\n`);
      log('wrote bench/results.json');
    }
  } finally {
    for (const child of children) child.kill('SIGTERM');
    await Promise.all(
      children.map((c) => (c.exitCode === null ? new Promise((r) => c.once('exit', r)) : null)),
    );
    if (embedded) await embedded.stop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  }
}

function printTable(results) {
  const rows = [['scenario', 'lineage req/s', 'p50 ms', 'p99 ms', 'errors', 'reference', 'ratio']];
  for (const [name, s] of Object.entries(results.scenarios)) {
    const reference = s.baseline
      ? `baseline ${s.baseline.requests_per_s} req/s`
      : s.bcrypt_bound_per_s
        ? `bcrypt bound ${s.bcrypt_bound_per_s}/s`
        : `p99 ×${s.p99_ratio_to_unloaded} of unloaded`;
    rows.push([
      name,
      s.lineage.requests_per_s,
      s.lineage.p50_ms,
      s.lineage.p99_ms,
      s.lineage.errors,
      reference,
      s.ratio ?? '',
    ]);
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => String(r[i]).length)));
  for (const row of rows)
    console.log(row.map((cell, i) => String(cell).padEnd(widths[i])).join('  '));
  for (const [name, s] of Object.entries(results.scenarios)) {
    if (!s.baseline) continue;
    const cpu = (side) =>
      `${side.server_cpu_ms_per_request} ms server + ${side.postgres_cpu_ms_per_request} ms PostgreSQL`;
    console.log(`CPU per request, ${name}: lineage ${cpu(s.lineage)}; baseline ${cpu(s.baseline)}`);
    if (s.lineage.wal_bytes_per_request === undefined) continue;
    const writes = (side) =>
      `${side.wal_bytes_per_request} WAL bytes, ${side.rows_written_per_request} rows`;
    console.log(
      `Writes per request, ${name}: lineage ${writes(s.lineage)}; baseline ${writes(s.baseline)}`,
    );
  }
  if (results.dpop) {
    console.log(
      `DPoP: proofs ES256, signed by the loader for every request; Lineage's jti replay cache in ` +
        `${results.dpop.lineage_replay_cache}, the baseline's in its own; ` +
        `${results.dpop.lineage_refusals} proofs refused by Lineage`,
    );
  }
  console.log(
    `peak RSS ${results.lineage_peak_rss_mb} MB; invariants ${JSON.stringify(results.invariants)}`,
  );
}

await main();
