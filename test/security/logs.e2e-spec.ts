import type { LoggerService } from '@nestjs/common';
import {
  bearer,
  PASSWORD,
  register,
  startTestApp,
  type TestApp,
  type Tokens,
} from '../support/test-app.js';

/** Every line the application logs, at every level. */
class CollectingLogger implements LoggerService {
  readonly lines: string[] = [];
  private collect = (...parts: unknown[]) => {
    this.lines.push(
      parts.map((part) => (part instanceof Error ? String(part.stack) : String(part))).join(' '),
    );
  };
  log = this.collect;
  error = this.collect;
  warn = this.collect;
  debug = this.collect;
  verbose = this.collect;
  fatal = this.collect;
}

describe('security: what the logs may contain (ASVS 7.1.1, 7.1.2)', () => {
  const logger = new CollectingLogger();
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp({}, logger);
  });

  afterAll(async () => {
    await t.close();
  });

  it('never logs a password, a token or a cookie, through failures, reuse and logout', async () => {
    const wrongPassword = 'not the password 9f8e7d';
    const user = await register(t);
    await t
      .http()
      .post('/auth/login')
      .send({ username: user.username, password: wrongPassword })
      .expect(401);
    const cookieLogin = await t
      .http()
      .post('/auth/login')
      .set('X-Token-Transport', 'cookie')
      .send({ username: user.username, password: PASSWORD })
      .expect(200);
    const cookie = String(cookieLogin.headers['set-cookie']).split(';')[0];
    const rotated = (
      await t.http().post('/auth/refresh').send({ refresh_token: user.refresh_token }).expect(200)
    ).body as Tokens;
    await t.http().post('/auth/refresh').send({ refresh_token: rotated.refresh_token }).expect(200);
    // Reuse of a grandparent: revokes the family and logs a warning.
    await t.http().post('/auth/refresh').send({ refresh_token: user.refresh_token }).expect(401);
    await t
      .http()
      .get('/todos')
      .set(bearer(`${user.access_token}tampered`))
      .expect(401);
    await t
      .http()
      .post('/auth/logout')
      .set(bearer((cookieLogin.body as Tokens).access_token))
      .set('Cookie', cookie);

    expect(logger.lines.some((line) => line.includes('reuse detected'))).toBe(true);
    const secrets = [
      PASSWORD,
      wrongPassword,
      user.access_token,
      user.refresh_token,
      rotated.refresh_token,
      rotated.access_token,
      cookie.slice(cookie.indexOf('=') + 1),
      // A token's signature alone would be enough to recognise it.
      user.refresh_token.split('.')[2],
    ];
    for (const line of logger.lines)
      for (const secret of secrets) expect(line).not.toContain(secret);
  });
});
