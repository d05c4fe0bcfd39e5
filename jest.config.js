// Jest runs in native ESM mode (Nest 12 packages are ESM); `npm test` passes
// --experimental-vm-modules. Three tiers: unit tests need nothing; integration
// tests run providers against a real PostgreSQL without HTTP; e2e tests drive
// the whole app. The last two get the database from the global setup
// (embedded, or TEST_DATABASE_URL).
const transform = {
  '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: '<rootDir>/tsconfig.json' }],
  // @fastify/static (CommonJS, used by Swagger UI) require()s the ESM-only
  // content-disposition. Node >= 20.19 does that natively, but inside Jest the
  // module goes through Jest's own loader, which differs by Node release: below
  // 24.9 it can only run it as CommonJS, so it must be compiled to CJS; from
  // 24.9 on (vm.SourceTextModule#hasAsyncGraph) it evaluates it as ES module
  // code, where compiled CJS throws "exports is not defined". With useESM, ts-jest
  // emits whichever the loader asks for (Jest's supportsStaticESM, which is in
  // the cache key too), so one transform serves Node 20, 22 and 24.
  '/node_modules/content-disposition/.+\\.js$': [
    'ts-jest',
    { useESM: true, tsconfig: { allowJs: true, isolatedModules: true } },
  ],
};
const shared = {
  rootDir: import.meta.dirname,
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform,
  transformIgnorePatterns: ['/node_modules/(?!content-disposition/)'],
  // CommonJS packages that require() Nest get the instance the test imported.
  resolver: '<rootDir>/test/support/nest-cjs/resolver.cjs',
  setupFiles: ['<rootDir>/test/support/nest-cjs/setup.ts'],
};

export default {
  // Global only: Jest ignores testTimeout inside a project. Generous, because
  // e2e tests wait out real token lifetimes on shared, noisy machines.
  testTimeout: 30000,
  // With --coverage (as .ci/run's first `npm test`): V8's own coverage of the
  // application code the tests load in process, no instrumenting transform.
  // The processes the e2e suites spawn (dist/) are not counted.
  coverageProvider: 'v8',
  collectCoverageFrom: ['<rootDir>/src/**/*.ts', '!<rootDir>/src/**/*.spec.ts'],
  coverageDirectory: '<rootDir>/coverage',
  coverageReporters: ['text-summary'],
  projects: [
    {
      ...shared,
      displayName: 'unit',
      // The SDK's pure logic (client/src is built on its own, without test
      // files), the documents' checks, and the deployment files, read as an
      // orchestrator would.
      testMatch: [
        '<rootDir>/src/**/*.spec.ts',
        '<rootDir>/test/client/**/*.spec.ts',
        '<rootDir>/test/docs/**/*.spec.ts',
        '<rootDir>/test/deploy/**/*.spec.ts',
      ],
    },
    {
      ...shared,
      displayName: 'integration',
      testMatch: ['<rootDir>/test/integration/**/*.int-spec.ts'],
      globalSetup: '<rootDir>/test/support/global-setup.ts',
      globalTeardown: '<rootDir>/test/support/global-teardown.ts',
    },
    {
      ...shared,
      displayName: 'e2e',
      testMatch: ['<rootDir>/test/**/*.e2e-spec.ts'],
      globalSetup: '<rootDir>/test/support/global-setup.ts',
      globalTeardown: '<rootDir>/test/support/global-teardown.ts',
    },
  ],
};
