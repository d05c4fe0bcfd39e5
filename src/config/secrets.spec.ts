import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generatedSecretsFor, loadOrCreateSecrets } from './secrets.js';

const BASE64URL_SECRET = /^[A-Za-z0-9_-]{48,}$/;

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lineage-secrets-'));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function readJson(file: string): Promise<unknown> {
  return JSON.parse(await readFile(file, 'utf8'));
}

async function modeOf(file: string): Promise<number> {
  return (await stat(file)).mode & 0o777;
}

describe('loadOrCreateSecrets', () => {
  it('generates both secrets into a new file readable by its owner only', async () => {
    const file = join(dir, 'secrets.json');
    const secrets = await loadOrCreateSecrets(file);

    expect(secrets.refreshSecret).toMatch(BASE64URL_SECRET);
    expect(secrets.signingKeysSecret).toMatch(BASE64URL_SECRET);
    expect(secrets.refreshSecret).not.toBe(secrets.signingKeysSecret);
    expect(await readJson(file)).toEqual(secrets);
    expect(await modeOf(file)).toBe(0o600);
  });

  it('creates the missing parent directories', async () => {
    const file = join(dir, 'nested', 'deeper', 'secrets.json');
    const secrets = await loadOrCreateSecrets(file);
    expect(await readJson(file)).toEqual(secrets);
  });

  it('returns the same secrets on the next call', async () => {
    const file = join(dir, 'secrets.json');
    const first = await loadOrCreateSecrets(file);
    const second = await loadOrCreateSecrets(file);
    expect(second).toEqual(first);
  });

  it('generates different secrets for different files', async () => {
    const one = await loadOrCreateSecrets(join(dir, 'one.json'));
    const two = await loadOrCreateSecrets(join(dir, 'two.json'));
    expect(two.refreshSecret).not.toBe(one.refreshSecret);
    expect(two.signingKeysSecret).not.toBe(one.signingKeysSecret);
  });

  it('leaves a complete file exactly as it is', async () => {
    const file = join(dir, 'secrets.json');
    const text = '{"signingKeysSecret":"kept-signing-secret","refreshSecret":"kept-refresh"}';
    await writeFile(file, text);
    await expect(loadOrCreateSecrets(file)).resolves.toEqual({
      refreshSecret: 'kept-refresh',
      signingKeysSecret: 'kept-signing-secret',
    });
    expect(await readFile(file, 'utf8')).toBe(text);
  });

  it('keeps the refreshSecret of an earlier version’s file and adds signingKeysSecret to it', async () => {
    const file = join(dir, 'secrets.json');
    const legacy = { accessSecret: 'old-access-secret', refreshSecret: 'old-refresh-secret' };
    await writeFile(file, JSON.stringify(legacy, null, 2) + '\n', { mode: 0o600 });

    const secrets = await loadOrCreateSecrets(file);
    expect(secrets.refreshSecret).toBe('old-refresh-secret');
    expect(secrets.signingKeysSecret).toMatch(BASE64URL_SECRET);
    expect(secrets.signingKeysSecret).not.toBe('old-access-secret');

    // Written back: the next start reads the same signingKeysSecret.
    expect(await readJson(file)).toMatchObject(secrets);
    await expect(loadOrCreateSecrets(file)).resolves.toEqual(secrets);
    expect(await modeOf(file)).toBe(0o600);
  });

  it('keeps a stored signingKeysSecret and generates only the missing refreshSecret', async () => {
    const file = join(dir, 'secrets.json');
    await writeFile(file, JSON.stringify({ signingKeysSecret: 'stored-signing-secret' }));
    const secrets = await loadOrCreateSecrets(file);
    expect(secrets.signingKeysSecret).toBe('stored-signing-secret');
    expect(secrets.refreshSecret).toMatch(BASE64URL_SECRET);
    expect(await readJson(file)).toMatchObject(secrets);
  });

  it.each([
    ['empty', ''],
    ['a number', 42],
    ['null', null],
  ])('replaces a stored secret that is %s', async (_label, bad) => {
    const file = join(dir, 'secrets.json');
    await writeFile(file, JSON.stringify({ refreshSecret: bad, signingKeysSecret: 'kept' }));
    const secrets = await loadOrCreateSecrets(file);
    expect(secrets.refreshSecret).toMatch(BASE64URL_SECRET);
    expect(secrets.signingKeysSecret).toBe('kept');
    expect(await readJson(file)).toMatchObject(secrets);
  });

  it.each([
    ['not valid JSON', '{"refreshSecret": "precious", "signingKeysSecret": "also precious"'],
    ['an array', '[]'],
    ['null', 'null'],
    ['a string', '"x"'],
  ])('refuses a file that is %s, naming it, and leaves it untouched', async (_what, content) => {
    const file = join(dir, 'secrets.json');
    await writeFile(file, content);
    const error = (await loadOrCreateSecrets(file).catch((thrown: unknown) => thrown)) as Error;
    expect(error).toBeInstanceOf(Error);
    expect(error.message).toContain(file);
    expect(await readFile(file, 'utf8')).toBe(content);
  });

  it('reports read errors other than a missing file (a directory in its place)', async () => {
    const file = join(dir, 'secrets.json');
    await mkdir(file);
    const error = (await loadOrCreateSecrets(file).catch((thrown: unknown) => thrown)) as Error;
    expect(error.message).toContain(file);
    expect(error.cause).toMatchObject({ code: 'EISDIR' });
  });

  it('tightens a looser file to 0600 when it adds a secret, keeping what else it held', async () => {
    const file = join(dir, 'secrets.json');
    await writeFile(file, JSON.stringify({ accessSecret: 'old', refreshSecret: 'kept' }), {
      mode: 0o644,
    });
    await chmod(file, 0o644);
    const secrets = await loadOrCreateSecrets(file);
    expect(secrets.refreshSecret).toBe('kept');
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(JSON.parse(await readFile(file, 'utf8'))).toMatchObject({ accessSecret: 'old' });
  });
});

describe('generatedSecretsFor', () => {
  const both = { JWT_REFRESH_SECRET: 'r'.repeat(40), SIGNING_KEYS_SECRET: 's'.repeat(40) };

  async function exists(file: string): Promise<boolean> {
    return stat(file).then(
      () => true,
      () => false,
    );
  }

  it('returns nothing in production, and writes no file', async () => {
    await expect(generatedSecretsFor({ NODE_ENV: 'production' }, dir)).resolves.toBeUndefined();
    await expect(
      generatedSecretsFor({ NODE_ENV: 'production', JWT_REFRESH_SECRET: 'r'.repeat(40) }, dir),
    ).resolves.toBeUndefined();
    expect(await exists(join(dir, 'secrets.json'))).toBe(false);
  });

  it('returns nothing when the environment gives both secrets, and writes no file', async () => {
    await expect(generatedSecretsFor(both, dir)).resolves.toBeUndefined();
    await expect(
      generatedSecretsFor({ ...both, NODE_ENV: 'development' }, dir),
    ).resolves.toBeUndefined();
    expect(await exists(join(dir, 'secrets.json'))).toBe(false);
  });

  it.each([
    ['neither secret is set', {}],
    ['only JWT_REFRESH_SECRET is set', { JWT_REFRESH_SECRET: 'r'.repeat(40) }],
    ['only SIGNING_KEYS_SECRET is set', { SIGNING_KEYS_SECRET: 's'.repeat(40) }],
    ['a secret is set but empty', { JWT_REFRESH_SECRET: '', SIGNING_KEYS_SECRET: 's'.repeat(40) }],
    ['NODE_ENV is test', { NODE_ENV: 'test' }],
  ])('loads <dataDir>/secrets.json when %s', async (_label, env) => {
    const secrets = await generatedSecretsFor(env, dir);
    expect(secrets).toBeDefined();
    expect(secrets!.refreshSecret).toMatch(BASE64URL_SECRET);
    expect(secrets!.signingKeysSecret).toMatch(BASE64URL_SECRET);
    expect(await readJson(join(dir, 'secrets.json'))).toEqual(secrets);
  });

  it('returns what <dataDir>/secrets.json already holds', async () => {
    const stored = { refreshSecret: 'stored-refresh', signingKeysSecret: 'stored-signing' };
    await writeFile(join(dir, 'secrets.json'), JSON.stringify(stored));
    await expect(generatedSecretsFor({}, dir)).resolves.toEqual(stored);
    await expect(generatedSecretsFor({ JWT_REFRESH_SECRET: 'x' }, dir)).resolves.toEqual(stored);
  });
});
