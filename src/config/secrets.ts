import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';

export interface GeneratedSecrets {
  refreshSecret: string;
  signingKeysSecret: string;
}

const NAMES: (keyof GeneratedSecrets)[] = ['refreshSecret', 'signingKeysSecret'];

/**
 * Development convenience: secrets generated once and kept beside the
 * embedded database, so tokens and stored signing keys survive restarts
 * without anyone choosing a secret. A file from an earlier version keeps what
 * it holds and gains the missing secrets. A file that is not a JSON object is
 * refused rather than replaced: new secrets would strand the signing keys
 * encrypted under the old one. Production never reaches this (the config
 * refuses to start without the secrets).
 */
export async function loadOrCreateSecrets(file: string): Promise<GeneratedSecrets> {
  let stored: Record<string, unknown> = {};
  try {
    const parsed: unknown = JSON.parse(await readFile(file, 'utf8'));
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new Error('not a JSON object');
    }
    stored = parsed as Record<string, unknown>;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new Error(
        `${file} is unreadable (${error instanceof Error ? error.message : String(error)}); ` +
          'fix or remove it (removing it ends every session and strands the stored signing keys)',
        { cause: error },
      );
    }
  }
  const secrets = {} as GeneratedSecrets;
  let changed = false;
  for (const name of NAMES) {
    const value = stored[name];
    if (typeof value === 'string' && value.length > 0) {
      secrets[name] = value;
    } else {
      secrets[name] = randomBytes(48).toString('base64url');
      changed = true;
    }
  }
  if (changed) {
    await mkdir(dirname(file), { recursive: true });
    // Written aside and renamed: a crash mid-write never leaves a torn file.
    const temporary = `${file}.${process.pid}.tmp`;
    await writeFile(temporary, JSON.stringify({ ...stored, ...secrets }, null, 2) + '\n', {
      mode: 0o600,
    });
    await chmod(temporary, 0o600);
    await rename(temporary, file);
  }
  return secrets;
}

/**
 * The generated secrets this process needs: none in production (every secret
 * must come from the environment) or when the environment gives them all.
 */
export async function generatedSecretsFor(
  env: Record<string, string | undefined>,
  dataDir: string,
): Promise<GeneratedSecrets | undefined> {
  if (env.NODE_ENV === 'production') return undefined;
  if (env.JWT_REFRESH_SECRET && env.SIGNING_KEYS_SECRET) return undefined;
  return loadOrCreateSecrets(join(dataDir, 'secrets.json'));
}
