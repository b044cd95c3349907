// One vitest run over every *.test.ts, against real Postgres, NATS and Redis started once by test/globalSetup.ts.
import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  // graphql 16 ships CJS and ESM builds; Node loads the CJS one (no "exports" map), and so must vitest,
  // or Apollo's CJS packages and our code hold two copies ("from another module or realm").
  resolve: { alias: [{ find: /^graphql$/, replacement: 'graphql/index.js' }] },
  test: {
    include: ['**/*.test.ts'],
    exclude: ['**/node_modules/**', '.data/**', 'dashboard/dist/**'],
    globalSetup: ['test/globalSetup.ts'],
    testTimeout: 30_000,
    hookTimeout: 120_000,
    // Forks, not threads: tests spawn and signal child processes, which is process-wide state.
    pool: 'forks',
    fileParallelism: true,
    // Test files mostly wait on the shared services, so run two at a time even on a 2-core machine;
    // they stay independent because each creates its own database and stream names.
    maxWorkers: Math.max(2, availableParallelism() - 1),
  },
});
