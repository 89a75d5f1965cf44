/**
 * The Models page through the real UI (`airlock serve` driven by Chromium; issue 13): a dataset
 * added, a base model imported from a directory on the media root and a PHI fine-tune from an OCI
 * image layout, each shown staged with its classification badge, the fine-tune's lineage drawn
 * datasets → base → fine-tune and its files with sizes and SHA-256; the base approved (its
 * identity digest shown), the fine-tune's approval filed as a two-person request, approved by a
 * security officer in a window of their own and executed: approved, both people named. A path
 * outside the media root is refused. No lab: imports touch only the console's own machine.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { writeOciLayout } from '../support/model-media';
import { approveAs, createUser, expect, firstRunSetup, test } from './fixtures';

const MEDIA = path.join(os.tmpdir(), `airlock-e2e-models-media-${process.pid}`);
test.use({ serveEnv: { AIRLOCK_MEDIA_ROOTS: MEDIA } });

const weights = crypto.randomBytes(300_000);
const sha = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');

test.beforeAll(() => {
  fs.rmSync(MEDIA, { recursive: true, force: true });
  fs.mkdirSync(path.join(MEDIA, 'base'), { recursive: true });
  fs.writeFileSync(path.join(MEDIA, 'base', 'model.safetensors'), weights);
  fs.writeFileSync(path.join(MEDIA, 'base', 'config.json'), '{"layers": 24}');
  writeOciLayout(path.join(MEDIA, 'tune'), [{ title: 'adapter.safetensors', body: Buffer.from('adapter '.repeat(500)) }]);
});
test.afterAll(() => fs.rmSync(MEDIA, { recursive: true, force: true }));

test('imports from the media root, shows badges, lineage and provenance, approves; a PHI approval by a second person', async ({ app }) => {
  const { page } = app;
  await firstRunSetup(page);
  // The security officer who will approve the PHI version (an account older than the request).
  const olga = { name: 'olga', initial: 'initial password for olga', password: 'olga chooses her own pass' };
  await createUser(page, olga.name, olga.initial, ['officer']);
  await expect(page.getByTestId(`user-row-${olga.name}`)).toBeVisible();
  await page.getByTestId('nav-models').click();
  await expect(page.getByTestId('models-table')).toContainText('No model in the catalog yet');

  // A dataset the fine-tune's lineage names.
  await page.getByTestId('models-dataset-open').click();
  await page.getByTestId('models-dataset-id').fill('ward-notes');
  await page.getByTestId('models-dataset-name').fill('Ward notes 2023');
  await page.getByTestId('models-dataset-classification').selectOption('phi');
  await page.getByTestId('models-dataset-retention').fill('2031-12-31');
  await page.getByTestId('models-dataset-location').fill('Vault 3');
  await page.getByTestId('models-dataset-owner').fill('Dr Ng');
  await page.getByTestId('models-dataset-submit').click();
  await expect(page.getByTestId('models-dataset-ward-notes')).toContainText('2031-12-31');

  const importVersion = async (o: { format: string; dir: string; name: string; classification: string; lineage?: string; base?: string }) => {
    await page.getByTestId('models-import-open').click();
    await page.getByTestId('models-import-format').selectOption(o.format);
    await page.getByTestId('models-import-path').fill(o.dir);
    await page.getByTestId('models-import-name').fill(o.name);
    await page.getByTestId('models-import-version').fill('v1');
    await page.getByTestId('models-import-classification').selectOption(o.classification);
    await page.getByTestId('models-import-owner').fill('ML team');
    await page.getByTestId('models-import-license').fill('apache-2.0');
    await page.getByTestId('models-import-source').fill('Vendor X, USB 7');
    if (o.lineage) await page.getByTestId(`models-import-lineage-${o.lineage}`).selectOption('fine-tuning');
    if (o.base) await page.getByTestId('models-import-base').selectOption(o.base);
    await page.getByTestId('models-import-submit').click();
  };

  // Outside the media root: refused, said so, nothing imported.
  await importVersion({ format: 'directory', dir: os.tmpdir(), name: 'stray', classification: 'public' });
  await expect(page.getByTestId('models-import-error')).toHaveAttribute('data-code', 'FORBIDDEN');
  await expect(page.getByTestId('models-import-error')).toContainText('is not under a media root');
  await page.getByTestId('models-import-close').click();

  await importVersion({ format: 'directory', dir: path.join(MEDIA, 'base'), name: 'triage-base', classification: 'internal' });
  const base = page.getByTestId('models-row-triage-base-v1');
  await expect(base.getByTestId('models-class')).toHaveAttribute('data-classification', 'internal');
  await expect(base.getByTestId('models-status')).toHaveAttribute('data-status', 'staged');
  // Its provenance: each file with its size and SHA-256.
  const detail = page.getByTestId('models-detail');
  await expect(detail.getByTestId('models-files')).toContainText('model.safetensors');
  await expect(detail.getByTestId('models-files')).toContainText(sha(weights));

  await detail.getByTestId('models-approve').click();
  await page.getByTestId('models-move-submit').click();
  await expect(base.getByTestId('models-status')).toHaveAttribute('data-status', 'approved');
  await expect(page.getByTestId('models-digest')).toHaveText(/^sha256:[0-9a-f]{64}$/);

  // The PHI fine-tune from an OCI layout: staged with its badge, lineage datasets → base → fine-tune.
  await importVersion({ format: 'oci-layout', dir: path.join(MEDIA, 'tune'), name: 'triage-notes', classification: 'phi', lineage: 'ward-notes', base: 'triage-base:v1' });
  const tune = page.getByTestId('models-row-triage-notes-v1');
  await expect(tune.getByTestId('models-class')).toHaveAttribute('data-classification', 'phi');
  await expect(tune.getByTestId('models-status')).toHaveAttribute('data-status', 'staged');
  const lineage = page.getByTestId('models-lineage');
  await expect(lineage.locator('li')).toHaveText([/ward-notes.*fine-tuning · kept until 2031-12-31/, /triage-base v1.*base · approved/, /triage-notes v1.*this version/]);

  // Approving it needs a second person: the request is filed, the version stays staged.
  await page.getByTestId('models-approve').click();
  await page.getByTestId('models-move-reason').fill('ethics board ref 2026-114');
  await page.getByTestId('models-move-submit').click();
  await expect(page.getByTestId('models-move-filed')).toContainText('Filed as request #');
  const id = /#(\d+)/.exec(await page.getByTestId('models-move-filed').innerText())![1]!;
  await page.getByTestId('models-move-close').click();
  await expect(tune.getByTestId('models-status')).toHaveAttribute('data-status', 'staged');

  // A security officer approves it in a window of their own (a one-time sign-in link, the same console).
  await page.getByTestId('nav-account').click();
  await page.getByTestId('signin-link-new').click();
  const url = await page.getByTestId('signin-link-url').inputValue();
  const second = await page.context().browser()!.newContext({ viewport: { width: 1480, height: 900 } });
  try {
    const op = await second.newPage();
    await op.goto(url);
    await approveAs(op, olga, id, { filed: 'ethics board ref 2026-114', decision: 'lineage and licence checked' });
  } finally {
    await second.close();
  }
  // The requester runs it: the version is approved, with both people on record.
  await page.getByTestId('nav-approvals').click();
  await page.getByTestId(`approval-row-${id}`).click();
  await expect(page.getByTestId('approval-detail')).toContainText('Approve the phi model version triage-notes v1');
  await page.getByTestId('approval-execute').click();
  await expect(page.getByTestId('approval-detail')).toHaveAttribute('data-status', 'executed');
  await page.getByTestId('nav-models').click();
  await expect(tune.getByTestId('models-status')).toHaveAttribute('data-status', 'approved');
  await page.getByTestId('models-open-triage-notes-v1').click();
  await expect(page.getByTestId('models-status-line')).toContainText('by admin with olga');
});
