/**
 * Issue 13, the Grants page through the real UI and core (`airlock serve`) with two lab hosts:
 * an application created, its credential shown once with copy and gone once stored (not in the
 * page, the list or the database file); a grant on the latest approved version pushed to both
 * hosts (per-host propagation shown, the policy on the hosts); a grant expiring in three days
 * warned about; grants by principal and by model; a revocation with a reason pushes a policy
 * without it. The catalog is seeded through its own module on the console's database file (its
 * channels are another area's).
 */
import fs from 'node:fs';
import path from 'node:path';
import { openDatabase } from '../../electron/core/db/db';
import { Catalog } from '../../electron/core/models/catalog';
import { runOnHost } from '../lab/lab';
import { authorizeAirlock, enrolHost, expect, firstRunSetup, test } from './fixtures';

async function seedCatalog(dataDir: string) {
  const db = openDatabase(path.join(dataDir, 'airlock.db'));
  try {
    const cat = new Catalog({ db, now: () => new Date() });
    cat.addModel({ name: 'triage', owner: 'ml' }, 'admin');
    const src = fs.mkdtempSync(path.join(dataDir, 'media-'));
    fs.writeFileSync(path.join(src, 'weights.bin'), 'triage weights');
    await cat.importDirectory({ model: 'triage', version: '1.2.0', dir: src, classification: 'internal', license: 'apache-2.0', source: 'usb' }, 'admin');
    cat.setStatus('triage', '1.2.0', 'approved', 'admin');
  } finally {
    db.close();
  }
}

test('grants: a credential shown once, a grant pushed to every host, expiry warned, revoked', async ({ app, lab }) => {
  test.setTimeout(180_000);
  const { page } = app;
  await firstRunSetup(page);
  await authorizeAirlock(page, lab);
  for (const h of lab.hosts) await enrolHost(page, h);
  await seedCatalog(app.dataDir);

  await page.getByTestId('nav-grants').click();
  await expect(page.getByTestId('grants-view')).toBeVisible();
  await expect(page.getByTestId('grants-policy-summary')).toHaveText('no policy issued yet');

  // The application and its credential, once.
  await page.getByTestId('grants-app-name').fill('triage-bot');
  await page.getByTestId('grants-app-create').click();
  const shown = page.getByTestId('grants-credential-app:triage-bot');
  await expect(shown).toHaveText(/^alk_[A-Za-z0-9_-]{43}$/);
  const credential = (await shown.textContent())!;
  await expect(page.getByTestId('grants-credential-copy-app:triage-bot')).toBeVisible();
  await page.getByTestId('grants-credential-done').click();
  await expect(page.getByTestId('grants-credential')).toHaveCount(0);
  await expect(page.getByTestId('grants-principal-app:triage-bot')).toContainText('#1');
  expect(await page.content()).not.toContain(credential);

  // A grant on the latest approved version: pushed to both hosts in the same call.
  await page.getByTestId('grants-add-model').fill('triage');
  await page.getByTestId('grants-add-pull').check();
  await page.getByTestId('grants-add-submit').click();
  await expect(page.getByTestId('grants-policy-summary')).toHaveText('policy v2 on 2/2 hosts');
  for (const h of lab.hosts) await expect(page.getByTestId(`grants-host-${h.name}`)).toHaveAttribute('data-state', 'ok');
  const row = page.locator('[data-testid^="grants-row-gr-"]').first();
  await expect(row).toHaveAttribute('data-status', 'active');
  await expect(row).toContainText('latest approved (1.2.0)');
  const onHost = await runOnHost(lab, lab.hosts[0]!.name, ['cat', '/etc/airlock/gate/policy.json']);
  expect(onHost.stdout).toContain('"version":"1.2.0"');
  expect(onHost.stdout).not.toContain(credential);

  // A second grant, expiring in three days: warned about.
  const soon = new Date(Date.now() + 3 * 86_400_000 + 3_600_000);
  const local = new Date(soon.getTime() - soon.getTimezoneOffset() * 60_000).toISOString().slice(0, 16);
  await page.getByTestId('grants-add-model').fill('triage');
  await page.getByTestId('grants-add-version').fill('1.2.0');
  await page.getByTestId('grants-add-expires').fill(local);
  await page.getByTestId('grants-add-submit').click();
  await expect(page.getByTestId('grants-policy-summary')).toHaveText('policy v3 on 2/2 hosts');
  await expect(page.locator('[data-testid^="grants-expiry-gr-"]')).toHaveText('expires in 3 days');

  // By model: the same two grants under triage.
  await page.getByTestId('grants-by-model').check();
  await expect(page.getByTestId('grants-group-triage').locator('[data-testid^="grants-row-"]')).toHaveCount(2);
  await page.getByTestId('grants-by-principal').check();
  await expect(page.getByTestId('grants-group-app:triage-bot').locator('[data-testid^="grants-row-"]')).toHaveCount(2);

  // Revoke the first one, with a reason: a new version without it, on both hosts.
  const id = (await row.getAttribute('data-testid'))!.replace('grants-row-', '');
  await page.getByTestId(`grants-revoke-${id}`).click();
  await page.getByTestId(`grants-revoke-reason-${id}`).fill('moved to a new bot');
  await page.getByTestId(`grants-revoke-confirm-${id}`).click();
  await expect(page.getByTestId('grants-policy-summary')).toHaveText('policy v4 on 2/2 hosts');
  await expect(page.getByTestId(`grants-row-${id}`)).toHaveCount(0);
  const after = await runOnHost(lab, lab.hosts[1]!.name, ['cat', '/etc/airlock/gate/policy.json']);
  expect(after.stdout).not.toContain(id);

  const bytes = Buffer.concat(fs.readdirSync(app.dataDir).filter((f) => f.startsWith('airlock.db')).map((f) => fs.readFileSync(path.join(app.dataDir, f))));
  expect(bytes.includes(Buffer.from(credential))).toBe(false);
});
