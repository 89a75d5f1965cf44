import { defineConfig } from '@playwright/test';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { electronBinaryPath } from './electron/main/availability';
import type { ShellOptions } from './test/e2e/fixtures';

/**
 * End-to-end tests drive the real UI against the real core (`airlock serve`) and
 * real sshd hosts of the lab (test/lab). Debian's Chromium is used: Playwright's
 * own browser downloads are impossible on an air-gapped machine.
 *
 * The `electron` project runs the same specs through `_electron.launch` where an
 * Electron binary is installed, and is left out of the run, with the reason printed, where not
 * (see test/e2e/fixtures.ts).
 */
// The lab/test switch read only by the shells: specs that exercise TOTP set up their own
// policy through a fresh serve with AIRLOCK_TOTP_POLICY=required (see test/e2e/fixtures.ts).
process.env.AIRLOCK_TOTP_POLICY ??= 'off';

const electronMain = path.join(path.dirname(fileURLToPath(import.meta.url)), 'dist', 'electron', 'main.mjs');
const electronProject = (() => {
  if (!electronBinaryPath()) {
    return notice(
      'no Electron binary installed (node_modules/electron/dist is missing and ELECTRON_OVERRIDE_DIST_PATH is unset; ' +
        'electron would download it on first require, which an air-gapped machine cannot do)',
    );
  }
  if (!existsSync(electronMain)) return notice(`${electronMain} is not built (run node scripts/build.mjs)`);
  return true;
})();
function notice(reason: string): false {
  console.log(`[electron project] not run: ${reason}`);
  return false;
}

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
    // The same specs through `_electron.launch`, only where an Electron binary exists.
    ...(electronProject ? [{ name: 'electron', use: { shell: 'electron' as const } }] : []),
  ],
});
