import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { TABLE_END, TABLE_START, withErrorTable } from '../../src/cli/error-table.js';
import { renderErrorTable } from '../../src/common/error-catalog.js';
import { ENVIRONMENT_VARIABLES } from '../../src/config/environment.js';

const ROOT = join(import.meta.dirname, '..', '..');
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');

/** The documents a reader follows links between. */
const DOCUMENTS = [
  'README.md',
  'ARCHITECTURE.md',
  'CHANGELOG.md',
  'client/README.md',
  ...readdirSync(join(ROOT, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .map((name) => `docs/${name}`),
].filter((path) => existsSync(join(ROOT, path)));

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens. */
function slug(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/`/g, '')
    .replace(/[^\p{L}\p{N} _-]/gu, '')
    .replace(/ /g, '-');
}

function anchorsOf(markdown: string): Set<string> {
  const withoutCode = markdown.replace(/^```[\s\S]*?^```/gm, '');
  return new Set([...withoutCode.matchAll(/^#{1,6} (.+)$/gm)].map((match) => slug(match[1] ?? '')));
}

/** Markdown links `[text](target)` outside code blocks, external ones left out. */
function localLinks(markdown: string): string[] {
  const withoutCode = markdown.replace(/^```[\s\S]*?^```/gm, '').replace(/`[^`\n]*`/g, '');
  return [...withoutCode.matchAll(/\]\(([^)\s]+)\)/g)]
    .map((match) => match[1] ?? '')
    .filter((target) => !/^[a-z]+:/i.test(target));
}

describe('README.md', () => {
  it('carries the error table as src/common/error-catalog.ts renders it', () => {
    const readme = read('README.md');
    expect(readme).toContain(TABLE_START);
    expect(readme).toContain(TABLE_END);
    // On failure: `npm run docs:errors` rewrites the table.
    expect(withErrorTable(readme, renderErrorTable())).toBe(readme);
  });

  it('lists every variable the configuration reads in its Configuration table', () => {
    const readme = read('README.md');
    const section = readme.slice(readme.indexOf('\n## Configuration\n'));
    const table = section.slice(0, section.indexOf('\n## ', 1));
    const rows = new Set([...table.matchAll(/^\| `([A-Z0-9_]+)`/gm)].map((match) => match[1]));
    // Rows that name two variables at once (`JWT_ISSUER`, `JWT_AUDIENCE`).
    for (const match of table.matchAll(/^\| `([A-Z0-9_]+)`, `([A-Z0-9_]+)`/gm)) rows.add(match[2]);
    expect(ENVIRONMENT_VARIABLES.filter((name) => !rows.has(name))).toEqual([]);
  });

  it.each(DOCUMENTS)('%s links only to files and headings that exist', (path) => {
    const broken: string[] = [];
    for (const target of localLinks(read(path))) {
      const [file, anchor] = target.split('#') as [string, string | undefined];
      const resolved = file === '' ? path : relative(ROOT, join(ROOT, dirname(path), file));
      if (!existsSync(join(ROOT, resolved))) {
        broken.push(`${target}: no file ${resolved}`);
        continue;
      }
      if (anchor !== undefined && resolved.endsWith('.md')) {
        if (!anchorsOf(read(resolved)).has(anchor)) broken.push(`${target}: no heading #${anchor}`);
      }
    }
    expect(broken).toEqual([]);
  });
});
