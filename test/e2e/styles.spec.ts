/**
 * The built page's styles: the base stylesheet (renderer/styles.css) and one per feature
 * (renderer/features/<area>/<area>.css, imported by the feature) arrive as one stylesheet, linked
 * from 'self' (the strict CSP allows no inline style), and each feature's rules apply to its page.
 * The fixture fails the test on any CSP violation.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { Page } from '@playwright/test';
import { expect, firstRunSetup, ROOT, test } from './fixtures';

/** Every .css file under renderer/, with the class names it styles. */
function sourceSheets(): Array<{ file: string; classes: string[] }> {
  const dir = path.join(ROOT, 'renderer');
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.css'))
    .map((f) => {
      const css = readFileSync(path.join(dir, f), 'utf8').replace(/\/\*[\s\S]*?\*\//g, '');
      return { file: f, classes: [...new Set(css.match(/\.[A-Za-z][\w-]*/g) ?? [])] };
    });
}

// The page's globals, typed just enough (the test project compiles without the DOM library).
interface PageGlobals {
  getComputedStyle(el: unknown): { getPropertyValue(p: string): string };
  document: {
    querySelectorAll(s: string): { length: number };
    styleSheets: Iterable<{ href: string | null; cssRules: Iterable<{ cssText: string }> }>;
  };
}

const style = (page: Page, selector: string, prop: string) =>
  page
    .locator(selector)
    .first()
    .evaluate((el, p) => (globalThis as unknown as PageGlobals).getComputedStyle(el).getPropertyValue(p), prop);

test('one stylesheet from self carries the base and every feature stylesheet, and each applies', async ({ app }) => {
  const { page } = app;

  // Before sign-in: the session gate's sheet (features/session/session.css).
  await expect(page.getByTestId('setup-form')).toBeVisible();
  expect(await style(page, '.auth-card-wide', 'width')).toBe('480px');
  expect(await style(page, '.brand-large', 'font-size')).toBe('15px');

  const sheets = await page.evaluate(() => ({
    inline: (globalThis as unknown as PageGlobals).document.querySelectorAll('style').length,
    linked: [...(globalThis as unknown as PageGlobals).document.styleSheets].map((s) => ({
      href: s.href,
      text: [...s.cssRules].map((r) => r.cssText).join('\n'),
    })),
  }));
  expect(sheets.inline).toBe(0);
  expect(sheets.linked).toHaveLength(1);
  const [sheet] = sheets.linked;
  expect(new URL(sheet!.href!).origin).toBe(new URL(page.url()).origin);
  const sources = sourceSheets();
  expect(sources.map((s) => s.file).sort()).toEqual(
    expect.arrayContaining(['styles.css', 'features/hosts/hosts.css', 'features/provision/provision.css', 'features/store/store.css', 'features/attest/attest.css']),
  );
  for (const s of sources) {
    for (const c of s.classes) expect(sheet!.text, `${c} from renderer/${s.file}`).toMatch(new RegExp(`\\${c}(?![\\w-])`));
  }

  await firstRunSetup(page);
  // The base sheet (renderer/styles.css): the layout.
  expect(await style(page, '.sidebar', 'width')).toBe('164px');

  // Hosts (features/hosts/hosts.css).
  await page.getByTestId('nav-hosts').click();
  expect(await style(page, '.hosts-table th', 'padding-left')).toBe('5px');

  // Terminal (features/terminal/terminal.css).
  await page.getByTestId('nav-terminal').click();
  expect(await style(page, '.term-frame', 'min-height')).toBe('320px');

  // Provisioning (provision.css) and its offline store tab (features/store/store.css).
  await page.getByTestId('nav-provision').click();
  expect(await style(page, '.prov-tabs', 'display')).toBe('flex');
  await page.getByTestId('prov-tab-store').click();
  expect(await style(page, '.prov-store-forms', 'display')).toBe('grid');

  // Audit (features/audit/audit.css).
  await page.getByTestId('nav-audit').click();
  expect(await style(page, '.audit-scroll', 'min-height')).toBe('240px');

  // Identity (features/identity/identity.css).
  await page.getByTestId('nav-identity').click();
  await expect(page.getByTestId('identity-fingerprint')).toBeVisible();
  expect(await style(page, '.pubkey-row', 'display')).toBe('flex');

  // TOTP enrolment on the account page (features/totp/totp.css).
  await page.getByTestId('nav-account').click();
  await page.getByTestId('account-totp-enrol').click();
  await page.getByTestId('totp-begin').click();
  await expect(page.getByTestId('totp-secret')).toBeVisible();
  expect(await style(page, '[data-testid="totp-secret"]', 'display')).toBe('block');
});
