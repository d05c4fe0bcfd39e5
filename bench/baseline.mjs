// The hand-written baseline `npm run bench` compares Lineage against: bare
// Fastify + pg, doing the same database work per request as Lineage, with
// HS256 checked by a bare HMAC. No framework, no validation layer, no ORM.
// Started by bench/run.mjs with DATABASE_URL, JWT_ACCESS_SECRET,
// JWT_REFRESH_SECRET and PORT in its environment.
import { createHash, createHmac, createSecretKey, randomUUID, timingSafeEqual } from 'node:crypto';
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

function tokens(userId, familyId, refresh, now) {
  const iat = Math.floor(now / 1000);
  const base = { sub: userId, sid: familyId, iss: 'lineage', aud: 'lineage-api' };
  return {
    access_token: sign(
      { ...base, jti: randomUUID(), iat, exp: iat + ACCESS_TTL },
      accessKey,
      'at+jwt',
    ),
    token_type: 'Bearer',
    expires_in: ACCESS_TTL,
    refresh_token: sign(
      { ...base, jti: refresh.id, iat, exp: iat + REFRESH_TTL },
      refreshKey,
      'rt+jwt',
    ),
    refresh_expires_in: REFRESH_TTL,
  };
}

const app = Fastify({ logger: false });

app.get('/todos', async (request, reply) => {
  const claims = bearer(request);
  if (!claims) return reply.code(401).send({ statusCode: 401 });
  // The statement Lineage runs for an unfiltered first page (src/todos/todos.service.ts).
  const { rows } = await pool.query(
    `SELECT id, user_id, title, description, completed, created_at, updated_at,
              count(*) OVER () AS total
         FROM todos
        WHERE user_id = $1
        ORDER BY created_at DESC, id DESC
        LIMIT $2 OFFSET $3`,
    [claims.sub, 20, 0],
  );
  reply.header('X-Total-Count', rows.length ? rows[0].total : '0');
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

// The same rotation SQL as Lineage's (src/auth/token-family.repository.ts):
// one transaction; the family row locked; the token and its child read after
// the lock; parent marked used, family touched, audit event and child written
// in one statement.
app.post('/auth/refresh', async (request, reply) => {
  const presented = request.body?.refresh_token;
  const claims = verify(presented, refreshKey);
  if (!claims) return reply.code(401).send({ statusCode: 401 });
  const now = Date.now();
  const client = await pool.connect();
  try {
    await client.query('START TRANSACTION');
    const family = await client.query(
      `SELECT f.id, f.user_id, f.revoked_at, f.expires_at, f.absolute_expires_at
         FROM token_families f
        WHERE f.id = (SELECT family_id FROM refresh_tokens WHERE id = $1)
        FOR UPDATE`,
      [claims.jti],
    );
    const token = await client.query(
      `SELECT t.token_hash, t.expires_at, t.used_at,
              c.id AS child_id, c.issued_at AS child_issued_at,
              c.expires_at AS child_expires_at, c.used_at AS child_used_at
         FROM refresh_tokens t
         LEFT JOIN refresh_tokens c ON c.id = t.replaced_by_id
        WHERE t.id = $1`,
      [claims.jti],
    );
    const f = family.rows[0];
    const t = token.rows[0];
    const hash = createHash('sha256').update(presented).digest();
    if (!f || !t || t.used_at || f.revoked_at || !timingSafeEqual(t.token_hash, hash)) {
      await client.query('ROLLBACK');
      return reply.code(401).send({ statusCode: 401 });
    }
    const child = { id: randomUUID() };
    const body = tokens(claims.sub, claims.sid, child, now);
    const iat = new Date(Math.floor(now / 1000) * 1000);
    const expires = new Date(iat.getTime() + REFRESH_TTL * 1000);
    await client.query(
      `WITH parent AS (
         UPDATE refresh_tokens SET used_at = $3, replaced_by_id = $2
          WHERE id = $1 AND used_at IS NULL
          RETURNING family_id
       ), family AS (
         UPDATE token_families SET last_used_at = $3, expires_at = $5
          WHERE id = (SELECT family_id FROM parent)
          RETURNING id, user_id
       ), event AS (
         INSERT INTO auth_events (occurred_at, type, user_id, session_id, ip, user_agent)
         SELECT $3, 'refreshed', user_id, id, $7, $8 FROM family
       )
       INSERT INTO refresh_tokens (id, family_id, parent_id, token_hash, issued_at, expires_at)
       SELECT $2, family_id, $1, $4, $6, $5 FROM parent`,
      [
        claims.jti,
        child.id,
        new Date(now),
        createHash('sha256').update(body.refresh_token).digest(),
        expires,
        iat,
        request.ip,
        request.headers['user-agent'] ?? null,
      ],
    );
    await client.query('COMMIT');
    reply.header('Cache-Control', 'no-store');
    return body;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  } finally {
    client.release();
  }
});

await app.listen({ port: Number(env.PORT), host: '127.0.0.1' });
process.send?.('ready');
process.on('SIGTERM', () => {
  void app
    .close()
    .then(() => pool.end())
    .then(() => process.exit(0));
});
