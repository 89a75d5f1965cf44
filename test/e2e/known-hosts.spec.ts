/**
 * Importing a hashed known_hosts (the real `ssh-keyscan -H`) through the UI: the import result
 * lists the kept hashed entry, the revoked key and the unsupported @cert-authority line; the
 * enrol dialog then says the presented key matches the imported one, and refuses a revoked key.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { authorizeAirlock, enrolHost, expect, firstRunSetup, scanHost, test } from './fixtures';

const keyscan = (address: string, port: number, hashed: boolean) =>
  execFileSync('ssh-keyscan', ['-T', '5', ...(hashed ? ['-H'] : []), '-p', String(port), address], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });

function newKey(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'airlock-e2e-kh-'));
  try {
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(dir, 'k')]);
    return readFileSync(path.join(dir, 'k.pub'), 'utf8').trim().split(' ').slice(0, 2).join(' ');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('a hashed known_hosts import is kept, shown, and used when enrolling; a revoked key is refused', async ({ app, lab }) => {
  const { page } = app;
  const [good, revoked] = [lab.hosts[0]!, lab.hosts[1]!];
  await firstRunSetup(page);
  await authorizeAirlock(page, lab);

  const revokedKey = keyscan(revoked.address, revoked.port, false).trim().split(' ').slice(1).join(' ');
  const text = `${keyscan(good.address, good.port, true)}@cert-authority *.lab ${newKey()}\n@revoked * ${revokedKey}\n`;
  expect(text).not.toContain(good.address);

  await page.getByTestId('nav-hosts').click();
  await page.getByTestId('import-known-hosts').click();
  await page.getByTestId('import-file').setInputFiles({ name: 'known_hosts', mimeType: 'text/plain', buffer: Buffer.from(text) });
  await page.getByTestId('import-submit').click();
  const result = page.getByTestId('import-result');
  await expect(result).toContainText('Added 0 · skipped 1 · hashed entries kept 1 · revoked 1');
  await expect(page.getByTestId('import-kept')).toContainText(good.fingerprint);
  await expect(page.getByTestId('import-revoked')).toContainText(revoked.fingerprint);
  await expect(result).toContainText('@cert-authority line: not supported');
  await page.getByTestId('import-close').click();

  // The presented key is the imported one: said so in the dialog, then pinned and used.
  await page.getByTestId('enrol-open').click();
  await page.getByTestId('enrol-name').fill('kh-probe');
  await page.getByTestId('enrol-address').fill(good.address);
  await page.getByTestId('enrol-port').fill(String(good.port));
  await page.getByTestId('enrol-probe').click();
  await expect(page.getByTestId('enrol-known-hosts-match')).toBeVisible({ timeout: 20_000 });
  await page.getByTestId('enrol-cancel').click();
  await enrolHost(page, good);
  await scanHost(page, good.name, 'reachable');

  // A revoked key: shown as such, and the dialog will not pin it.
  await page.getByTestId('enrol-open').click();
  await page.getByTestId('enrol-name').fill(revoked.name);
  await page.getByTestId('enrol-address').fill(revoked.address);
  await page.getByTestId('enrol-port').fill(String(revoked.port));
  await page.getByTestId('enrol-probe').click();
  await expect(page.getByTestId('enrol-known-hosts-revoked')).toBeVisible({ timeout: 20_000 });
  await expect(page.getByTestId('enrol-fingerprint')).toHaveText(revoked.fingerprint);
  await expect(page.getByTestId('enrol-confirm')).toBeDisabled();
  await page.getByTestId('enrol-cancel').click();
  await expect(page.getByTestId(`host-row-${revoked.name}`)).toHaveCount(0);
});
