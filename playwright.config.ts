import { defineConfig } from '@playwright/test';
import type { ShellOptions } from './test/e2e/fixtures';

/**
 * End-to-end tests drive the real UI against the real core (`airlock serve`) and
 * real sshd hosts of the lab (test/lab). Debian's Chromium is used: Playwright's
 * own browser downloads are impossible on an air-gapped machine.
 *
 * The `electron` project runs the same specs through `_electron.launch` where an
 * Electron binary is installed, and is skipped with a printed reason where not
 * (see test/e2e/fixtures.ts).
 */
// The lab/test switch read only by the shells: specs that exercise TOTP set up their own
// policy through a fresh serve with AIRLOCK_TOTP_POLICY=required (see test/e2e/fixtures.ts).
process.env.AIRLOCK_TOTP_POLICY ??= 'off';

export default defineConfig<ShellOptions>({
  testDir: 'test/e2e',
  workers: 1,
  fullyParallel: false,
  timeout: 60_000,
  expect: { timeout: 15_000 },
  retries: 0,
  reporter: 'list',
  outputDir: 'test-results',
  projects: [
    {
      name: 'chromium',
      use: {
        shell: 'browser',
        headless: true,
        launchOptions: {
          executablePath: '/usr/bin/chromium',
          // As root Chromium refuses to start with its sandbox; the page is our own app on loopback.
          args: [
            '--no-sandbox',
            '--disable-gpu',
            '--disable-background-networking',
            '--disable-component-update',
            '--disable-sync',
            '--no-first-run',
            '--disable-quic',
          ],
        },
      },
    },
    {
      name: 'electron',
      use: { shell: 'electron' },
    },
  ],
});
