/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }] },
  // Tests spawn child processes that allocate hundreds of MB; two at a time fits 2 cores.
  maxWorkers: 2,
  testTimeout: 120000,
  // Builds the prebuilds and fetches test tools before the tests when packaging tests run.
  globalSetup: '<rootDir>/test/packaging/setup.ts',
};
