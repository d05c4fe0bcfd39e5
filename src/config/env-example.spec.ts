import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { ENVIRONMENT_VARIABLES, RETIRED_VARIABLES } from './environment.js';

const ROOT = join(import.meta.dirname, '..', '..');
const SRC = join(ROOT, 'src');

/** The names .env.example sets or shows commented out: `NAME=...` or `# NAME=...` lines. */
function exampleVariables(): string[] {
  const text = readFileSync(join(ROOT, '.env.example'), 'utf8');
  return [...text.matchAll(/^#? ?([A-Z][A-Z0-9_]*)=/gm)].map((match) => match[1]);
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.spec.ts') ? [path] : [];
  });
}

/**
 * Variables read straight from the environment (`env.NAME`, `process.env.NAME`,
 * `env['NAME']`) anywhere in src/, by file: main.ts and the CLI read a few
 * before the validated config exists.
 */
function directReads(): Map<string, string> {
  const reads = new Map<string, string>();
  for (const file of sourceFiles(SRC)) {
    const text = readFileSync(file, 'utf8');
    for (const match of text.matchAll(
      /\benv(?:\.([A-Z][A-Z0-9_]*)\b|\[\s*'([A-Z][A-Z0-9_]*)'\s*\])/g,
    )) {
      reads.set(match[1] ?? match[2], relative(ROOT, file));
    }
  }
  return reads;
}

describe('.env.example', () => {
  it('lists every variable the config reads, and only those', () => {
    const listed = exampleVariables();
    const missing = ENVIRONMENT_VARIABLES.filter((name) => !listed.includes(name));
    const unknown = listed.filter((name) => !ENVIRONMENT_VARIABLES.includes(name));
    expect({ missing, unknown }).toEqual({ missing: [], unknown: [] });
  });

  it('lists each variable once', () => {
    const listed = exampleVariables();
    expect(listed.filter((name, i) => listed.indexOf(name) !== i)).toEqual([]);
  });

  it('never names a retired variable', () => {
    expect(exampleVariables().filter((name) => RETIRED_VARIABLES.includes(name))).toEqual([]);
  });

  it('the config knows every variable the code reads directly', () => {
    const reads = directReads();
    // Guards against a pattern that matches nothing.
    expect([...reads.keys()]).toEqual(
      expect.arrayContaining(['LINEAGE_DATA_DIR', 'JWT_ACCESS_SECRET', 'NODE_ENV']),
    );
    const unlisted = [...reads]
      .filter(([name]) => !ENVIRONMENT_VARIABLES.includes(name))
      .filter(([name]) => !RETIRED_VARIABLES.includes(name))
      .map(([name, file]) => `${name} (${file})`);
    expect(unlisted).toEqual([]);
  });
});
