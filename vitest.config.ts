import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          sequence: { groupOrder: 0 },
          include: ['electron/**/*.test.ts', 'shared/**/*.test.ts', 'renderer/**/*.test.{ts,tsx}', 'test/lint/**/*.test.ts'],
          exclude: ['**/*.integration.test.ts', 'node_modules/**', 'dist/**'],
          environment: 'node',
          testTimeout: 30_000,
        },
      },
      {
        test: {
          name: 'integration',
          sequence: { groupOrder: 1 },
          // The lab/test setting (docs/security.md): CLIs the tests spawn let admins in without TOTP.
          // Identity tests set the policy explicitly.
          env: { AIRLOCK_TOTP_POLICY: 'off' },
          include: ['test/integration/**/*.test.ts', 'test/lab/**/*.test.ts', 'electron/**/*.integration.test.ts'],
          exclude: ['node_modules/**', 'dist/**'],
          environment: 'node',
          testTimeout: 120_000,
          hookTimeout: 180_000,
          // Lab hosts are namespaces and sshd processes: keep the 2-core machines from thrashing.
          maxWorkers: 2,
        },
      },
    ],
  },
});
