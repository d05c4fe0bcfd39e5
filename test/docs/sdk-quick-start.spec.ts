import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';

/**
 * The README's SDK quick start, type-checked against the SDK's sources as a
 * browser app would compile it: a renamed method, option or event fails here
 * instead of in a newcomer's editor.
 */

const ROOT = join(import.meta.dirname, '..', '..');
const SDK = join(ROOT, 'client', 'src', 'lineage-client.ts');

function snippet(): string {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const marker = '<!-- quick-start:sdk -->';
  const at = readme.indexOf(marker);
  if (at < 0) throw new Error(`README.md has no ${marker}`);
  const block = /```ts\n([\s\S]*?)```/.exec(readme.slice(at + marker.length));
  if (!block?.[1]) throw new Error(`no ts block after ${marker}`);
  return block[1];
}

describe("the README's SDK quick start", () => {
  it('compiles against the SDK', () => {
    // Never written to disk: the compiler host serves it.
    const file = join(ROOT, 'client', 'src', 'readme-quick-start.ts');
    const source = [
      // What the snippet leaves to the app.
      'declare function showLogin(message?: string): void;',
      'declare function showError(message: string): void;',
      snippet(),
      'export {};',
    ].join('\n');
    const options: ts.CompilerOptions = {
      module: ts.ModuleKind.ESNext,
      moduleResolution: ts.ModuleResolutionKind.Bundler,
      target: ts.ScriptTarget.ES2022,
      lib: ['lib.es2022.d.ts', 'lib.dom.d.ts'],
      types: [],
      strict: true,
      noEmit: true,
      skipLibCheck: true,
      paths: { '@lineage/client': [SDK] },
    };
    const base = ts.createCompilerHost(options);
    const host: ts.CompilerHost = {
      ...base,
      getSourceFile: (name, language, ...rest) =>
        name === file
          ? ts.createSourceFile(name, source, language)
          : base.getSourceFile(name, language, ...rest),
      fileExists: (name) => name === file || base.fileExists(name),
      readFile: (name) => (name === file ? source : base.readFile(name)),
    };

    const program = ts.createProgram([file], options, host);
    const problems = ts
      .getPreEmitDiagnostics(program)
      .map((diagnostic) => ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n'));
    expect(problems).toEqual([]);
  });
});
