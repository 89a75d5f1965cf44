/**
 * Hostile removable media and cancelling an import, through the real UI (`airlock serve` driven
 * by Chromium; issue 9, point 7): a SHA256SUMS that is a symlink to /dev/zero and an unlisted
 * shard are refused with the file named, and a big import is stopped with Cancel, leaving nothing
 * in the store. No lab: imports touch only the console's own machine.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect, firstRunSetup, test } from './fixtures';

const MEDIA = path.join(os.tmpdir(), `airlock-e2e-store-media-${process.pid}`);
// Big enough that the copy is still running when Cancel is clicked (sparse: it costs no disk on the media).
const SIZE = 1024 * 1024 * 1024;
test.use({ serveEnv: { AIRLOCK_MEDIA_ROOTS: MEDIA } });

test.beforeAll(() => {
  fs.mkdirSync(path.join(MEDIA, 'zero'), { recursive: true });
  fs.symlinkSync('/dev/zero', path.join(MEDIA, 'zero', 'SHA256SUMS'));
  const shards = path.join(MEDIA, 'shards');
  fs.mkdirSync(shards);
  fs.writeFileSync(path.join(shards, 'model-00001-of-00002.safetensors'), 'one');
  fs.writeFileSync(path.join(shards, 'model-00002-of-00002.safetensors'), 'two');
  fs.writeFileSync(path.join(shards, 'SHA256SUMS'), `${crypto.createHash('sha256').update('one').digest('hex')}  model-00001-of-00002.safetensors\n`);
  const big = path.join(MEDIA, 'big');
  fs.mkdirSync(big);
  fs.writeFileSync(path.join(big, 'weights.bin'), '');
  fs.truncateSync(path.join(big, 'weights.bin'), SIZE);
  const h = crypto.createHash('sha256');
  const z = Buffer.alloc(8 << 20);
  for (let left = SIZE; left > 0; left -= z.length) h.update(left >= z.length ? z : z.subarray(0, left));
  fs.writeFileSync(path.join(big, 'SHA256SUMS'), `${h.digest('hex')}  weights.bin\n`);
});

test.afterAll(() => {
  fs.rmSync(MEDIA, { recursive: true, force: true });
});

test('hostile media is refused with the file named; Cancel stops a big import and the store keeps nothing', async ({ app }) => {
  const { page } = app;
  await firstRunSetup(page);
  await page.getByTestId('nav-provision').click();
  await page.getByTestId('prov-tab-store').click();
  await expect(page.getByTestId('prov-store-roots')).toContainText(MEDIA);

  const model = async (dir: string, name: string) => {
    await page.getByTestId('prov-import-model-dir').fill(path.join(MEDIA, dir));
    await page.getByTestId('prov-import-model-name').fill(name);
    await page.getByTestId('prov-import-model-version').fill('1');
    await page.getByTestId('prov-import-model-submit').click();
  };
  const error = page.getByTestId('prov-import-model-error');

  await model('zero', 'zero');
  await expect(error).toHaveAttribute('data-code', 'INVALID_INPUT');
  await expect(error).toContainText('SHA256SUMS is a symbolic link');

  await model('shards', 'sharded');
  await expect(error).toContainText('Not listed in SHA256SUMS: model-00002-of-00002.safetensors');

  await model('big', 'big');
  const objects = path.join(app.dataDir, 'store', 'objects');
  await expect.poll(() => fs.existsSync(objects) && fs.readdirSync(objects).some((f) => f.startsWith('.import-'))).toBe(true);
  await page.getByTestId('prov-import-model-cancel').click();
  await expect(error).toHaveAttribute('data-code', 'CANCELLED');
  await expect(page.getByTestId('prov-import-model-cancel')).toHaveCount(0);
  expect(fs.readdirSync(objects)).toEqual([]);
  await page.getByTestId('prov-store-refresh').click();
  await expect(page.getByTestId('prov-store-models')).toContainText('No models imported.');
});
