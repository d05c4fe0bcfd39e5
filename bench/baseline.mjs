// The hand-written baseline `npm run bench` compares Lineage against: bare
// Fastify + pg, the least correct work for each answer (see each route), with
// HS256 access tokens checked by a bare HMAC, DPoP proofs checked with
// node:crypto alone. No framework, no validation layer, no ORM.
// Started by bench/run.mjs with DATABASE_URL, JWT_ACCESS_SECRET,
// JWT_REFRESH_SECRET, PUBLIC_URL and PORT in its environment.
import {
  createHash,
  createHmac,
  createPublicKey,
  createSecretKey,
  generateKeyPairSync,
  randomUUID,
  sign as signWith,
  timingSafeEqual,
  verify as verifyWith,
} from 'node:crypto';
import Fastify from 'fastify';
import pg from 'pg';

const env = process.env;
const accessKey = createSecretKey(Buffer.from(env.JWT_ACCESS_SECRET, 'utf8'));
const refreshKey = createSecretKey(Buffer.from(env.JWT_REFRESH_SECRET, 'utf8'));
const ACCESS_TTL = 900;
const REFRESH_TTL = 7 * 86400;
const pool = new pg.Pool({ connectionString: env.DATABASE_URL, max: 10 });

const b64 = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');

function sign(payload, key, typ) {
  const body = `${b64({ alg: 'HS256', typ })}.${b64(payload)}`;
  return `${body}.${createHmac('sha256', key).update(body).digest('base64url')}`;
}

// Refreshes sign ES256 access tokens, as Lineage's do, with a prebuilt KeyObject.
const { privateKey: es256Key } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const ES256_HEADER = b64({ alg: 'ES256', typ: 'at+jwt', kid: 'baseline' });

function signEs256(payload) {
  const body = `${ES256_HEADER}.${b64(payload)}`;
  const signature = signWith('sha256', Buffer.from(body), {
    key: es256Key,
    dsaEncoding: 'ieee-p1363',
  });
  return `${body}.${signature.toString('base64url')}`;
}

function verify(token, key) {
  const parts = typeof token === 'string' ? token.split('.') : [];
  if (parts.length !== 3) return null;
  const expected = createHmac('sha256', key).update(`${parts[0]}.${parts[1]}`).digest();
  const given = Buffer.from(parts[2], 'base64url');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return null;
  const claims = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
  return claims.exp > Date.now() / 1000 ? claims : null;
}

// DPoP (RFC 9449), the least work for the same answers: ES256 proofs only
// (the algorithms are the server's choice, §5.1), no server nonce (as the
// bench runs Lineage), and a proof's `jti` remembered in this process's
// memory for as long as the proof could pass the `iat` check (§11.1).
const PUBLIC_ORIGIN = new URL(env.PUBLIC_URL).origin;
const PROOF_MAX_AGE = 60;
const PROOF_IAT_LEEWAY = 5;
const JTI_TTL_MS = (PROOF_MAX_AGE + PROOF_IAT_LEEWAY) * 1000;
const MAX_JTIS = 100_000;
// Key thumbprint and jti -> expiry. Every entry lives equally long, so the
// insertion order is the expiry order and a sweep stops at the first live one.
const jtis = new Map();

function claimJti(jkt, jti, nowMs) {
  for (const [key, expiresAt] of jtis) {
    if (expiresAt > nowMs) break;
    jtis.delete(key);
  }
  // A thumbprint is base64url, without a dot: the key is unambiguous.
  const key = `${jkt}.${jti}`;
  // Full of live entries: refusing is safe (the client signs another proof), forgetting is not.
  if (jtis.has(key) || jtis.size >= MAX_JTIS) return false;
  jtis.set(key, nowMs + JTI_TTL_MS);
  return true;
}

/** RFC 3986 §6.2.2 and §6.2.3 normalization of an http(s) URL, without query or fragment. */
function normalizeHtu(value) {
  try {
    const url = new URL(value);
    return url.protocol === 'http:' || url.protocol === 'https:'
      ? `${url.origin}${url.pathname}`
      : null;
  } catch {
    return null;
  }
}

/**
 * Whether the request's DPoP header proves the key `bound` (RFC 9449 §4.3),
 * for a request sent with `accessToken` (`ath`, §7.1) or none. With no key
 * bound, no proof is needed, but one that is sent must hold. The cheap
 * checks come first, the signature after the key matched, the `jti` last,
 * so a refused proof spends no entry.
 */
function dpopAllows(request, bound, accessToken) {
  const proof = request.headers.dpop;
  if (proof === undefined) return bound === undefined;
  // Two headers arrive joined by ", ", which splits into more than three parts.
  const parts = typeof proof === 'string' && proof.length <= 8192 ? proof.split('.') : [];
  if (parts.length !== 3) return false;
  let header;
  let claims;
  try {
    header = JSON.parse(Buffer.from(parts[0], 'base64url').toString('utf8'));
    claims = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
  } catch {
    return false;
  }
  // §4.3 checks 4 to 7: typ, an asymmetric alg, a public key (RFC 7518 §6.2.2.1: `d` is the private part).
  if (header?.typ !== 'dpop+jwt' || header.alg !== 'ES256') return false;
  const jwk = header.jwk;
  if (typeof jwk !== 'object' || jwk === null || jwk.kty !== 'EC' || jwk.crv !== 'P-256') {
    return false;
  }
  if (typeof jwk.x !== 'string' || typeof jwk.y !== 'string' || 'd' in jwk) return false;
  const { jti, htm, htu, iat, ath } = claims ?? {};
  const url = request.url;
  const query = url.indexOf('?');
  const expected = `${PUBLIC_ORIGIN}${query === -1 ? url : url.slice(0, query)}`;
  const nowMs = Date.now();
  if (typeof jti !== 'string' || jti.length === 0 || jti.length > 256) return false;
  if (htm !== request.method) return false;
  if (htu !== expected && (typeof htu !== 'string' || normalizeHtu(htu) !== expected)) return false;
  const now = nowMs / 1000;
  if (typeof iat !== 'number' || !(iat >= now - PROOF_MAX_AGE && iat <= now + PROOF_IAT_LEEWAY)) {
    return false;
  }
  if (
    accessToken !== undefined &&
    ath !== createHash('sha256').update(accessToken, 'ascii').digest('base64url')
  ) {
    return false;
  }
  // RFC 7638 §3.2: the required members in lexicographic order, no whitespace.
  const jkt = createHash('sha256')
    .update(JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y }))
    .digest('base64url');
  if (bound !== undefined && jkt !== bound) return false;
  let key;
  try {
    key = createPublicKey({ key: jwk, format: 'jwk' });
  } catch {
    return false;
  }
  const signed = verifyWith(
    'sha256',
    Buffer.from(`${parts[0]}.${parts[1]}`),
    { key, dsaEncoding: 'ieee-p1363' },
    Buffer.from(parts[2], 'base64url'),
  );
  return signed && claimJti(jkt, jti, nowMs);
}

/**
 * The claims of the request's access token: an unbound one as Bearer, a
 * bound one (`cnf.jkt`) only as DPoP with a proof of its key (RFC 9449 §7.1).
 */
function bearer(request) {
  const header = request.headers.authorization;
  if (header?.startsWith('Bearer ')) {
    const token = header.slice(7);
    const claims = verify(token, accessKey);
    return claims && claims.cnf === undefined && dpopAllows(request, undefined, token)
      ? claims
      : null;
  }
  if (header?.startsWith('DPoP ')) {
    const token = header.slice(5);
    const claims = verify(token, accessKey);
    return claims?.cnf && dpopAllows(request, claims.cnf.jkt, token) ? claims : null;
  }
  return null;
}

const app = Fastify({ logger: false });

// The first page, newest first, and the user's total in one statement: a
// window count beside the page, off the (user_id, created_at, id) index. Of
// the designs measured for this answer it is the cheapest (a scalar count
// subquery beside the page, or a LATERAL page beside the count, cost
// PostgreSQL more); Lineage uses the same technique, so this comparison
// measures what the framework costs on top of the best statement.
app.get('/todos', async (request, reply) => {
  const claims = bearer(request);
  if (!claims) return reply.code(401).send({ statusCode: 401 });
  const { rows } = await pool.query(
    `SELECT id, title, description, completed, created_at, updated_at, count(*) OVER () AS total
       FROM todos WHERE user_id = $1
      ORDER BY created_at DESC, id DESC
      LIMIT $2`,
    [claims.sub, 20],
  );
  // The first page is empty only when the user has no todo at all.
  reply.header('X-Total-Count', rows.length > 0 ? rows[0].total : '0');
  return rows.map((r) => ({
    id: r.id,
    title: r.title,
    description: r.description,
    completed: r.completed,
    created_at: r.created_at.toISOString(),
    updated_at: r.updated_at.toISOString(),
  }));
});

app.get('/users/me', async (request, reply) => {
  const claims = bearer(request);
  if (!claims) return reply.code(401).send({ statusCode: 401 });
  const { rows } = await pool.query('SELECT id, username, created_at FROM users WHERE id = $1', [
    claims.sub,
  ]);
  return {
    id: rows[0].id,
    username: rows[0].username,
    created_at: rows[0].created_at.toISOString(),
  };
});

// The refresh ceiling: the best correct rotation hand-written in the classic
// design, a row per refresh token (its own tables, created below), not
// Lineage's store or SQL. The common case is one statement in
// autocommit: the family row is locked by its UPDATE (a concurrent rotation
// of the same family waits, then sees the new row version), the parent is
// marked used only if it still is unused and its hash matches, and the child
// is inserted from the parent's RETURNING, so two presentations of one token
// can never both rotate (and the partial unique index forbids a fork).
// Anything else is the rare path, a second statement: a token already used
// outside the grace window, or whose family is revoked, revokes the family;
// inside the grace window the current child is signed again (the same bytes).
// No event row per routine refresh.
// A session bound to a DPoP key carries its thumbprint in its refresh
// tokens' `cnf.jkt` (RFC 9449 §6.1): signed by this server, so no column
// needs reading; every child inherits it, and the access token names it.
const REUSE_GRACE_MS = 10_000;

function refreshPair(claims, child, now) {
  const iat = Math.floor(now / 1000);
  const base = { sub: claims.sub, sid: claims.sid, iss: 'lineage', aud: 'lineage-api' };
  if (claims.cnf) base.cnf = { jkt: claims.cnf.jkt };
  return {
    access_token: signEs256({ ...base, jti: randomUUID(), iat, exp: iat + ACCESS_TTL }),
    token_type: claims.cnf ? 'DPoP' : 'Bearer',
    expires_in: ACCESS_TTL,
    refresh_token: sign(
      { ...base, jti: child.id, iat: child.iat, exp: child.exp },
      refreshKey,
      'rt+jwt',
    ),
    refresh_expires_in: Math.max(0, child.exp - iat),
  };
}

app.post('/auth/refresh', async (request, reply) => {
  const presented = request.body?.refresh_token;
  const claims = verify(presented, refreshKey);
  if (!claims) return reply.code(401).send({ statusCode: 401 });
  // Before the rotation: a stolen token sent without a proof of the
  // session's key neither rotates nor counts as reuse (RFC 9449 §5).
  if (!dpopAllows(request, claims.cnf?.jkt, undefined)) {
    return reply.code(400).send({ statusCode: 400, error: 'invalid_dpop_proof' });
  }
  const now = Date.now();
  const iat = Math.floor(now / 1000);
  const child = { id: randomUUID(), iat, exp: iat + REFRESH_TTL };
  const body = refreshPair(claims, child, now);
  const hash = createHash('sha256').update(presented).digest();
  const rotated = await pool.query(
    `WITH family AS (
       UPDATE baseline_families f SET last_used_at = $3, expires_at = LEAST($6, f.absolute_expires_at)
        WHERE f.id = $4 AND f.user_id = $5 AND f.revoked_at IS NULL
          AND f.expires_at > $3 AND f.absolute_expires_at > $3
          AND EXISTS (SELECT 1 FROM baseline_refresh_tokens t
                       WHERE t.id = $1 AND t.family_id = f.id AND t.used_at IS NULL
                         AND t.token_hash = $7 AND t.expires_at > $3)
        RETURNING f.id, f.expires_at
     ), parent AS (
       UPDATE baseline_refresh_tokens t SET used_at = $3, replaced_by_id = $2
        WHERE t.id = $1 AND t.family_id = (SELECT id FROM family)
          AND t.used_at IS NULL AND t.token_hash = $7
        RETURNING t.family_id
     )
     INSERT INTO baseline_refresh_tokens (id, family_id, parent_id, token_hash, issued_at, expires_at)
     SELECT $2, p.family_id, $1, $8, to_timestamp($9), family.expires_at
       FROM parent p, family
     RETURNING id`,
    [
      claims.jti,
      child.id,
      new Date(now),
      claims.sid,
      claims.sub,
      new Date(child.exp * 1000),
      hash,
      createHash('sha256').update(body.refresh_token).digest(),
      child.iat,
    ],
  );
  reply.header('Cache-Control', 'no-store');
  if (rotated.rowCount === 1) return body;
  // Rare path: why did it not rotate?
  const { rows } = await pool.query(
    `SELECT t.used_at, t.token_hash, f.revoked_at, f.expires_at, f.absolute_expires_at,
            c.id AS child_id, c.used_at AS child_used_at, c.issued_at AS child_iat, c.expires_at AS child_exp
       FROM baseline_refresh_tokens t
       JOIN baseline_families f ON f.id = t.family_id
       LEFT JOIN baseline_refresh_tokens c ON c.id = t.replaced_by_id
      WHERE t.id = $1 AND f.id = $2 AND f.user_id = $3`,
    [claims.jti, claims.sid, claims.sub],
  );
  const t = rows[0];
  if (!t || !timingSafeEqual(t.token_hash, hash)) return reply.code(401).send({ statusCode: 401 });
  const live = !t.revoked_at && t.expires_at > now && t.absolute_expires_at > now;
  if (live && t.used_at && t.child_id && !t.child_used_at && now - t.used_at < REUSE_GRACE_MS) {
    const again = {
      id: t.child_id,
      iat: Math.floor(t.child_iat.getTime() / 1000),
      exp: Math.floor(t.child_exp.getTime() / 1000),
    };
    return refreshPair(claims, again, now);
  }
  if (live && t.used_at) {
    await pool.query(
      `UPDATE baseline_families SET revoked_at = $2, revoked_reason = 'reuse_detected'
        WHERE id = $1 AND revoked_at IS NULL`,
      [claims.sid, new Date(now)],
    );
  }
  return reply.code(401).send({ statusCode: 401 });
});

// The ceiling's schema: a family row per session and a row per refresh
// token, with at most one unused token per family (the index forbids a fork).
await pool.query(`
  CREATE TABLE IF NOT EXISTS baseline_families (
    id uuid PRIMARY KEY, user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL, last_used_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL, absolute_expires_at timestamptz NOT NULL,
    revoked_at timestamptz, revoked_reason varchar(32));
  CREATE TABLE IF NOT EXISTS baseline_refresh_tokens (
    id uuid PRIMARY KEY,
    family_id uuid NOT NULL REFERENCES baseline_families(id) ON DELETE CASCADE,
    parent_id uuid UNIQUE, token_hash bytea NOT NULL,
    issued_at timestamptz NOT NULL, expires_at timestamptz NOT NULL,
    used_at timestamptz, replaced_by_id uuid UNIQUE);
  CREATE INDEX IF NOT EXISTS baseline_refresh_tokens_family ON baseline_refresh_tokens (family_id);
  CREATE UNIQUE INDEX IF NOT EXISTS baseline_refresh_tokens_one_unused
    ON baseline_refresh_tokens (family_id) WHERE used_at IS NULL;`);

await app.listen({ port: Number(env.PORT), host: '127.0.0.1' });
process.send?.('ready');
process.on('SIGTERM', () => {
  void app
    .close()
    .then(() => pool.end())
    .then(() => process.exit(0));
});
