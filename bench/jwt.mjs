// Per-call cost of JWT sign and verify, in one process: HS256 (refresh tokens)
// through jsonwebtoken with a string secret (what a string in @nestjs/jwt or
// passport-jwt options gives), with a prebuilt crypto.KeyObject (what Lineage
// uses), and a bare HMAC as the floor; ES256 (access tokens) with KeyObjects.
// `npm run bench:jwt`; writes bench/jwt-results.json.
import {
  createHmac,
  createSecretKey,
  generateKeyPairSync,
  randomBytes,
  randomUUID,
} from 'node:crypto';
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
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const esSignOptions = { algorithm: 'ES256', header: { alg: 'ES256', typ: 'at+jwt', kid: 'k' } };
const esVerifyOptions = { ...verifyOptions, algorithms: ['ES256'] };
const esToken = jsonwebtoken.sign(claims, ec.privateKey, esSignOptions);

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
  'sign: ES256, jsonwebtoken, KeyObject (Lineage access tokens)': measure(() =>
    jsonwebtoken.sign(claims, ec.privateKey, esSignOptions),
  ),
  'verify: ES256, jsonwebtoken, KeyObject (Lineage access tokens)': measure(() =>
    jsonwebtoken.verify(esToken, ec.publicKey, esVerifyOptions),
  ),
};
const width = Math.max(...Object.keys(results).map((name) => name.length));
for (const [name, micros] of Object.entries(results))
  console.log(`${name.padEnd(width)}  ${micros} µs/call`);
await writeFile(
  fileURLToPath(new URL('jwt-results.json', import.meta.url)),
  `${JSON.stringify({ node: process.version, microseconds_per_call: results }, null, 2)}\n`,
);
