import { createHash, createSecretKey, randomUUID } from 'node:crypto';
import { jest } from '@jest/globals';
import { JwtService } from '@nestjs/jwt';
import bcrypt from 'bcrypt';
import pg from 'pg';
import { DataSource } from 'typeorm';
import { SessionGenerations1764500000000 } from '../migrations/1764500000000-SessionGenerations.js';
import { TokenService } from '../src/auth/tokens/token.service.js';
import { Clock } from '../src/common/clock.js';
import { buildConfig } from '../src/config/environment.js';
import { MIGRATIONS } from '../src/database/data-source-options.js';
import { usernameKey } from '../src/common/username.js';
import { TEST_SECRETS } from './support/secrets.js';
import { expectError } from './support/errors.js';
import {
  bearer,
  claimsOf,
  login,
  PASSWORD,
  type Tokens,
  uniqueUsername,
} from './support/requests.js';
import { startTestApp, type TestApp } from './support/test-app.js';

/**
 * A deployment upgrading to token store v2 logs nobody out. The test builds
 * its own database at the v1 schema (every migration before
 * SessionGenerations), writes sessions there exactly as v1 wrote them (its
 * SQL and its token signing, reproduced below), then starts the real app on
 * it, which applies the remaining migration, and presents the v1 tokens over
 * HTTP.
 */

const UPGRADE = MIGRATIONS.indexOf(SessionGenerations1764500000000);
const BEFORE_UPGRADE = MIGRATIONS.slice(0, UPGRADE);

const HOUR = 3600_000;
const DAY = 24 * HOUR;

const sha256 = (token: string) => createHash('sha256').update(token, 'utf8').digest();
const toEpochSeconds = (date: Date) => Math.floor(date.getTime() / 1000);

interface V1Token {
  id: string;
  token: string;
  issuedAt: Date;
  expiresAt: Date;
}

interface V1Client {
  userAgent: string;
  ip: string;
}

interface V1Family {
  id: string;
  userId: string;
  createdAt: Date;
  lastUsedAt: Date;
  /** token_families.expires_at: its current token's. */
  expiresAt: Date;
  absoluteExpiresAt: Date;
  client: V1Client;
  /** Every token issued, oldest first; the last one is unused. */
  tokens: V1Token[];
  /** Its refresh_tokens rows were deleted. */
  tokenRowsDeleted: boolean;
  revokedAt: Date | null;
  revokedReason: string | null;
}

interface SessionRow {
  id: string;
  user_id: string;
  created_at: Date;
  absolute_expires_at: Date;
  token_salt: Buffer;
  rotated_at: Date;
  last_used_at: Date;
  expires_at: Date;
  generation: number;
  revoked_at: Date | null;
  revoked_reason: string | null;
  user_agent: string | null;
  ip: string | null;
  legacy_token_id: string | null;
  legacy_token_hash: Buffer | null;
  legacy_parent_hash: Buffer | null;
}

interface SessionBody {
  id: string;
  created_at: string;
  last_used_at: string;
  expires_at: string;
  user_agent: string | null;
  ip: string | null;
  current: boolean;
}

/**
 * v1's session writes (TokenFamilyRepository and TokenService at 9485a7c):
 * the same statements, the same token layout (HS256, `typ` rt+jwt, claims
 * sub, sid, jti, iat, exp, iss, aud), the same lifetimes.
 */
class V1Sessions {
  private readonly jwt: JwtService;

  constructor(
    private readonly db: pg.Client,
    private readonly auth: {
      refreshSecret: string;
      issuer: string;
      audience: string;
      refreshTokenTtl: number;
      sessionMaxAge: number;
    },
  ) {
    this.jwt = new JwtService({
      secret: createSecretKey(Buffer.from(auth.refreshSecret, 'utf8')),
      signOptions: { algorithm: 'HS256', header: { alg: 'HS256', typ: 'rt+jwt' } },
    });
  }

  /** v1 newRefreshTokenSpec + signRefreshToken. */
  private issue(userId: string, familyId: string, now: Date, notAfter: Date): V1Token {
    const issuedAt = new Date(toEpochSeconds(now) * 1000);
    const sliding = issuedAt.getTime() + this.auth.refreshTokenTtl * 1000;
    const id = randomUUID();
    const expiresAt = new Date(Math.min(sliding, notAfter.getTime()));
    const token = this.jwt.sign({
      sub: userId,
      sid: familyId,
      jti: id,
      iat: toEpochSeconds(issuedAt),
      exp: toEpochSeconds(expiresAt),
      iss: this.auth.issuer,
      aud: this.auth.audience,
    });
    return { id, token, issuedAt, expiresAt };
  }

  /** v1 startSession: createFamily and the `login_succeeded` event. */
  async login(userId: string, now: Date, client: V1Client): Promise<V1Family> {
    const familyId = randomUUID();
    const absoluteExpiresAt = new Date((toEpochSeconds(now) + this.auth.sessionMaxAge) * 1000);
    const first = this.issue(userId, familyId, now, absoluteExpiresAt);
    await this.db.query(
      `WITH family AS (
         INSERT INTO token_families
                (id, user_id, created_at, last_used_at, expires_at, absolute_expires_at, user_agent, ip)
         VALUES ($1, $2, $3, $3, $4, $10, $5, $6)
       )
       INSERT INTO refresh_tokens (id, family_id, parent_id, token_hash, issued_at, expires_at)
       VALUES ($7, $1, NULL, $8, $9, $4)`,
      [
        familyId,
        userId,
        now,
        first.expiresAt,
        client.userAgent,
        client.ip,
        first.id,
        sha256(first.token),
        first.issuedAt,
        absoluteExpiresAt,
      ],
    );
    await this.db.query(
      `INSERT INTO auth_events (occurred_at, type, user_id, session_id, ip, user_agent)
       VALUES ($1, 'login_succeeded', $2, $3, $4, $5)`,
      [now, userId, familyId, client.ip, client.userAgent],
    );
    return {
      id: familyId,
      userId,
      createdAt: now,
      lastUsedAt: now,
      expiresAt: first.expiresAt,
      absoluteExpiresAt,
      client,
      tokens: [first],
      tokenRowsDeleted: false,
      revokedAt: null,
      revokedReason: null,
    };
  }

  /** v1 rotate: the current token used, replaced by its child, the family touched. */
  async rotate(family: V1Family, now: Date): Promise<V1Token> {
    const parent = family.tokens.at(-1)!;
    const child = this.issue(family.userId, family.id, now, family.absoluteExpiresAt);
    const result = await this.db.query(
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
        parent.id,
        child.id,
        now,
        sha256(child.token),
        child.expiresAt,
        child.issuedAt,
        family.client.ip,
        family.client.userAgent,
      ],
    );
    expect(result.rowCount).toBe(1);
    family.tokens.push(child);
    family.lastUsedAt = now;
    family.expiresAt = child.expiresAt;
    return child;
  }

  /** v1 revoke (a logout). */
  async revoke(family: V1Family, now: Date, reason: string): Promise<void> {
    const result = await this.db.query(
      `UPDATE token_families SET revoked_at = $3, revoked_reason = $4
        WHERE user_id = $1 AND id = ANY($2::uuid[]) AND revoked_at IS NULL AND expires_at > $3`,
      [family.userId, [family.id], now, reason],
    );
    expect(result.rowCount).toBe(1);
    family.revokedAt = now;
    family.revokedReason = reason;
  }
}

/**
 * Everything PostgreSQL knows about the public schema's shape (tables and
 * their columns in order, constraints, indexes, triggers, functions), one
 * line each, sorted.
 */
async function schemaOf(db: pg.Client): Promise<string[]> {
  const { rows } = await db.query<{ line: string }>(
    `SELECT 'table ' || c.relname || ': ' || string_agg(
              a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
              || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
              || COALESCE(' default ' || pg_get_expr(d.adbin, d.adrelid), ''),
              ', ' ORDER BY a.attnum) AS line
       FROM pg_class c
       JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
       LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
      WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r'
      GROUP BY c.relname
     UNION ALL
     SELECT 'index ' || indexname || ': ' || indexdef FROM pg_indexes WHERE schemaname = 'public'
     UNION ALL
     SELECT 'constraint ' || conrelid::regclass || '.' || conname || ': ' || pg_get_constraintdef(oid)
       FROM pg_constraint WHERE connamespace = 'public'::regnamespace
     UNION ALL
     SELECT 'trigger ' || tgname || ': ' || pg_get_triggerdef(oid) FROM pg_trigger WHERE NOT tgisinternal
     UNION ALL
     SELECT 'function ' || proname || ': ' || pg_get_functiondef(oid)
       FROM pg_proc WHERE pronamespace = 'public'::regnamespace
     ORDER BY 1`,
  );
  return rows.map((row) => row.line);
}

async function tableExists(db: pg.Client, table: string): Promise<boolean> {
  const { rows } = await db.query<{ oid: string | null }>('SELECT to_regclass($1) AS oid', [
    `public.${table}`,
  ]);
  return rows[0].oid !== null;
}

describe('upgrade to token store v2 (e2e)', () => {
  const databaseName = `lineage_upgrade_${randomUUID().replaceAll('-', '').slice(0, 16)}`;
  const serverUrl = process.env.LINEAGE_TEST_DATABASE_URL!;
  const url = Object.assign(new URL(serverUrl), { pathname: `/${databaseName}` }).toString();
  // The app's own configuration (as startTestApp builds it): v1 signed with
  // the same key, issuer and audience, and the same lifetimes.
  const config = buildConfig({ NODE_ENV: 'test', DATABASE_URL: url, ...TEST_SECRETS });

  let admin: pg.Client;
  let db: pg.Client;
  let t: TestApp | undefined;
  let v1Schema: string[];
  let v1FamilyCount: number;
  const username = uniqueUsername('v1');
  const userId = randomUUID();

  // One session per case, so an outcome that ends a session ends no other.
  const f = {} as Record<
    | 'fresh'
    | 'current'
    | 'parent'
    | 'grandparent'
    | 'revoked'
    | 'revokedWithoutTokens'
    | 'liveWithoutTokens'
    | 'predatesAbsoluteLifetime'
    | 'expired',
    V1Family
  >;
  const live = () => [
    f.fresh,
    f.current,
    f.parent,
    f.grandparent,
    f.liveWithoutTokens,
    f.predatesAbsoluteLifetime,
  ];

  const refresh = (token: string) =>
    t!
      .http()
      .post('/auth/refresh')
      .set('User-Agent', 'Upgraded/2.0')
      .send({ refresh_token: token });

  const sessionRow = async (id: string): Promise<SessionRow> => {
    const { rows } = await db.query<SessionRow>(
      `SELECT id, user_id, created_at, absolute_expires_at, token_salt, rotated_at, last_used_at,
              expires_at, generation, revoked_at, revoked_reason, user_agent, host(ip) AS ip,
              legacy_token_id, legacy_token_hash, legacy_parent_hash
         FROM sessions WHERE id = $1`,
      [id],
    );
    expect(rows).toHaveLength(1);
    return rows[0];
  };

  const eventsOf = async (sessionId: string, types: string[]) => {
    const { rows } = await db.query<{ type: string; reason: string | null }>(
      `SELECT type, reason FROM auth_events
        WHERE session_id = $1 AND type = ANY($2::text[]) ORDER BY id`,
      [sessionId, types],
    );
    return rows;
  };

  beforeAll(async () => {
    admin = new pg.Client({ connectionString: serverUrl });
    await admin.connect();
    await admin.query(`CREATE DATABASE "${databaseName}"`);

    // The v1 schema: every migration before token store v2.
    expect(MIGRATIONS[BEFORE_UPGRADE.length]).toBe(SessionGenerations1764500000000);
    const v1 = new DataSource({ type: 'postgres', url, migrations: BEFORE_UPGRADE });
    await v1.initialize();
    try {
      const ran = await v1.runMigrations({ transaction: 'each' });
      expect(ran.map((m) => m.name)).toEqual(BEFORE_UPGRADE.map((m) => m.name));
    } finally {
      await v1.destroy();
    }

    db = new pg.Client({ connectionString: url });
    await db.connect();
    expect(await tableExists(db, 'token_families')).toBe(true);
    expect(await tableExists(db, 'sessions')).toBe(false);
    v1Schema = await schemaOf(db);

    // A v1 user, whose password still works after the upgrade.
    await db.query(
      `INSERT INTO users (id, username, username_key, password_hash) VALUES ($1, $2, $3, $4)`,
      [userId, username, usernameKey(username), await bcrypt.hash(PASSWORD.normalize('NFC'), 4)],
    );

    const v1Sessions = new V1Sessions(db, config.auth);
    const now = Date.now();
    // Millisecond parts, as v1's `new Date()` had.
    const at = (ago: number) => new Date(now - ago + 137);
    const client = (n: number): V1Client => ({
      userAgent: `LegacyBrowser/1.${n}`,
      ip: `203.0.113.${n}`,
    });

    // (a) A login never refreshed: one unused token, no parent.
    f.fresh = await v1Sessions.login(userId, at(2 * HOUR), client(1));
    // (b) Rotated twice: T0 used, T1 used, T2 current.
    for (const [name, n] of [
      ['current', 2],
      ['parent', 3],
      ['grandparent', 4],
    ] as const) {
      f[name] = await v1Sessions.login(userId, at(5 * HOUR), client(n));
      await v1Sessions.rotate(f[name], at(3 * HOUR));
      await v1Sessions.rotate(f[name], at(HOUR));
    }
    // (c) Logged out in v1; its token still verifies.
    f.revoked = await v1Sessions.login(userId, at(3 * HOUR), client(5));
    await v1Sessions.rotate(f.revoked, at(2 * HOUR));
    await v1Sessions.revoke(f.revoked, at(HOUR), 'logout');
    // A family left with no unused token (its token rows gone).
    f.revokedWithoutTokens = await v1Sessions.login(userId, at(3 * HOUR), client(6));
    await v1Sessions.revoke(f.revokedWithoutTokens, at(2 * HOUR), 'logout');
    await db.query('DELETE FROM refresh_tokens WHERE family_id = $1', [f.revokedWithoutTokens.id]);
    f.revokedWithoutTokens.tokenRowsDeleted = true;
    // The same while live. v1 never leaves one (housekeeping deletes a token
    // only once it has expired, and a live family's current one has not),
    // but the upgrade must not depend on it.
    f.liveWithoutTokens = await v1Sessions.login(userId, at(2 * HOUR), client(8));
    await v1Sessions.rotate(f.liveWithoutTokens, at(HOUR));
    await db.query('DELETE FROM refresh_tokens WHERE family_id = $1', [f.liveWithoutTokens.id]);
    f.liveWithoutTokens.tokenRowsDeleted = true;
    // A family from before absolute lifetimes existed: their migration set
    // absolute_expires_at to created_at + 30 days without capping the token
    // already issued, so the current token outlives it (and v1 honoured that
    // token until its own exp).
    f.predatesAbsoluteLifetime = await v1Sessions.login(userId, at(5 * HOUR), client(9));
    await v1Sessions.rotate(f.predatesAbsoluteLifetime, at(3 * HOUR));
    f.predatesAbsoluteLifetime.absoluteExpiresAt = new Date(
      f.predatesAbsoluteLifetime.expiresAt.getTime() - DAY,
    );
    await db.query('UPDATE token_families SET absolute_expires_at = $2 WHERE id = $1', [
      f.predatesAbsoluteLifetime.id,
      f.predatesAbsoluteLifetime.absoluteExpiresAt,
    ]);
    // Idle past REFRESH_TOKEN_TTL: its token (and the family) expired in v1.
    f.expired = await v1Sessions.login(
      userId,
      at(config.auth.refreshTokenTtl * 1000 + DAY),
      client(7),
    );
    v1FamilyCount = Object.keys(f).length;

    // The upgrade: the app applies the remaining migration at start.
    t = await startTestApp({ DATABASE_URL: url });
  });

  afterEach(() => {
    jest.restoreAllMocks();
  });

  afterAll(async () => {
    await t?.close();
    await db?.end();
    if (admin) {
      await admin.query(`DROP DATABASE IF EXISTS "${databaseName}" WITH (FORCE)`);
      await admin.end();
    }
  });

  it('turns every v1 family into one sessions row at generation 0 and drops the v1 tables', async () => {
    expect(await tableExists(db, 'token_families')).toBe(false);
    expect(await tableExists(db, 'refresh_tokens')).toBe(false);
    const { rows: applied } = await db.query<{ name: string }>(
      'SELECT name FROM migrations ORDER BY id',
    );
    expect(applied.map((m) => m.name)).toEqual(MIGRATIONS.map((m) => m.name));

    const { rows: all } = await db.query<{ id: string }>('SELECT id FROM sessions');
    expect(all.map((r) => r.id).sort()).toEqual(
      Object.values(f)
        .map((family) => family.id)
        .sort(),
    );

    const salts = new Set<string>();
    for (const family of Object.values(f)) {
      const row = await sessionRow(family.id);
      // The token the client holds is generation 0 (null when none survived);
      // the one it was rotated from is remembered (null when never rotated).
      const current = family.tokenRowsDeleted ? undefined : family.tokens.at(-1);
      const parent = family.tokenRowsDeleted ? undefined : family.tokens.at(-2);
      const expected = {
        user_id: userId,
        created_at: family.createdAt,
        // Never before the current token's exp: v1 honoured the token until then.
        absolute_expires_at: new Date(
          Math.max(family.absoluteExpiresAt.getTime(), current?.expiresAt.getTime() ?? 0),
        ),
        last_used_at: family.lastUsedAt,
        generation: 0,
        revoked_at: family.revokedAt,
        revoked_reason: family.revokedReason,
        user_agent: family.client.userAgent,
        ip: family.client.ip,
        legacy_token_id: current?.id ?? null,
        legacy_token_hash: current ? sha256(current.token) : null,
        legacy_parent_hash: parent ? sha256(parent.token) : null,
        rotated_at: current?.issuedAt ?? family.createdAt,
        expires_at: family.expiresAt,
      };
      expect({ ...row, id: undefined, token_salt: undefined }).toEqual({
        ...expected,
        id: undefined,
        token_salt: undefined,
      });
      expect(row.token_salt).toHaveLength(32);
      salts.add(row.token_salt.toString('hex'));
    }
    expect(salts.size).toBe(v1FamilyCount);

    // The revocation feed now follows the sessions table.
    const { rows: triggers } = await db.query<{ tgname: string; proname: string }>(
      `SELECT tgname, p.proname FROM pg_trigger JOIN pg_proc p ON p.oid = tgfoid
        WHERE tgrelid = 'sessions'::regclass AND NOT tgisinternal ORDER BY tgname`,
    );
    expect(triggers).toEqual([
      { tgname: 'sessions_deleted', proname: 'sessions_announce_end' },
      { tgname: 'sessions_revoked', proname: 'sessions_announce_end' },
    ]);
  });

  it('lists the migrated live sessions as v1 recorded them, and the v1 password still logs in', async () => {
    const tokens = await login(t!, username);
    const res = await t!.http().get('/auth/sessions').set(bearer(tokens.access_token)).expect(200);
    const sessions = res.body as SessionBody[];
    const newSid = claimsOf(tokens.access_token).sid as string;
    expect(sessions.map((s) => s.id).sort()).toEqual(
      [newSid, ...live().map((family) => family.id)].sort(),
    );
    for (const family of live()) {
      expect(sessions.find((s) => s.id === family.id)).toEqual({
        id: family.id,
        created_at: family.createdAt.toISOString(),
        last_used_at: family.lastUsedAt.toISOString(),
        expires_at: family.expiresAt.toISOString(),
        user_agent: family.client.userAgent,
        ip: family.client.ip,
        // v1 had no OAuth clients: every session came from the JSON routes.
        client_id: null,
        dpop_bound: false,
        current: false,
      });
    }
  });

  // v1 access tokens: TokenService.signAccessToken is unchanged since v1, and
  // the signing keys table is untouched by the upgrade; an access token it
  // signs for a migrated session stands for one a v1 client holds (under the
  // key the app created at start rather than one from before the upgrade).
  it('an access token of a migrated session works until that session ends', async () => {
    const tokens = t!.app.get(TokenService);
    const accessFor = (family: V1Family) =>
      tokens.signAccessToken(userId, family.id, new Date(), family.tokens[0].expiresAt).token;
    const me = await t!
      .http()
      .get('/users/me')
      .set(bearer(accessFor(f.fresh)))
      .expect(200);
    expect(me.body).toMatchObject({ id: userId, username });
    expectError(
      await t!
        .http()
        .get('/users/me')
        .set(bearer(accessFor(f.revoked))),
      401,
      'session_revoked',
    );
  });

  it('(a) a v1 login refreshes after the upgrade, into v2 generations 1 and 2', async () => {
    const legacy = f.fresh.tokens[0].token;
    const first = await refresh(legacy).expect(200);
    const one = first.body as Tokens;
    expect(claimsOf(one.refresh_token)).toMatchObject({ sid: f.fresh.id, sub: userId, gen: 1 });
    expect(claimsOf(one.access_token)).toMatchObject({ sid: f.fresh.id, sub: userId });
    await t!.http().get('/users/me').set(bearer(one.access_token)).expect(200);

    const second = await refresh(one.refresh_token).expect(200);
    expect(claimsOf((second.body as Tokens).refresh_token)).toMatchObject({
      sid: f.fresh.id,
      gen: 2,
    });
    const row = await sessionRow(f.fresh.id);
    expect(row).toMatchObject({ generation: 2, revoked_at: null });
  });

  it('(b) the current token of a twice-rotated v1 session refreshes; behind it, the rule table holds', async () => {
    const [, t1, t2] = f.current.tokens.map((token) => token.token);
    const clock = t!.app.get(Clock);
    const rotatedAt = new Date();
    jest.spyOn(clock, 'now').mockReturnValue(rotatedAt);

    const rotated = (await refresh(t2).expect(200)).body as Tokens;
    expect(claimsOf(rotated.refresh_token)).toMatchObject({ sid: f.current.id, gen: 1 });

    // T2 again: the parent of the newest token gets that token back, byte for byte.
    const again = (await refresh(t2).expect(200)).body as Tokens;
    expect(again.refresh_token).toBe(rotated.refresh_token);
    expect(await eventsOf(f.current.id, ['refresh_reissued'])).toEqual([
      { type: 'refresh_reissued', reason: 'other_client' },
    ]);

    // T1 is now two behind: within the grace, refused without ending the session...
    expectError(await refresh(t1), 409, 'refresh_token_superseded');
    expect(await sessionRow(f.current.id)).toMatchObject({ generation: 1, revoked_at: null });

    // ...after it, reuse: the session ends.
    jest
      .spyOn(clock, 'now')
      .mockReturnValue(new Date(rotatedAt.getTime() + (config.auth.refreshReuseGrace + 1) * 1000));
    expectError(await refresh(t1), 401, 'refresh_token_reused');
    expect(await sessionRow(f.current.id)).toMatchObject({ revoked_reason: 'reuse_detected' });
    expectError(await refresh(rotated.refresh_token), 401, 'session_revoked');
  });

  it('(b) the parent of the current v1 token gets the current v1 token back, byte for byte', async () => {
    const [, t1, t2] = f.parent.tokens.map((token) => token.token);
    const res = await refresh(t1).expect(200);
    const body = res.body as Tokens;
    expect(body.refresh_token).toBe(t2);
    expect(claimsOf(body.access_token)).toMatchObject({ sid: f.parent.id, sub: userId });
    expect(await eventsOf(f.parent.id, ['refresh_reissued'])).toEqual([
      { type: 'refresh_reissued', reason: 'other_client' },
    ]);
    expect(await sessionRow(f.parent.id)).toMatchObject({ generation: 0, revoked_at: null });

    // And the re-issued token is the session's generation 0: it rotates.
    const next = (await refresh(body.refresh_token).expect(200)).body as Tokens;
    expect(claimsOf(next.refresh_token)).toMatchObject({ sid: f.parent.id, gen: 1 });
  });

  it('a v1 token that outlives its session absolute lifetime is still re-issued byte for byte', async () => {
    const [t0, t1] = f.predatesAbsoluteLifetime.tokens;
    expect(t1.expiresAt.getTime()).toBeGreaterThan(
      f.predatesAbsoluteLifetime.absoluteExpiresAt.getTime(),
    );
    const again = (await refresh(t0.token).expect(200)).body as Tokens;
    expect(again.refresh_token).toBe(t1.token);
    // It rotates, and the session still ends when that token would have.
    const next = (await refresh(again.refresh_token).expect(200)).body as Tokens;
    expect(claimsOf(next.refresh_token)).toMatchObject({
      gen: 1,
      exp: toEpochSeconds(t1.expiresAt),
    });
  });

  it('(b) a v1 token older than the parent is reuse at once: the session ends', async () => {
    const [t0, , t2] = f.grandparent.tokens.map((token) => token.token);
    expectError(await refresh(t0), 401, 'refresh_token_reused');
    expect(await sessionRow(f.grandparent.id)).toMatchObject({
      generation: 0,
      revoked_reason: 'reuse_detected',
    });
    expect(await eventsOf(f.grandparent.id, ['session_revoked', 'reuse_detected'])).toEqual([
      { type: 'session_revoked', reason: 'reuse_detected' },
      { type: 'reuse_detected', reason: 'older_generation' },
    ]);
    expectError(await refresh(t2), 401, 'session_revoked');
  });

  it('(c) a session v1 had ended stays ended', async () => {
    expectError(await refresh(f.revoked.tokens.at(-1)!.token), 401, 'session_revoked');
    expectError(await refresh(f.revoked.tokens[0].token), 401, 'session_revoked');
    expectError(await refresh(f.revokedWithoutTokens.tokens[0].token), 401, 'session_revoked');
    // Its JWT expired with it: refused before the session is read.
    expectError(await refresh(f.expired.tokens[0].token), 401, 'session_expired');
    for (const family of [f.revoked, f.revokedWithoutTokens, f.expired]) {
      expect(await sessionRow(family.id)).toMatchObject({
        generation: 0,
        revoked_at: family.revokedAt,
        revoked_reason: family.revokedReason,
      });
    }
  });

  it('a live v1 family left without a token refuses its tokens without ending', async () => {
    // Nothing identifies them as the session's: not a reuse, and not a refresh.
    for (const token of f.liveWithoutTokens.tokens) {
      expectError(await refresh(token.token), 401, 'token_invalid');
    }
    expect(await sessionRow(f.liveWithoutTokens.id)).toMatchObject({
      generation: 0,
      revoked_at: null,
    });
  });

  it('the upgrade can be undone to the exact v1 schema, and applied again', async () => {
    await t!.close();
    t = undefined;
    const sessions = (await db.query<{ id: string }>('SELECT id FROM sessions ORDER BY id')).rows;

    const ds = new DataSource({ type: 'postgres', url, migrations: MIGRATIONS });
    await ds.initialize();
    try {
      // Back through token store v2 and every migration after it.
      for (let undo = MIGRATIONS.length - UPGRADE; undo > 0; undo -= 1) {
        await ds.undoLastMigration({ transaction: 'each' });
      }
    } finally {
      await ds.destroy();
    }
    expect(await schemaOf(db)).toEqual(v1Schema);
    const families = (await db.query<{ id: string }>('SELECT id FROM token_families ORDER BY id'))
      .rows;
    expect(families).toEqual(sessions);

    t = await startTestApp({ DATABASE_URL: url });
    await t.http().get('/health').expect(200);
    expect(await tableExists(db, 'token_families')).toBe(false);
    const after = (await db.query<{ id: string }>('SELECT id FROM sessions ORDER BY id')).rows;
    expect(after).toEqual(sessions);
  });
});
