/**
 * No table overflows sideways at 1280 × 800 with long data: the Hosts view with a host whose key
 * changed (its row shows the long error naming both fingerprints) and its details open, and the
 * Provisioning view with a plan result whose step details (long diffs: the egress ruleset with
 * many networks, sshd_config's cipher and key-exchange lists) are open. The page never scrolls
 * sideways, every table fits its container, and the Actions column (Hosts) and the Changes, Exit
 * and Duration columns (plan results) are inside the viewport; a long diff line scrolls inside its
 * own <pre> (or wraps), not the page. The checks are shown to fail on an over-wide element put
 * into the page on purpose.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Page } from '@playwright/test';
import { replaceHostKey, type Lab } from '../lab/lab';
import { authorizeAirlock, enrolHost, expect, firstRunSetup, scanHost, test } from './fixtures';

// The root tsconfig has no DOM library (core code must not see one): the page's globals, loosely
// typed, for the callbacks that run in the page (as in hostile.spec.ts).
declare const document: any;
type Element = any;

const WIDTH = 1280;
// The Models page's media: a version with long names (checked below, no lab needed).
const MEDIA = path.join(os.tmpdir(), `airlock-e2e-tables-media-${process.pid}`);
test.use({ serveEnv: { AIRLOCK_MEDIA_ROOTS: MEDIA } });

interface Overflow {
  pageWidth: number;
  tables: { id: string; scrollWidth: number; clientWidth: number; right: number }[];
  wide: string[];
}

/** The page's and every visible table's horizontal extent, and what sticks out (for the message). */
async function measure(page: Page): Promise<Overflow> {
  return page.evaluate(() => {
    const vw = document.documentElement.clientWidth;
    const name = (el: Element) =>
      `${el.tagName.toLowerCase()}${el.getAttribute('data-testid') ? `[${el.getAttribute('data-testid')}]` : ''}${el.className && typeof el.className === 'string' ? `.${el.className.split(' ').join('.')}` : ''}`;
    const tables = Array.from<any>(document.querySelectorAll('#root table')).filter((t) => t.getClientRects().length > 0);
    return {
      pageWidth: document.documentElement.scrollWidth,
      tables: tables.map((t) => {
        const box = t.parentElement!;
        return {
          id: name(t),
          // The table within its container (a .table-wrap scrolls; nothing should need to).
          scrollWidth: Math.max(t.scrollWidth, box.scrollWidth),
          clientWidth: box.clientWidth,
          right: Math.round(t.getBoundingClientRect().right),
        };
      }),
      // Elements whose right edge is past the viewport: what would be cut off or scroll the page.
      wide: Array.from<any>(document.querySelectorAll('#root *'))
        .filter((el) => el.getClientRects().length > 0 && el.getBoundingClientRect().right > vw + 0.5 && !el.closest('pre'))
        .slice(0, 8)
        .map((el) => `${name(el)} right=${Math.round(el.getBoundingClientRect().right)}`)
        // With the widths of a too-wide table's columns and rows' cells: which one is to blame.
        .concat(
          tables
            .filter((t) => t.getBoundingClientRect().right > vw + 0.5)
            .flatMap((t) =>
              Array.from<any>(t.querySelectorAll('th, td'))
                .filter((c) => c.getBoundingClientRect().width > 200)
                .map((c) => `${name(t)} ${name(c)} "${(c.textContent ?? '').slice(0, 40)}" width=${Math.round(c.getBoundingClientRect().width)}`),
            ),
        ),
    };
  });
}

async function expectNoSidewaysOverflow(page: Page, what: string): Promise<void> {
  const m = await measure(page);
  expect(m.tables.length, `${what}: tables measured`).toBeGreaterThan(0);
  expect(m.wide, `${what}: elements past the viewport's right edge`).toEqual([]);
  expect(m.pageWidth, `${what}: the page's width`).toBeLessThanOrEqual(WIDTH);
  for (const t of m.tables) {
    expect(t.scrollWidth, `${what}: ${t.id} fits its container`).toBeLessThanOrEqual(t.clientWidth);
    expect(t.right, `${what}: ${t.id} ends inside the viewport`).toBeLessThanOrEqual(WIDTH);
  }
}

/** A column's cells (header and body) all end inside the viewport and are not clipped by their table. */
async function expectColumnVisible(page: Page, tableTestId: string, header: string): Promise<void> {
  const table = page.getByTestId(tableTestId);
  const th = table.locator('thead th', { hasText: header });
  await expect(th).toBeVisible();
  const box = (await th.boundingBox())!;
  expect(box.x + box.width, `${tableTestId}: column ${header} ends inside the viewport`).toBeLessThanOrEqual(WIDTH);
  await expect(th).toBeInViewport({ ratio: 1 });
}

function manyCidrs(lab: Lab): string[] {
  const base = lab.subnet.replace(/\.0\/24$/, '');
  // The hosts' /25 and forty more networks, none adjacent (the ruleset merges adjacent ones): one
  // ruleset line long enough to overflow any cell.
  return [`${base}.0/25`, ...Array.from({ length: 40 }, (_, i) => `172.16.${2 * i}.0/24`)];
}

test('Hosts and Provisioning at 1280 px: long errors and long diffs stay inside their tables', async ({ app, lab }) => {
  test.setTimeout(300_000);
  const { page } = app;
  const [h1, h2] = [lab.hosts[0]!, lab.hosts[1]!];
  await page.setViewportSize({ width: WIDTH, height: 800 });
  await firstRunSetup(page);
  await authorizeAirlock(page, lab);
  for (const h of lab.hosts) await enrolHost(page, h);
  await scanHost(page, h1.name, 'reachable');
  await scanHost(page, h2.name, 'reachable');

  // ---------- Hosts: a key-changed host's long error, and a host's details open ----------
  await replaceHostKey(lab, h1.name);
  await scanHost(page, h1.name, 'key-changed');
  await expect(page.getByTestId(`host-scan-error-${h1.name}`)).toBeVisible();
  await page.getByTestId(`host-expand-${h2.name}`).click();
  await expectNoSidewaysOverflow(page, 'Hosts');
  await expectColumnVisible(page, 'hosts-table', 'Actions');
  for (const h of [h1, h2]) await expect(page.getByTestId(`host-remove-${h.name}`)).toBeInViewport({ ratio: 1 });

  // ---------- Provisioning: a plan with long diffs, every step's details open ----------
  await page.getByTestId('nav-provision').click();
  await page.getByTestId('prov-playbook').selectOption('lab-gpu-node');
  await page.getByTestId('prov-mode-names').check();
  await page.getByTestId(`prov-check-${h2.name}`).check();
  const cidrs = manyCidrs(lab);
  await page.getByTestId('prov-params-view-json').click();
  await page.getByTestId('prov-params').fill(
    JSON.stringify({ egress: { allowCidrs: cidrs, probes: { outside: [{ host: lab.decoy.address, port: lab.decoy.port }], inside: [] } } }, null, 2),
  );
  await page.getByTestId('prov-plan').click();
  const live = page.getByTestId('prov-live');
  await expect(live).toHaveAttribute('data-phase', 'done', { timeout: 120_000 });
  for (const b of await live.locator(`[data-testid^="prov-step-toggle-${h2.name}-"][aria-expanded=false]`).all()) await b.click();
  const rules = live.getByTestId(`prov-step-detail-${h2.name}-egress`).locator('pre.prov-diff');
  await expect(rules).toContainText(cidrs[cidrs.length - 1]!);
  // The long line is really longer than the view: it scrolls inside its <pre>.
  const pre = await rules.first().evaluate((el) => ({ scroll: el.scrollWidth, client: el.clientWidth }));
  expect(pre.scroll).toBeGreaterThan(WIDTH);
  expect(pre.client).toBeLessThan(WIDTH);
  await expectNoSidewaysOverflow(page, 'Provisioning (plan result)');
  for (const col of ['Changes', 'Exit', 'Duration']) await expectColumnVisible(page, `prov-steps-${h2.name}`, col);

  // The checks are not vacuous: an over-wide element put into a step's row (as a long diff was
  // before the fix) widens the steps table past the viewport, and both checks say so.
  const steps = page.getByTestId(`prov-steps-${h2.name}`);
  await steps.evaluate((t) => {
    const wide = document.createElement('span');
    wide.setAttribute('data-testid', 'too-wide');
    wide.textContent = 'x';
    // CSSOM, not a style attribute: the page's CSP allows the one, not the other.
    wide.style.display = 'inline-block';
    wide.style.width = '2400px';
    t.querySelector('tbody td')!.appendChild(wide);
  });
  const flagged = await measure(page);
  expect(flagged.wide.some((w) => w.startsWith(`table[prov-steps-${h2.name}]`)), flagged.wide.join('\n')).toBe(true);
  await expect(expectNoSidewaysOverflow(page, 'Provisioning with an over-wide element')).rejects.toThrow(/past the viewport|fits its container|ends inside the viewport|page's width/);
  await expect(expectColumnVisible(page, `prov-steps-${h2.name}`, 'Duration')).rejects.toThrow();
  // Taken out again, the same page passes: it was the element, not the checks.
  await steps.evaluate((t) => t.querySelector('[data-testid="too-wide"]')!.remove());
  await expectNoSidewaysOverflow(page, 'Provisioning (plan result), again');
});

test('Models at 1280 px: long file paths, SHA-256s, sources and locations stay inside their tables', async ({ app }) => {
  const { page } = app;
  const long = `${'checkpoints-after-the-second-fine-tuning-run-on-the-ward-notes/'.repeat(3)}model-00001-of-00042.safetensors`;
  const dir = path.join(MEDIA, 'long');
  fs.rmSync(MEDIA, { recursive: true, force: true });
  fs.mkdirSync(path.join(dir, path.dirname(long)), { recursive: true });
  fs.writeFileSync(path.join(dir, long), 'weights');
  fs.writeFileSync(path.join(dir, 'tokenizer.json'), '{}');
  try {
    await page.setViewportSize({ width: WIDTH, height: 800 });
    await firstRunSetup(page);
    await page.getByTestId('nav-models').click();
    await page.getByTestId('models-dataset-open').click();
    await page.getByTestId('models-dataset-id').fill('ward-notes-2023-cardiology-and-internal-medicine-extract-17');
    await page.getByTestId('models-dataset-name').fill('Ward notes 2023, cardiology and internal medicine, extract 17 of the EHR');
    await page.getByTestId('models-dataset-location').fill(`Vault 3 /${'long/path/on/the/records/share/'.repeat(6)}extract-17.parquet`);
    await page.getByTestId('models-dataset-owner').fill('Dr Ng, clinical informatics');
    await page.getByTestId('models-dataset-submit').click();
    await page.getByTestId('models-import-open').click();
    await page.getByTestId('models-import-path').fill(dir);
    await page.getByTestId('models-import-name').fill('triage-assistant-cardiology-fine-tune-from-the-ward-notes-extract');
    await page.getByTestId('models-import-version').fill('2026.12.07-run-42-checkpoint-final-candidate');
    await page.getByTestId('models-import-owner').fill('ML team');
    await page.getByTestId('models-import-license').fill('Proprietary, contract 2026-114 with Vendor X, clause 7');
    await page.getByTestId('models-import-source').fill(`Vendor X, USB 7, ${'ticket CHG-0042 '.repeat(8)}`);
    await page.getByTestId('models-import-submit').click();
    await expect(page.getByTestId('models-detail').getByTestId('models-files')).toContainText('model-00001-of-00042');
    await expectNoSidewaysOverflow(page, 'Models');
    await expectColumnVisible(page, 'models-table', 'Actions');
    await expectColumnVisible(page, 'models-files', 'SHA-256');
  } finally {
    fs.rmSync(MEDIA, { recursive: true, force: true });
  }
});
