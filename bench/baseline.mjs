// The hand-written baseline `npm run bench` compares Lineage against: bare
// Fastify + pg, the least correct work for each answer (see each route), with
// HS256 access tokens checked by a bare HMAC. No framework, no validation
// layer, no ORM.
// Started by bench/run.mjs with DATABASE_URL, JWT_ACCESS_SECRET,
// JWT_REFRESH_SECRET and PORT in its environment.
import {
  createHash,
  createHmac,
  createSecretKey,
  generateKeyPairSync,
  randomUUID,
  sign as signWith,
  timingSafeEqual,
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

function bearer(request) {
  const header = request.headers.authorization;
  return header?.startsWith('Bearer ') ? verify(header.slice(7), accessKey) : null;
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
const REUSE_GRACE_MS = 10_000;

function refreshPair(claims, child, now) {
  const iat = Math.floor(now / 1000);
  const base = { sub: claims.sub, sid: claims.sid, iss: 'lineage', aud: 'lineage-api' };
  return {
    access_token: signEs256({ ...base, jti: randomUUID(), iat, exp: iat + ACCESS_TTL }),
    token_type: 'Bearer',
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
