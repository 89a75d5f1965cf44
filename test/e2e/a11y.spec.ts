/**
 * Accessibility, checked by axe-core on every view of the console and in its main dialogs, with
 * realistic data: an enrolled and scanned lab host, an imported (unconfirmed) one, an open
 * terminal, a plan and an apply with its attestation, users of each role, a pending approval and
 * the audit trail all that left. Every view of the nav is visited for an administrator and for an
 * auditor (whose nav and pages differ), and the spec fails if a feature of the registry
 * (renderer/features/registry.ts) was not checked: a new view is covered, or this spec says so.
 *
 * axe runs with the WCAG 2.0 and 2.1 A and AA rules; a `serious` or `critical` violation fails the
 * spec, listed with its rule id, help text and the target selectors of each node.
 *
 * With AIRLOCK_SCREENSHOT=1 (`npm run screenshots`) each view is also written to
 * docs/screenshots/<view>.png at 1280×800 (see docs/screenshots.md).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import AxeBuilder from '@axe-core/playwright';
import type { Page } from '@playwright/test';
import { labDown, labUp, type Lab } from '../lab/lab';
import { ADMIN, authorizeAirlock, chooseOwnPassword, createUser, enrolHost, expect, firstRunSetup, ROOT, scanHost, submitLogin, test } from './fixtures';

const LAB_ID = 'e2e-a11y';
// Removable media for the Models page: a model version to import, so the page is checked with data.
const MEDIA = path.join(os.tmpdir(), `airlock-e2e-a11y-media-${process.pid}`);
test.use({ serveEnv: { AIRLOCK_MEDIA_ROOTS: MEDIA } });
const TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'];
const SHOTS = process.env.AIRLOCK_SCREENSHOT === '1';
const SHOT_DIR = path.join(ROOT, 'docs', 'screenshots');

/** The features the registry lists, by id, read from its source (the registry itself imports CSS and React). */
function registryIds(): string[] {
  const dir = path.join(ROOT, 'renderer', 'features');
  const registry = fs.readFileSync(path.join(dir, 'registry.ts'), 'utf8');
  const list = /export const features[^=]*=\s*\[([^\]]*)\]/.exec(registry);
  if (!list) throw new Error('renderer/features/registry.ts: no `export const features = [...]` found');
  const names = list[1]!.split(',').map((s) => s.trim()).filter(Boolean);
  const ids = new Map<string, string>();
  for (const folder of fs.readdirSync(dir, { withFileTypes: true })) {
    if (!folder.isDirectory()) continue;
    for (const f of ['index.ts', 'index.tsx']) {
      const file = path.join(dir, folder.name, f);
      if (!fs.existsSync(file)) continue;
      for (const m of fs.readFileSync(file, 'utf8').matchAll(/export const (\w+): Feature = \{\s*id: '([^']+)'/g)) ids.set(m[1]!, m[2]!);
    }
  }
  return names.map((n) => {
    const id = ids.get(n);
    if (!id) throw new Error(`registry entry ${n}: no \`export const ${n}: Feature = { id: '…'\` in renderer/features/*/index.ts(x)`);
    return id;
  });
}

interface Found {
  where: string;
  id: string;
  impact: string;
  help: string;
  targets: string[];
}

/** Run axe on the page as it is and keep its serious and critical violations. */
async function axe(page: Page, where: string, found: Found[]): Promise<void> {
  // Let the view settle (no spinner half-drawn, no transition mid-way).
  await page.waitForTimeout(150);
  const r = await new AxeBuilder({ page }).withTags(TAGS).analyze();
  for (const v of r.violations) {
    if (v.impact !== 'serious' && v.impact !== 'critical') continue;
    // The target's selector, with what axe measured where it says (contrast ratio and colours).
    const targets = v.nodes.map((n) => {
      const why = n.any.find((c) => c.message)?.message ?? n.all.find((c) => c.message)?.message;
      return why ? `${n.target.join(' ')} (${why})` : n.target.join(' ');
    });
    found.push({ where, id: v.id, impact: v.impact, help: v.help, targets });
  }
}

/** The screenshots written in this run, in order, with what each shows (for docs/screenshots.md). */
const shots: { name: string; caption: string }[] = [];

async function shot(page: Page, name: string, caption?: string): Promise<void> {
  if (!SHOTS) return;
  fs.mkdirSync(SHOT_DIR, { recursive: true });
  await page.mouse.move(0, 0);
  await page.screenshot({ path: path.join(SHOT_DIR, `${name}.png`), animations: 'disabled', caret: 'hide' });
  const title = caption ?? ((await page.locator('.topbar-title').textContent({ timeout: 1000 }).catch(() => null)) || name);
  shots.push({ name, caption: title });
}

/** docs/screenshots.md: every screenshot of the run, so the page follows the views. */
function writeScreenshotsPage(): void {
  const lines = [
    '# Screenshots',
    '',
    'Every view of the console and its main dialogs, with the data of `test/e2e/a11y.spec.ts` (two lab',
    'hosts, one enrolled and scanned and one imported and not yet confirmed, an open terminal, a plan',
    'with diffs, an apply with its attestation, users of each role, a pending approval, the audit trail',
    'all that left). Written by that spec at 1280×800; refresh them with `npm run screenshots` (this page',
    'is rewritten too). Do not edit by hand.',
    '',
  ];
  // Sign-in first, then the views in nav order (the plan under review beside its view), then the dialogs.
  const rank = (n: string) => (n === 'sign-in' ? 0 : n.startsWith('dialog-') ? 2 : 1);
  const plan = shots.filter((s) => s.name === 'provision-plan');
  const ordered = shots.filter((s) => s.name !== 'provision-plan').sort((a, b) => rank(a.name) - rank(b.name));
  const after = ordered.findIndex((s) => s.name.startsWith('provision-'));
  ordered.splice(after < 0 ? ordered.length : after + 1, 0, ...plan);
  for (const s of ordered) lines.push(`## ${s.caption}`, '', `![${s.caption}](screenshots/${s.name}.png)`, '');
  fs.writeFileSync(path.join(ROOT, 'docs', 'screenshots.md'), lines.join('\n'));
}

function report(found: Found[]): string {
  return found.map((f) => `[${f.where}] ${f.id} (${f.impact}): ${f.help}\n    ${f.targets.join('\n    ')}`).join('\n');
}

/** Every nav item of the signed-in user: visit it, run axe on it (and on each of its tabs), and shoot it. */
async function visitEveryView(page: Page, who: string, found: Found[], checked: Set<string>, shots: boolean): Promise<void> {
  const ids = await page.locator('nav.sidebar [data-testid^="nav-"]').evaluateAll((els) => els.map((e) => (e.getAttribute('data-testid') ?? '').slice(4)));
  expect(ids.length, `${who} sees a nav`).toBeGreaterThan(0);
  for (const id of ids) {
    await page.getByTestId(`nav-${id}`).click();
    await expect(page.getByTestId(`nav-${id}`)).toHaveAttribute('aria-current', 'page');
    await page.waitForLoadState('networkidle').catch(() => {});
    await page.waitForTimeout(400);
    await axe(page, `${who}: ${id}`, found);
    // A view with tabs (Provisioning): every tab is a page of its own, and has its own screenshot.
    const tabs = page.locator('main.content [role=tab]:visible');
    const n = await tabs.count();
    if (shots && n === 0) await shot(page, id);
    for (let i = 0; i < n; i++) {
      const tab = tabs.nth(i);
      const tid = (await tab.getAttribute('data-testid')) ?? `tab-${i}`;
      await tab.click();
      await page.waitForTimeout(400);
      await axe(page, `${who}: ${id} / ${tid}`, found);
      // One tab (a single terminal session) is the view itself; several are pages of their own.
      if (shots) await shot(page, n === 1 ? id : `${id}-${tid.replace(/^[a-z]+-tab-/, '')}`, `${await page.locator('.topbar-title').textContent()}: ${(await tab.textContent())?.trim()}`);
    }
    if (n) await tabs.first().click();
    checked.add(id);
  }
}

let lab: Lab;

test.beforeAll(async () => {
  test.setTimeout(180_000);
  lab = await labUp({ id: LAB_ID, hosts: 2, gpuProfiles: ['a100', 'h100'] });
});

test.afterAll(async () => {
  await labDown({ id: LAB_ID });
});

test('axe finds no serious or critical WCAG 2.1 A/AA violation on any view or main dialog', async ({ app }, testInfo) => {
  test.setTimeout(10 * 60_000);
  const { page } = app;
  await page.setViewportSize({ width: 1280, height: 800 });
  const found: Found[] = [];
  const checked = new Set<string>();
  const [h1, h2] = [lab.hosts[0]!, lab.hosts[1]!];
  // A view gone from the console takes its old screenshot with it.
  if (SHOTS) for (const f of fs.existsSync(SHOT_DIR) ? fs.readdirSync(SHOT_DIR) : []) if (f.endsWith('.png')) fs.rmSync(path.join(SHOT_DIR, f));

  // ---------- first run and sign-in screens ----------
  await expect(page.getByTestId('setup-form')).toBeVisible();
  await axe(page, 'first-run setup', found);
  await firstRunSetup(page);
  // A long step-up window while the data is set up (the step-up prompt is opened on purpose below).
  await page.getByTestId('nav-account').click();
  await page.getByTestId('settings-stepup').fill('120');
  await page.getByTestId('settings-submit').click();
  await expect(page.getByTestId('settings-note')).toHaveText('Saved.');
  const signedInAt = Date.now();

  // ---------- hosts: enrol (both steps), import, confirm key ----------
  await authorizeAirlock(page, lab);
  await page.getByTestId('nav-hosts').click();
  await page.getByTestId('enrol-open').click();
  await expect(page.getByTestId('enrol-dialog')).toBeVisible();
  await axe(page, 'dialog: enrol (address)', found);
  await page.getByTestId('enrol-name').fill(h1.name);
  await page.getByTestId('enrol-address').fill(h1.address);
  await page.getByTestId('enrol-port').fill(String(h1.port));
  await page.getByTestId('enrol-user').fill(h1.user);
  await page.getByTestId('enrol-probe').click();
  await expect(page.getByTestId('enrol-fingerprint')).toHaveText(h1.fingerprint, { timeout: 20_000 });
  await axe(page, 'dialog: enrol (fingerprint)', found);
  if (SHOTS) await shot(page, 'dialog-enrol', 'Dialog: enrol a host (the fingerprint to compare)');
  await page.getByTestId('enrol-confirm').click();
  await expect(page.getByTestId('enrol-dialog')).toHaveCount(0);
  await scanHost(page, h1.name, 'reachable');
  await page.getByTestId(`host-expand-${h1.name}`).click();
  await expect(page.getByTestId(`gpu-table-${h1.name}`).locator('tbody tr')).toHaveCount(8);

  await page.getByTestId('import-ssh-config').click();
  await expect(page.getByTestId('import-dialog')).toBeVisible();
  await axe(page, 'dialog: import ssh_config', found);
  const config = `Host ${h2.name}\n  HostName ${h2.address}\n  Port ${h2.port}\n  User ${h2.user}\n`;
  await page.getByTestId('import-file').setInputFiles({ name: 'config', mimeType: 'text/plain', buffer: Buffer.from(config) });
  await page.getByTestId('import-submit').click();
  await expect(page.getByTestId('import-result')).toBeVisible();
  await axe(page, 'dialog: import ssh_config (result)', found);
  await page.getByTestId('import-close').click();
  await page.getByTestId('import-known-hosts').click();
  await expect(page.getByTestId('import-dialog')).toBeVisible();
  await axe(page, 'dialog: import known_hosts', found);
  await page.getByTestId('import-close').click();

  await page.getByTestId(`host-confirm-key-${h2.name}`).click();
  await expect(page.getByTestId('confirm-key-dialog').getByTestId('enrol-fingerprint')).toHaveText(h2.fingerprint, { timeout: 20_000 });
  await axe(page, 'dialog: confirm key', found);
  // Left unconfirmed: the hosts page shows both kinds of row.
  await page.getByTestId('confirm-key-cancel').click();
  await expect(page.getByTestId('confirm-key-dialog')).toHaveCount(0);

  await page.getByTestId(`host-remove-${h1.name}`).click();
  await expect(page.getByTestId('remove-dialog')).toBeVisible();
  await axe(page, 'dialog: remove host', found);
  await page.getByTestId('remove-cancel').click();

  // ---------- a terminal, open on the host, with output ----------
  await page.getByTestId('nav-terminal').click();
  await page.getByTestId('terminal-host').selectOption(h1.name);
  await page.getByTestId('terminal-open').click();
  await expect(page.getByTestId('terminal-status')).toHaveAttribute('data-phase', 'open', { timeout: 30_000 });
  const rows = page.locator('[data-testid=terminal-screen] .xterm-rows');
  await expect(rows).not.toHaveText(/^\s*$/, { timeout: 20_000 });
  await page.getByTestId('terminal-screen').click();
  await page.keyboard.type('echo "a11y-$((6*7))"\n');
  await expect(rows).toContainText('a11y-42', { timeout: 20_000 });

  // ---------- users of each role, and a request for a second person ----------
  const olivia = { name: 'olivia', initial: 'initial password for olivia' };
  const audrey = { name: 'audrey', initial: 'initial password for audrey', password: 'audrey reads the record only' };
  await createUser(page, olivia.name, olivia.initial, ['officer']);
  await expect(page.getByTestId(`user-row-${olivia.name}`)).toBeVisible();
  await createUser(page, audrey.name, audrey.initial, ['auditor']);
  await expect(page.getByTestId(`user-row-${audrey.name}`)).toBeVisible();
  await createUser(page, 'carol', 'initial password for carol', ['admin']);
  await expect(page.getByTestId('approval-dialog')).toBeVisible();
  await axe(page, 'dialog: second person required', found);
  await page.getByTestId('approval-reason').fill('Carol joins the on-call rota');
  await page.getByTestId('approval-submit').click();
  await expect(page.getByTestId('approval-dialog')).toHaveCount(0);
  await expect(page.getByTestId('user-create-error')).toHaveAttribute('data-code', 'APPROVAL_REQUIRED');
  await page.getByTestId(`user-action-${audrey.name}`).selectOption('resetPassword');
  await expect(page.getByTestId('user-action-dialog')).toBeVisible();
  await axe(page, 'dialog: user action', found);
  await page.keyboard.press('Escape');
  await expect(page.getByTestId('user-action-dialog')).toHaveCount(0);
  await page.getByTestId('nav-approvals').click();
  await page.locator('[data-testid^="approval-row-"]').first().click();
  await expect(page.getByTestId('approval-detail')).toHaveAttribute('data-status', 'pending');

  // ---------- models: a dataset, a PHI fine-tune's lineage and provenance, the import dialog ----------
  fs.rmSync(MEDIA, { recursive: true, force: true });
  fs.mkdirSync(path.join(MEDIA, 'triage'), { recursive: true });
  fs.writeFileSync(path.join(MEDIA, 'triage', 'model.safetensors'), 'weights');
  await page.getByTestId('nav-models').click();
  await page.getByTestId('models-dataset-open').click();
  await expect(page.getByTestId('models-dataset')).toBeVisible();
  await axe(page, 'dialog: add a dataset', found);
  await page.getByTestId('models-dataset-id').fill('ward-notes');
  await page.getByTestId('models-dataset-name').fill('Ward notes 2023');
  await page.getByTestId('models-dataset-classification').selectOption('phi');
  await page.getByTestId('models-dataset-location').fill('Vault 3');
  await page.getByTestId('models-dataset-owner').fill('Dr Ng');
  await page.getByTestId('models-dataset-submit').click();
  await expect(page.getByTestId('models-dataset-ward-notes')).toBeVisible();
  await page.getByTestId('models-import-open').click();
  await page.getByTestId('models-import-path').fill(path.join(MEDIA, 'triage'));
  await page.getByTestId('models-import-name').fill('triage-notes');
  await page.getByTestId('models-import-version').fill('v1');
  await page.getByTestId('models-import-classification').selectOption('phi');
  await page.getByTestId('models-import-owner').fill('ML team');
  await page.getByTestId('models-import-license').fill('internal');
  await page.getByTestId('models-import-source').fill('run 42');
  await page.getByTestId('models-import-lineage-ward-notes').selectOption('fine-tuning');
  await axe(page, 'dialog: import a model version', found);
  await page.getByTestId('models-import-submit').click();
  await expect(page.getByTestId('models-lineage')).toBeVisible();
  await axe(page, 'models: a version with its lineage and files', found);
  await page.getByTestId('models-approve').click();
  await axe(page, 'dialog: request a PHI approval', found);
  await page.keyboard.press('Escape');
  await expect(page.getByTestId('models-move')).toHaveCount(0);
  fs.rmSync(MEDIA, { recursive: true, force: true });

  // ---------- grants: an application's credential shown once, the policy per host ----------
  await page.getByTestId('nav-grants').click();
  await expect(page.getByTestId('grants-view')).toBeVisible();
  await page.getByTestId('grants-app-name').fill('triage-bot');
  await page.getByTestId('grants-app-create').click();
  await expect(page.getByTestId('grants-credential-app:triage-bot')).toBeVisible();
  await axe(page, 'grants: a credential shown once', found);
  await page.getByTestId('grants-credential-done').click();
  await expect(page.getByTestId('grants-principal-app:triage-bot')).toBeVisible();
  await axe(page, 'grants: principals, grants and the policy per host', found);

  // ---------- provisioning: an organisation playbook, a plan, an apply with step-up, an attestation ----------
  await page.getByTestId('nav-provision').click();
  await page.getByTestId('prov-tab-run').click();
  const pb = testInfo.outputPath('site-gpu-check.json');
  fs.writeFileSync(
    pb,
    JSON.stringify({ format: 'airlock.playbook/v1', name: 'site-gpu-check', version: '1.0', steps: [{ id: 'gpu', type: 'gpu-driver-check', params: { minCount: 8, models: ['A100'] } }] }),
  );
  await page.getByTestId('prov-import-playbook').locator('summary').click();
  await page.getByTestId('prov-import-playbook-file').setInputFiles(pb);
  await page.getByTestId('prov-import-playbook-submit').click();
  await expect(page.getByTestId('prov-import-playbook-result')).toContainText('site-gpu-check');
  await expect(page.getByTestId('prov-playbook')).toHaveValue('site-gpu-check');
  const live = page.getByTestId('prov-live');
  // The lab playbook's plan on the host: diffs of files and rulesets, and the steps whose store
  // content was never imported here failing (a plan checks every step).
  await page.getByTestId('prov-playbook').selectOption('lab-gpu-node');
  await page.getByTestId('prov-mode-names').check();
  await page.getByTestId(`prov-check-${h1.name}`).setChecked(true);
  const base = lab.subnet.replace(/\.0\/24$/, '');
  const overrides = { egress: { allowCidrs: [`${base}.0/25`], probes: { outside: [{ host: lab.decoy.address, port: lab.decoy.port }], inside: [] } } };
  // The parameters as a form generated from the steps' schemas (the default view), then as JSON.
  await expect(page.getByTestId('prov-params-view-form')).toHaveAttribute('aria-pressed', 'true');
  await axe(page, 'provision: the parameters form (lab-gpu-node)', found);
  await page.getByTestId('prov-params-view-json').click();
  await page.getByTestId('prov-params').fill(JSON.stringify(overrides, null, 2));
  await axe(page, 'provision: the parameters as JSON', found);
  await page.getByTestId('prov-plan').click();
  await expect(live).toHaveAttribute('data-kind', 'plan');
  await expect(live).toHaveAttribute('data-phase', 'done', { timeout: 120_000 });
  await expect(live.getByTestId(`prov-step-${h1.name}-sshd`)).toHaveAttribute('data-status', 'would-change');
  // Every diff and output shown (the operator opens them to review), then checked.
  for (const d of await live.locator('details:not([open]) > summary').all()) await d.click();
  await expect(live.locator('pre.prov-diff').first()).toBeVisible();
  await axe(page, 'provision: plan result with diffs (lab-gpu-node)', found);
  if (SHOTS) await shot(page, 'provision-plan', 'Provisioning: a plan under review (diffs, failed checks)');
  await page.getByTestId('prov-params').fill('{}');
  await page.getByTestId('prov-playbook').selectOption('site-gpu-check');
  await page.getByTestId('prov-plan').click();
  await expect(live).toHaveAttribute('data-kind', 'plan');
  await expect(live).toHaveAttribute('data-phase', 'done', { timeout: 120_000 });
  await expect(live).toHaveAttribute('data-status', 'succeeded');
  await axe(page, 'provision: plan result', found);

  // The step-up prompt: the shortest window, lapsed (a minute after the sign-in), then Apply.
  await page.getByTestId('nav-account').click();
  await page.getByTestId('settings-stepup').fill('1');
  await page.getByTestId('settings-submit').click();
  await expect(page.getByTestId('settings-note')).toHaveText('Saved.');
  const wait = signedInAt + 65_000 - Date.now();
  if (wait > 0) await page.waitForTimeout(wait);
  await page.getByTestId('nav-provision').click();
  await page.getByTestId('prov-tab-run').click();
  await page.getByTestId('prov-apply').click();
  await expect(page.getByTestId('prov-apply-dialog')).toBeVisible();
  await axe(page, 'dialog: apply', found);
  await page.getByTestId('prov-apply-confirm').click();
  await expect(page.getByTestId('stepup-dialog')).toBeVisible({ timeout: 30_000 });
  await axe(page, 'dialog: step-up', found);
  if (SHOTS) await shot(page, 'dialog-stepup', 'Dialog: step-up (confirm your password)');
  await page.getByTestId('stepup-password').fill(ADMIN.password);
  await page.getByTestId('stepup-submit').click();
  await expect(page.getByTestId('stepup-dialog')).toHaveCount(0);
  await expect(live).toHaveAttribute('data-kind', 'apply');
  await expect(live).toHaveAttribute('data-phase', 'done', { timeout: 120_000 });
  await expect(live.getByTestId('prov-final')).toHaveAttribute('data-status', 'succeeded');
  await axe(page, 'provision: apply result', found);
  await live.getByTestId(`prov-attestation-open-${h1.name}`).click();
  await expect(page.getByTestId('attestation-json')).toContainText('"format": "airlock.attestation/v1"');
  await expect(page.getByTestId('attestation-key-trusted')).toBeVisible();
  await axe(page, 'dialog: attestation', found);
  if (SHOTS) await shot(page, 'dialog-attestation', 'Dialog: a signed attestation');
  await page.getByTestId('attestation-close').click();
  await expect(page.getByTestId('attestation-dialog')).toHaveCount(0);
  // Back to a long window: the views below are looked at, not used.
  await page.getByTestId('nav-account').click();
  await page.getByTestId('settings-stepup').fill('120');
  await page.getByTestId('settings-submit').click();
  await expect(page.getByTestId('settings-note')).toHaveText('Saved.');

  // ---------- every view of the administrator's nav ----------
  await visitEveryView(page, 'admin', found, checked, SHOTS);

  // ---------- an auditor: the forced password change, then every view of that nav ----------
  await page.getByTestId('signout').click();
  await expect(page.getByTestId('login-form')).toBeVisible();
  await axe(page, 'sign-in', found);
  if (SHOTS) await shot(page, 'sign-in', 'Sign-in');
  await submitLogin(page, audrey.name, audrey.initial);
  await expect(page.getByTestId('restricted')).toHaveAttribute('data-restriction', 'password-change');
  await axe(page, 'forced password change', found);
  await chooseOwnPassword(page, audrey.initial, audrey.password);
  await expect(page.getByTestId('topbar-user')).toHaveText(audrey.name);
  const adminViews = new Set(checked);
  await visitEveryView(page, 'auditor', found, checked, false);

  // Every feature of the registry was looked at by someone.
  const missing = registryIds().filter((id) => !checked.has(id));
  expect(missing, 'features of renderer/features/registry.ts no user of this spec saw (give one of them the role, or add a user)').toEqual([]);
  expect(adminViews.size, 'the administrator saw views').toBeGreaterThan(0);

  if (SHOTS) writeScreenshotsPage();
  if (found.length) console.log(`axe: ${found.length} serious or critical violation(s):\n${report(found)}`);
  expect(found, `axe violations (serious or critical):\n${report(found)}`).toEqual([]);
});
