/**
 * Issue 13, "Done means", in the browser: a model imported from the media root and approved on
 * the Models page, granted to an application on the Grants page, a request from that application
 * served through the gate on a lab GPU host, then refused (403) once the grant is revoked. The
 * host's inference server (the lab's simulator) is bound to its loopback; the gate in front of it
 * is installed by Airlock's own `inference-gate` provisioning step (the CLI, on the same data
 * directory), with the console's pinned policy key. No prompt reaches the gate's log.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runOnHost } from '../lab/lab';
import { ADMIN, authorizeAirlock, cli, enrolHost, expect, firstRunSetup, test } from './fixtures';

const MEDIA = path.join(os.tmpdir(), `airlock-e2e-access-media-${process.pid}`);
const GATE_PORT = 8443;
test.use({ serveEnv: { AIRLOCK_MEDIA_ROOTS: MEDIA } });

test.beforeAll(() => {
  fs.rmSync(MEDIA, { recursive: true, force: true });
  fs.mkdirSync(path.join(MEDIA, 'triage'), { recursive: true });
  fs.writeFileSync(path.join(MEDIA, 'triage', 'model.safetensors'), 'triage weights '.repeat(1000));
  fs.writeFileSync(path.join(MEDIA, 'triage', 'config.json'), '{"layers": 2}');
  fs.mkdirSync(path.join(MEDIA, 'summarize'), { recursive: true });
  fs.writeFileSync(path.join(MEDIA, 'summarize', 'model.safetensors'), 'summarize weights '.repeat(1000));
});
test.afterAll(() => fs.rmSync(MEDIA, { recursive: true, force: true }));

test('import → approve → grant → served through the gate → revoked → 403', async ({ app, lab }) => {
  test.setTimeout(300_000);
  const { page } = app;
  const host = lab.hosts[0]!;
  await firstRunSetup(page);
  await authorizeAirlock(page, lab);
  await enrolHost(page, host);

  // The inference server on the host's loopback, serving the version as <model>:<version>.
  const sh = async (script: string) => {
    const r = await runOnHost(lab, host.name, ['sh', '-c', script]);
    expect(r.code, r.stderr).toBe(0);
    return r.stdout;
  };
  await sh(
    "mkdir -p /srv/models/triage/1.0 && echo weights > /srv/models/triage/1.0/model.safetensors && printf '[Service]\\nExecStart=/usr/local/bin/airlock-inference-sim --model /srv/models/triage/1.0 --served-model-name triage:1.0 --host 127.0.0.1 --port 8000\\n' > /etc/systemd/system/inference-triage.service && systemctl daemon-reload && systemctl start inference-triage.service",
  );
  // The gate in front of it: Airlock's inference-gate step, from the CLI on the console's data directory.
  const env = { AIRLOCK_USER: ADMIN.name, AIRLOCK_PASSWORD: ADMIN.password, AIRLOCK_TOTP_POLICY: 'off' };
  const pb = path.join(app.dataDir, 'gate-playbook.json');
  fs.writeFileSync(pb, JSON.stringify({ format: 'airlock.playbook/v1', name: 'gate', version: '1', steps: [{ id: 'gate', type: 'inference-gate', params: { port: GATE_PORT } }] }));
  const imported = await cli(app.dataDir, ['provision', 'import-playbook', pb], env);
  expect(imported.code, imported.stderr).toBe(0);
  const applied = await cli(app.dataDir, ['provision', 'apply', '--playbook', 'gate', '--hosts', host.name], env);
  expect(applied.code, applied.stderr + applied.stdout).toBe(0);

  const prompt = `a prompt that must never be logged ${process.pid}`;
  const ask = (credential: string) =>
    fetch(`http://${host.address}:${GATE_PORT}/v1/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${credential}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'triage:1.0', prompt, max_tokens: 8 }),
    }).then((r) => r.status);

  // Import and approve on the Models page.
  await page.getByTestId('nav-models').click();
  const importAndApprove = async (name: string) => {
    await page.getByTestId('models-import-open').click();
    await page.getByTestId('models-import-format').selectOption('directory');
    await page.getByTestId('models-import-path').fill(path.join(MEDIA, name));
    await page.getByTestId('models-import-name').fill(name);
    await page.getByTestId('models-import-version').fill('1.0');
    await page.getByTestId('models-import-classification').selectOption('internal');
    await page.getByTestId('models-import-owner').fill('ML team');
    await page.getByTestId('models-import-license').fill('apache-2.0');
    await page.getByTestId('models-import-source').fill('Vendor X, USB 7');
    await page.getByTestId('models-import-submit').click();
    const row = page.getByTestId(`models-row-${name}-1.0`);
    await expect(row.getByTestId('models-status')).toHaveAttribute('data-status', 'staged');
    await page.getByTestId('models-detail').getByTestId('models-approve').click();
    await page.getByTestId('models-move-submit').click();
    await expect(row.getByTestId('models-status')).toHaveAttribute('data-status', 'approved');
  };
  await importAndApprove('triage');
  await importAndApprove('summarize');

  // An application and its credential (shown once). No grant yet: the gate knows it and grants it
  // nothing (403); a credential the console never issued is 401.
  await page.getByTestId('nav-grants').click();
  await page.getByTestId('grants-app-name').fill('triage-bot');
  await page.getByTestId('grants-app-create').click();
  const credential = (await page.getByTestId('grants-credential-app:triage-bot').textContent())!;
  expect(credential).toMatch(/^alk_/);
  await page.getByTestId('grants-credential-done').click();
  await expect.poll(() => ask(credential), { timeout: 30_000 }).toBe(403);
  expect(await ask('alk_not-issued-by-this-console')).toBe(401);

  // Granted (invoke, this version): served through the gate once the policy is on the host.
  await page.getByTestId('grants-add-model').fill('triage');
  await page.getByTestId('grants-add-version').fill('1.0');
  await page.getByTestId('grants-add-submit').click();
  await expect(page.getByTestId(`grants-host-${host.name}`)).toHaveAttribute('data-state', 'ok');
  await expect.poll(() => ask(credential), { timeout: 30_000 }).toBe(200);


  // The grant revoked: refused again (403).
  const grant = page.locator('[data-testid^="grants-row-gr-"]').first();
  const id = (await grant.getAttribute('data-testid'))!.replace('grants-row-', '');
  await page.getByTestId(`grants-revoke-${id}`).click();
  await page.getByTestId(`grants-revoke-reason-${id}`).fill('the pilot ended');
  await page.getByTestId(`grants-revoke-confirm-${id}`).click();
  await expect(page.getByTestId(`grants-row-${id}`)).toHaveCount(0);
  await expect.poll(() => ask(credential), { timeout: 30_000 }).toBe(403);

  // The gate's log has the decisions, never the prompt.
  const log = await sh('cat /var/log/airlock-gate/access.log');
  expect(log).toContain('"status":200');
  expect(log).not.toContain(prompt);
});
