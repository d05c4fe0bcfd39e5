import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

export interface GeneratedSecrets {
  accessSecret: string;
  refreshSecret: string;
}

function isGeneratedSecrets(value: unknown): value is GeneratedSecrets {
  const v = value as Partial<GeneratedSecrets> | null;
  return typeof v?.accessSecret === 'string' && typeof v.refreshSecret === 'string';
}

/**
 * Development convenience: signing keys generated once and kept beside the
 * embedded database, so tokens survive restarts without anyone choosing a
 * secret. Production never reaches this (the config refuses to start).
 */
export async function loadOrCreateSecrets(file: string): Promise<GeneratedSecrets> {
  try {
    const parsed: unknown = JSON.parse(await readFile(file, 'utf8'));
    if (isGeneratedSecrets(parsed)) return parsed;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const secrets: GeneratedSecrets = {
    accessSecret: randomBytes(48).toString('base64url'),
    refreshSecret: randomBytes(48).toString('base64url'),
  };
  await mkdir(dirname(file), { recursive: true });
  await writeFile(file, JSON.stringify(secrets, null, 2) + '\n', { mode: 0o600 });
  return secrets;
}
