// @ts-check
import eslint from '@eslint/js';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';
import { defineConfig, globalIgnores } from 'eslint/config';
import prettier from 'eslint-config-prettier';
import importX from 'eslint-plugin-import-x';
import globals from 'globals';
import tseslint from 'typescript-eslint';

/**
 * The floors of src/ (see ARCHITECTURE.md): each folder may import only the
 * folders listed for it, and of a feature folder only what its module hands
 * out (`public`). Folders not listed here (cli/) and the files at the top of
 * src/ (main.ts, app.module.ts, ...) assemble the application and may import
 * anything. Keeping every folder to folders listed before it leaves no room
 * for a cycle between folders.
 */
const FLOORS = [
  { folder: 'common', imports: [] },
  { folder: 'config', imports: ['common'] },
  { folder: 'database', imports: ['common', 'config'] },
  { folder: 'observability', imports: ['common', 'config'] },
  { folder: 'rate-limit', imports: ['common', 'config', 'observability'] },
  {
    folder: 'users',
    imports: ['common', 'config', 'database', 'observability'],
    public: ['users.module.ts', 'users.service.ts', 'password.service.ts', 'user.entity.ts'],
  },
  {
    folder: 'audit',
    imports: ['common', 'config', 'database', 'users'],
    public: ['audit.module.ts', 'audit.service.ts', 'auth-event.entity.ts'],
  },
  { folder: 'todos', imports: ['common', 'config', 'database', 'users'] },
  {
    folder: 'auth',
    imports: ['common', 'config', 'database', 'observability', 'rate-limit', 'users', 'audit'],
  },
  // Readiness reports on the signing keys and the session feed, which auth/ owns.
  { folder: 'health', imports: ['common', 'config', 'database', 'auth'] },
];

const layerZones = FLOORS.flatMap(({ folder, imports }) =>
  FLOORS.filter((other) => other.folder !== folder).map((other) => {
    const zone = { target: `./src/${folder}`, from: `./src/${other.folder}` };
    if (!imports.includes(other.folder)) {
      return { ...zone, message: `${folder}/ sits below ${other.folder}/ (ARCHITECTURE.md)` };
    }
    if (!other.public) return null;
    return {
      ...zone,
      except: other.public.map((file) => `./${file}`),
      message: `only ${other.public.join(', ')} of ${other.folder}/ are for other folders`,
    };
  }),
).filter((zone) => zone !== null);

export default defineConfig(
  globalIgnores(['dist/', 'client/dist/', 'node_modules/', 'coverage/', '.data/']),
  eslint.configs.recommended,
  tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      globals: globals.node,
      // Type information comes from tsconfig.json, which includes src/, test/ and migrations/.
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // An un-awaited promise in a service or spec is a lost error or a race; always an error.
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
    },
  },
  {
    // Layers point down, and no two files import each other, however indirectly.
    files: ['src/**/*.ts'],
    plugins: { 'import-x': importX },
    settings: {
      // TypeScript files are parsed for their imports (no-cycle follows them).
      'import-x/extensions': ['.ts', '.js', '.mjs'],
      'import-x/parsers': { '@typescript-eslint/parser': ['.ts'] },
      'import-x/resolver-next': [createTypeScriptImportResolver({ project: './tsconfig.json' })],
    },
    rules: {
      'import-x/no-restricted-paths': ['error', { zones: layerZones }],
      'import-x/no-cycle': 'error',
    },
  },
  {
    // Plain JS config files are in no tsconfig, so they get the syntactic rules only.
    files: ['**/*.js', '**/*.mjs', '**/*.cjs'],
    extends: [tseslint.configs.disableTypeChecked],
  },
  // Last: turns off every stylistic rule that Prettier owns.
  prettier,
);
