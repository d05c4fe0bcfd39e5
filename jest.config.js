// Jest runs in native ESM mode (Nest 12 packages are ESM); `npm test` passes
// --experimental-vm-modules. Unit tests need nothing; e2e tests get a real
// PostgreSQL from the global setup (embedded, or TEST_DATABASE_URL).
const transform = {
  '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: '<rootDir>/tsconfig.json' }],
  // @fastify/static (CommonJS, used by Swagger UI) requires the ESM-only
  // content-disposition. Node >= 20.19 does that natively; Jest's own module
  // loader only does on Node >= 24.9, so Jest compiles that one package to CJS.
  '/node_modules/content-disposition/.+\\.js$': [
    'ts-jest',
    { useESM: false, tsconfig: { allowJs: true, module: 'commonjs', isolatedModules: true } },
  ],
};
const shared = {
  rootDir: import.meta.dirname,
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform,
  transformIgnorePatterns: ['/node_modules/(?!content-disposition/)'],
};

export default {
  // Global only: Jest ignores testTimeout inside a project. Generous, because
  // e2e tests wait out real token lifetimes on shared, noisy machines.
  testTimeout: 30000,
  projects: [
    { ...shared, displayName: 'unit', testMatch: ['<rootDir>/src/**/*.spec.ts'] },
    {
      ...shared,
      displayName: 'e2e',
      testMatch: ['<rootDir>/test/**/*.e2e-spec.ts'],
      globalSetup: '<rootDir>/test/support/global-setup.ts',
      globalTeardown: '<rootDir>/test/support/global-teardown.ts',
    },
  ],
};
