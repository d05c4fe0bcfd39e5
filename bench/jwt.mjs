// Per-call cost of HS256 sign and verify, in one process: jsonwebtoken with a
// string secret (what a string in @nestjs/jwt or passport-jwt options gives),
// with a prebuilt crypto.KeyObject (what Lineage's TokenService and strategies
// use), and a bare HMAC as the floor. `npm run bench:jwt`; writes
// bench/jwt-results.json.
import { createHmac, createSecretKey, randomBytes, randomUUID } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import jsonwebtoken from 'jsonwebtoken';

const ITERATIONS = Number(process.env.BENCH_JWT_ITERATIONS ?? 20000);
const secret = randomBytes(32).toString('hex');
const key = createSecretKey(Buffer.from(secret, 'utf8'));
const now = Math.floor(Date.now() / 1000);
const claims = {
  sub: randomUUID(),
  sid: randomUUID(),
  jti: randomUUID(),
  iat: now,
  exp: now + 900,
  iss: 'lineage',
  aud: 'lineage-api',
};
const signOptions = { algorithm: 'HS256', header: { alg: 'HS256', typ: 'at+jwt' } };
const verifyOptions = {
  algorithms: ['HS256'],
  issuer: 'lineage',
  audience: 'lineage-api',
  complete: true,
};
const token = jsonwebtoken.sign(claims, key, signOptions);

function bareVerify(jwt) {
  const [header, payload, signature] = jwt.split('.');
  const expected = createHmac('sha256', key).update(`${header}.${payload}`).digest('base64url');
  if (expected !== signature) throw new Error('bad signature');
  return JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
}

/** Median of five timed batches, in microseconds per call. */
function measure(fn) {
  for (let i = 0; i < 1000; i += 1) fn();
  const batches = [];
  for (let b = 0; b < 5; b += 1) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < ITERATIONS / 5; i += 1) fn();
    batches.push(Number(process.hrtime.bigint() - start) / 1000 / (ITERATIONS / 5));
  }
  return +batches.sort((a, b) => a - b)[2].toFixed(2);
}

const results = {
  'sign: jsonwebtoken, string secret': measure(() =>
    jsonwebtoken.sign(claims, secret, signOptions),
  ),
  'sign: jsonwebtoken, KeyObject (Lineage)': measure(() =>
    jsonwebtoken.sign(claims, key, signOptions),
  ),
  'verify: jsonwebtoken, string secret': measure(() =>
    jsonwebtoken.verify(token, secret, verifyOptions),
  ),
  'verify: jsonwebtoken, KeyObject (Lineage)': measure(() =>
    jsonwebtoken.verify(token, key, verifyOptions),
  ),
  'verify: bare HMAC-SHA256 (floor)': measure(() => bareVerify(token)),
};
const width = Math.max(...Object.keys(results).map((name) => name.length));
for (const [name, micros] of Object.entries(results))
  console.log(`${name.padEnd(width)}  ${micros} µs/call`);
await writeFile(
  fileURLToPath(new URL('jwt-results.json', import.meta.url)),
  `${JSON.stringify({ node: process.version, microseconds_per_call: results }, null, 2)}\n`,
);
