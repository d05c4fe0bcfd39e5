/**
 * The secrets of every app the e2e suites start, in process or as a process.
 * They share one database, whose signing keys are encrypted under
 * SIGNING_KEYS_SECRET: an app with another secret could not use them.
 */
export const TEST_SECRETS = {
  SIGNING_KEYS_SECRET: 'test-signing-keys-secret-0123456789abcdef0123',
  JWT_REFRESH_SECRET: 'test-refresh-secret-0123456789abcdef012345678',
} as const;
