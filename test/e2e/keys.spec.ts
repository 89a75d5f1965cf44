/**
 * Issue 12, customer-managed keys, through the real UI and core (`airlock serve`):
 *
 * - a genesis ceremony 3-of-5 on the full-screen ceremony screen: the nonce shown in groups, every
 *   step acknowledged by the person of its role (the administrator, a witness, each officer), one
 *   officer's share sealed with a passphrase; each officer sees the fingerprint first and their
 *   share only after acknowledging, and takes it as a .txt file; the transcript names no share;
 * - seal, then an unseal with three shares (pasted, and one from its file with its passphrase):
 *   a mistyped share, a re-armored share with altered key bytes (a well-formed but wrong share)
 *   and a duplicated one are each refused in the core's words, the collected count staying 2 of 3;
 * - a KEK rotation of `models`: the Keys page then shows v2;
 * - verify-shares with the two officers who did not unseal and the sealed share (from its file):
 *   each valid, the set opens the root; the ceremonies list then holds four completed ceremonies,
 *   each with its transcript;
 * - a downloaded transcript verifies in the page's verifier, and an edited copy does not;
 * - a reshare asks for a second person: the approval request is filed, and no ceremony opens;
 * - axe (WCAG 2.1 A/AA, serious and critical) on the ceremony screen at an officer's step with the
 *   share shown and at an unseal refusal, and on the Keys page with a hierarchy (test/e2e/a11y.spec.ts
 *   visits the Keys page before genesis, as every view of the registry).
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import AxeBuilder from '@axe-core/playwright';
import type { Download, Page } from '@playwright/test';
import { expect, firstRunSetup, test } from './fixtures';

const OFFICERS = ['Olivia', 'Oscar', 'Otto', 'Odile', 'Owen'];
const WITNESS = 'Wendy';
const PASSPHRASE = 'olivia keeps this passphrase to herself';

// The page's globals, typed just enough (the test project compiles without the DOM library).
interface PageGlobals {
  print(): void;
  document: { body: { classList: { contains(c: string): boolean } } };
  printedShareOnly?: boolean;
}

/** axe on the page as it is: its serious and critical WCAG 2.1 A/AA violations, as text. */
async function axe(page: Page, where: string): Promise<string[]> {
  const r = await new AxeBuilder({ page }).withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']).analyze();
  return r.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `[${where}] ${v.id}: ${v.help} — ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
}

async function saved(page: Page, click: () => Promise<void>, dir: (name: string) => string): Promise<{ name: string; text: string }> {
  const p = page.waitForEvent('download');
  await click();
  const d: Download = await p;
  const file = dir(d.suggestedFilename());
  await d.saveAs(file);
  return { name: d.suggestedFilename(), text: fs.readFileSync(file, 'utf8') };
}

/** Acknowledge the screen's current step as `by` (the only one offered, or chosen among several). */
async function acknowledge(page: Page, step: number, by: string): Promise<void> {
  const now = page.getByTestId('keys-now');
  await expect(now).toHaveAttribute('data-step', String(step));
  await expect(now).toHaveAttribute('data-auto', 'false');
  await expect(page.getByTestId(`keys-step-${step}`)).toHaveAttribute('data-state', 'current');
  await page.getByTestId('keys-ack-by').selectOption(by);
  await page.getByTestId('keys-ack').click();
  await expect(page.getByTestId(`keys-step-${step}`)).toHaveAttribute('data-state', 'done');
  await expect(page.getByTestId(`keys-step-${step}`)).toContainText(`done by ${by}`);
}

/**
 * A well-formed share whose key bytes were altered: the armor's payload re-encoded with a fresh
 * checksum (test/e2e knows the armor format: headers, a blank line, base64 in 64 columns, `=` and
 * 16 hex of SHA-256), so only the core's check of the share itself can refuse it.
 */
function rearmoredWithOtherBytes(armored: string): string {
  const lines = armored.split('\n');
  const blank = lines.indexOf('');
  const sumAt = lines.findIndex((l) => l.startsWith('=') && l.length === 17);
  const payload = JSON.parse(Buffer.from(lines.slice(blank + 1, sumAt).join(''), 'base64').toString('utf8')) as { share: string };
  const bytes = Buffer.from(payload.share, 'base64');
  bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 0x5a;
  const body = Buffer.from(JSON.stringify({ ...payload, share: bytes.toString('base64') }), 'utf8');
  const text = body.toString('base64');
  const out = lines.slice(0, blank + 1);
  for (let i = 0; i < text.length; i += 64) out.push(text.slice(i, i + 64));
  out.push(`=${createHash('sha256').update(body).digest('hex').slice(0, 16)}`, ...lines.slice(sumAt + 1));
  return out.join('\n');
}

/** Give one share on the unseal screen; expects it accepted with `collected` in. */
async function giveShare(page: Page, share: { text?: string; file?: string }, collected: number, passphrase?: string): Promise<void> {
  if (share.file) await page.getByTestId('keys-unseal-share-file').setInputFiles(share.file);
  else await page.getByTestId('keys-unseal-share-text').fill(share.text!);
  await expect(page.getByTestId('keys-unseal-share-text')).toHaveValue(/BEGIN AIRLOCK ROOT KEY SHARE/);
  if (passphrase) await page.getByTestId('keys-unseal-share-passphrase').fill(passphrase);
  await page.getByTestId('keys-unseal-add').click();
  await expect(page.getByTestId('keys-unseal-accepted')).toBeVisible({ timeout: 30_000 });
  await expect(page.getByTestId('keys-unseal-progress')).toHaveAttribute('data-collected', String(collected));
}

/** Give a share that must be refused: the core's message is shown, and the count stays. */
async function refusedShare(page: Page, text: string, collected: number, code: string, says: RegExp): Promise<void> {
  await page.getByTestId('keys-unseal-share-text').fill(text);
  await page.getByTestId('keys-unseal-add').click();
  await expect(page.getByTestId('keys-unseal-refusal')).toBeVisible({ timeout: 30_000 });
  await expect(page.getByTestId('keys-unseal-refusal')).toContainText(`Nothing already collected was lost: still ${collected} of 3 shares.`);
  await expect(page.getByTestId('keys-unseal-progress')).toHaveAttribute('data-collected', String(collected));
  await expect(page.getByTestId('keys-unseal-error')).toHaveAttribute('data-code', code);
  await expect(page.getByTestId('keys-unseal-error')).toContainText(says);
}

test('keys: genesis 3-of-5, seal, unseal with refusals that lose nothing, a models KEK rotation, transcripts verified', async ({ app }, testInfo) => {
  test.setTimeout(360_000);
  const { page } = app;
  const out = (name: string) => testInfo.outputPath(name);
  await firstRunSetup(page);
  // A long step-up window: opening ceremonies and their key operations need a recent step-up.
  await page.getByTestId('nav-account').click();
  await page.getByTestId('settings-stepup').fill('120');
  await page.getByTestId('settings-submit').click();
  await expect(page.getByTestId('settings-note')).toHaveText('Saved.');

  // ---------- genesis ----------
  await page.getByTestId('nav-keys').click();
  await expect(page.getByTestId('keys-uninitialised')).toBeVisible();
  // Airlock's own keys exist before any genesis (console domain, sealed under the vault key): fingerprints only.
  await expect(page.getByTestId('keys-own-ssh.identity')).toContainText(/SHA256:[A-Za-z0-9+/]{43}/);
  await expect(page.getByTestId('keys-own-audit.signing')).toContainText('current');
  // Rotating the audit signing key (step-up fresh): v2 current, v1 retired with its date, the handover in the trail.
  const v1 = (await page.getByTestId('keys-own-audit.signing').locator('td.mono').textContent())!;
  await page.getByTestId('keys-own-rotate-audit.signing').click();
  await expect(page.getByTestId('keys-own-rotate-dialog')).toContainText('signed by the current key');
  await page.getByTestId('keys-own-rotate-confirm').click();
  await expect(page.getByTestId('keys-own-rotated')).toContainText('version 1 → 2');
  await expect(page.getByTestId('keys-own-audit.signing')).toHaveAttribute('data-version', '2');
  await expect(page.getByTestId('keys-own-audit.signing')).toContainText('current');
  await expect(page.getByTestId('keys-own-audit.signing-v1')).toContainText('retired');
  await expect(page.getByTestId('keys-own-audit.signing-v1')).toContainText(v1);
  await expect(page.getByTestId('keys-own-rotate-ssh.identity')).toHaveCount(0);
  await expect(page.getByTestId('keys-ca-none')).toBeVisible();
  await expect(page.getByTestId('keys-begin-unseal')).toHaveCount(0);
  await page.getByTestId('keys-begin-genesis').click();
  await page.getByTestId('keys-begin-officers').fill(OFFICERS.join('\n'));
  await page.getByTestId('keys-begin-threshold').fill('3');
  await page.getByTestId('keys-begin-witnesses').fill(WITNESS);
  await expect(page.getByTestId('keys-begin-quorum')).toContainText('3 of 5');
  await page.getByTestId('keys-begin-submit').click();

  const screen = page.getByTestId('keys-ceremony-screen');
  await expect(screen).toHaveAttribute('data-kind', 'genesis');
  await expect(screen).toHaveAttribute('data-status', 'open');
  const nonce = (await page.getByTestId('keys-nonce').getAttribute('data-nonce'))!;
  expect(nonce).toMatch(/^[0-9a-f]{32}$/);
  const groups = await page.locator('.keys-nonce-group').allInnerTexts();
  expect(groups).toHaveLength(8);
  expect(groups.join('')).toBe(nonce);
  // The script: open, witness, Airlock's operation, one step per officer, the witness closes.
  await expect(page.getByTestId('keys-script').locator('li')).toHaveCount(4 + OFFICERS.length);

  await acknowledge(page, 1, 'admin');
  await acknowledge(page, 2, WITNESS);
  await expect(page.getByTestId('keys-now')).toHaveAttribute('data-auto', 'true');
  await page.getByTestId(`keys-pass-${OFFICERS[0]}-a`).fill(PASSPHRASE);
  await page.getByTestId(`keys-pass-${OFFICERS[0]}-b`).fill(PASSPHRASE);
  await page.getByTestId('keys-op-run').click();
  await expect(page.getByTestId('keys-step-3')).toHaveAttribute('data-state', 'done', { timeout: 60_000 });
  await expect(page.getByTestId('keys-step-3')).toContainText('done by Airlock');

  const shares: Record<string, { file: string; text: string; fingerprint: string }> = {};
  const violations: string[] = [];
  for (const [i, officer] of OFFICERS.entries()) {
    const step = 4 + i;
    await expect(page.getByTestId('keys-now')).toHaveAttribute('data-step', String(step));
    const fp = (await page.getByTestId('keys-officer-fingerprint').innerText()).trim();
    expect(fp).not.toBe('not known on this screen');
    expect(fp.length).toBeGreaterThan(8);
    // Only this officer may acknowledge their own step, and no share is on screen before they do.
    await expect(page.getByTestId('keys-ack-by').locator('option')).toHaveText([officer]);
    await expect(page.locator('[data-testid^="keys-share-"][data-officer]')).toHaveCount(0);
    await acknowledge(page, step, officer);
    const panel = page.getByTestId(`keys-share-${officer}`);
    await expect(panel).toBeVisible();
    // One person at the screen at a time: the next step waits until the share is hidden.
    await expect(page.getByTestId('keys-now')).toHaveCount(0);
    await expect(page.getByTestId('keys-next-waits')).toContainText(`Step ${step + 1} comes next`);
    await expect(panel.getByTestId('keys-share-fingerprint')).toHaveText(fp);
    await expect(panel.getByTestId('keys-share-armor')).toContainText('-----BEGIN AIRLOCK ROOT KEY SHARE-----');
    await expect(panel.getByTestId('keys-share-armor')).toContainText(`Officer: ${officer}`);
    await expect(panel).toContainText(i === 0 ? 'sealed with your passphrase' : 'not sealed by a passphrase');
    const file = await saved(page, () => panel.getByTestId('keys-share-download').click(), out);
    expect(file.name).toMatch(new RegExp(`^share-${officer}-\\d+-cer-[0-9a-f]{16}\\.txt$`));
    expect(file.text).toContain(`Officer: ${officer}`);
    // What the officer compares: their passphrase sealing key's fingerprint (named in the file), or
    // for a share not sealed to a passphrase the start of the saved file's SHA-256.
    if (i === 0) expect(file.text).toContain(`fingerprint ${fp}`);
    else expect(fp).toBe(createHash('sha256').update(fs.readFileSync(out(file.name))).digest('hex').slice(0, 16).match(/.{4}/g)!.join('-'));
    shares[officer] = { file: out(file.name), text: file.text, fingerprint: fp };
    if (i === 0) {
      violations.push(...(await axe(page, 'ceremony screen: an officer’s share')));
      // Print prints the share alone: the page marks itself for the print stylesheet while printing.
      await page.evaluate(() => {
        const g = globalThis as unknown as PageGlobals;
        g.print = () => {
          g.printedShareOnly = g.document.body.classList.contains('keys-printing');
        };
      });
      await panel.getByTestId('keys-share-print').click();
      expect(await page.evaluate(() => (globalThis as unknown as PageGlobals).printedShareOnly)).toBe(true);
    }
    await panel.getByTestId('keys-share-hide').click();
    await expect(panel).toHaveCount(0);
  }
  // Five distinct shares, one per officer.
  expect(new Set(Object.values(shares).map((s) => s.text)).size).toBe(5);
  await acknowledge(page, 4 + OFFICERS.length, WITNESS);
  await expect(screen).toHaveAttribute('data-status', 'completed');
  await expect(page.getByTestId('keys-finished')).toHaveAttribute('data-status', 'completed');
  const genesisTranscript = await saved(page, () => page.getByTestId('keys-screen-transcript').click(), out);
  expect(genesisTranscript.name).toMatch(/^transcript-genesis-cer-[0-9a-f]{16}\.json$/);
  expect(genesisTranscript.text).toContain(nonce);
  // Never a share: no line of any share's body is in the transcript.
  for (const s of Object.values(shares)) {
    const body = s.text.split('\n').filter((l) => /^[A-Za-z0-9+/=]{40,}$/.test(l));
    expect(body.length).toBeGreaterThan(0);
    for (const l of body) expect(genesisTranscript.text).not.toContain(l);
  }
  await page.getByTestId('keys-screen-close').click();
  await expect(screen).toHaveCount(0);

  // The hierarchy: 3 of 5, the five officers, every domain at v1, the root CA.
  await expect(page.getByTestId('keys-quorum')).toHaveText('3 of 5 officers');
  await expect(page.getByTestId('keys-officers').locator('tbody tr')).toHaveCount(5);
  for (const o of OFFICERS) await expect(page.getByTestId('keys-officers')).toContainText(o);
  await expect(page.getByTestId('keys-root-kcv')).toHaveText(/^[0-9a-f]{16}$/);
  for (const d of ['models', 'datasets', 'host-secrets', 'console']) await expect(page.getByTestId(`keys-kek-version-${d}`)).toHaveText('v1');
  await expect(page.getByTestId('keys-ca-fingerprint')).not.toBeEmpty();
  const caPem = await saved(page, () => page.getByTestId('keys-ca-download').click(), out);
  expect(caPem.text).toContain('-----BEGIN CERTIFICATE-----');

  // ---------- seal ----------
  await expect(page.getByTestId('keys-seal-state')).toHaveAttribute('data-sealed', 'false');
  await page.getByTestId('keys-seal').click();
  await page.getByTestId('keys-seal-confirm').click();
  await expect(page.getByTestId('keys-seal-dialog')).toHaveCount(0);
  await expect(page.getByTestId('keys-seal-state')).toHaveAttribute('data-sealed', 'true');
  await expect(page.getByTestId('keys-rotate-models')).toHaveCount(0);

  // ---------- unseal with three of the shares; three refusals before the third ----------
  await page.getByTestId('keys-begin-unseal').click();
  await page.getByTestId('keys-begin-witnesses').fill(WITNESS);
  await page.getByTestId('keys-begin-submit').click();
  await expect(screen).toHaveAttribute('data-kind', 'unseal');
  await acknowledge(page, 1, 'admin');
  await expect(page.getByTestId('keys-unseal-progress')).toHaveAttribute('data-collected', '0');
  await expect(page.getByTestId('keys-unseal-progress')).toHaveAttribute('data-threshold', '3');
  await giveShare(page, { text: shares.Oscar!.text }, 1);
  await giveShare(page, { file: shares.Olivia!.file }, 2, PASSPHRASE);
  await expect(page.getByTestId('keys-unseal-progress')).toContainText('2 of 3 shares');
  // A character mistyped from the paper copy.
  const otto = shares.Otto!.text;
  const bodyLine = otto.split('\n').findIndex((l) => /^[A-Za-z0-9+/]{64}$/.test(l));
  const lines = otto.split('\n');
  lines[bodyLine] = `${lines[bodyLine]!.slice(0, 10)}${lines[bodyLine]![10] === 'A' ? 'B' : 'A'}${lines[bodyLine]!.slice(11)}`;
  await refusedShare(page, lines.join('\n'), 2, 'PARSE_ERROR', /checksum line does not match/);
  violations.push(...(await axe(page, 'ceremony screen: a refused share')));
  // A well-formed share with other key bytes.
  await refusedShare(page, rearmoredWithOtherBytes(otto), 2, 'INVALID_INPUT', /Otto.*does not match what this hierarchy recorded/);
  // A share already given.
  await refusedShare(page, shares.Oscar!.text, 2, 'CONFLICT', /Oscar.*already given/);
  await expect(page.getByTestId('keys-unseal-progress')).toContainText('2 of 3 shares');
  // The third share opens the hierarchy: the closing step says so.
  await page.getByTestId('keys-unseal-share-text').fill(otto);
  await page.getByTestId('keys-unseal-add').click();
  await expect(page.getByTestId('keys-step-2')).toHaveAttribute('data-state', 'done');
  await expect(page.getByTestId('keys-unseal-done')).toContainText('The hierarchy is unsealed: 3 of 3 shares, from Oscar, Olivia, Otto.');
  await acknowledge(page, 3, WITNESS);
  await expect(screen).toHaveAttribute('data-status', 'completed');
  await page.getByTestId('keys-screen-close').click();
  await expect(page.getByTestId('keys-seal-state')).toHaveAttribute('data-sealed', 'false');
  for (const o of ['Oscar', 'Olivia', 'Otto']) await expect(page.getByTestId('keys-unsealed-by')).toContainText(o);

  // ---------- rotate the models KEK ----------
  await page.getByTestId('keys-rotate-models').click();
  await page.getByTestId('keys-begin-witnesses').fill(WITNESS);
  await page.getByTestId('keys-begin-submit').click();
  await expect(screen).toHaveAttribute('data-kind', 'rotate-kek');
  await acknowledge(page, 1, 'admin');
  await page.getByTestId('keys-op-run').click();
  await expect(page.getByTestId('keys-step-2')).toHaveAttribute('data-state', 'done', { timeout: 60_000 });
  await expect(page.getByTestId('keys-result')).toContainText('version 2');
  await acknowledge(page, 3, WITNESS);
  await expect(screen).toHaveAttribute('data-status', 'completed');
  await page.getByTestId('keys-screen-close').click();
  await expect(page.getByTestId('keys-kek-version-models')).toHaveText('v2');
  await expect(page.getByTestId('keys-kek-models-v2')).toBeVisible();
  await expect(page.getByTestId('keys-kek-version-datasets')).toHaveText('v1');

  // ---------- verify shares: the other two officers' and a sealed one; the set opens the root ----------
  await page.getByTestId('keys-begin-verify-shares').click();
  await page.getByTestId('keys-begin-witnesses').fill(WITNESS);
  await page.getByTestId('keys-begin-submit').click();
  await expect(screen).toHaveAttribute('data-kind', 'verify-shares');
  await acknowledge(page, 1, 'admin');
  await page.getByTestId('keys-verify-share-0-text').fill(shares.Odile!.text);
  await page.getByTestId('keys-verify-share-more').click();
  await page.getByTestId('keys-verify-share-1-text').fill(shares.Owen!.text);
  await page.getByTestId('keys-verify-share-more').click();
  await page.getByTestId('keys-verify-share-2-file').setInputFiles(shares.Olivia!.file);
  await expect(page.getByTestId('keys-verify-share-2-text')).toHaveValue(/Officer: Olivia/);
  await page.getByTestId('keys-verify-share-2-passphrase').fill(PASSPHRASE);
  await page.getByTestId('keys-verify-shares-run').click();
  await expect(page.getByTestId('keys-step-2')).toHaveAttribute('data-state', 'done', { timeout: 60_000 });
  await expect(page.getByTestId('keys-verify-report')).toHaveAttribute('data-combines', 'true');
  await expect(page.getByTestId('keys-verify-report').locator('li')).toHaveText([/^valid: .*Odile/, /^valid: .*Owen/, /^valid: .*Olivia/]);
  await expect(page.getByTestId('keys-result')).toContainText('3 of 3 shares valid');
  await acknowledge(page, 3, WITNESS);
  await expect(screen).toHaveAttribute('data-status', 'completed');
  await page.getByTestId('keys-screen-close').click();
  // Verifying opened nothing: the hierarchy is as it was.
  await expect(page.getByTestId('keys-seal-state')).toHaveAttribute('data-sealed', 'false');

  // ---------- the ceremonies list: four completed, each with its transcript ----------
  const rows = page.locator('[data-testid^="keys-ceremony-cer-"]');
  await expect(rows).toHaveCount(4);
  await expect(rows.and(page.locator('[data-status="completed"][data-transcript="true"]'))).toHaveCount(4);
  await expect(rows.nth(0)).toHaveAttribute('data-kind', 'verify-shares');
  await expect(rows.nth(1)).toHaveAttribute('data-kind', 'rotate-kek');
  await expect(rows.nth(2)).toHaveAttribute('data-kind', 'unseal');
  await expect(rows.nth(3)).toHaveAttribute('data-kind', 'genesis');
  const genesisId = (await rows.nth(3).getAttribute('data-testid'))!.replace('keys-ceremony-', '');
  await page.getByTestId(`keys-ceremony-open-${genesisId}`).click();
  await expect(page.getByTestId('keys-detail-status')).toHaveText('completed');
  await expect(page.getByTestId('keys-detail-steps').locator('tbody tr')).toHaveCount(4 + OFFICERS.length);
  await page.getByTestId('keys-detail-close').click();
  const rotateId = (await rows.nth(1).getAttribute('data-testid'))!.replace('keys-ceremony-', '');
  const rotateTranscript = await saved(page, () => page.getByTestId(`keys-ceremony-transcript-${rotateId}`).click(), out);
  expect(rotateTranscript.name).toBe(`transcript-rotate-kek-${rotateId}.json`);

  // ---------- the verifier: the downloaded files verify, an edited copy does not ----------
  await page.getByTestId('keys-verify-file').setInputFiles(out(rotateTranscript.name));
  await page.getByTestId('keys-verify-file-submit').click();
  await expect(page.getByTestId('keys-verify-result')).toHaveAttribute('data-ok', 'true');
  await expect(page.getByTestId('keys-verify-kind')).toHaveText('rotate-kek');
  await page.getByTestId('keys-verify-text').fill(genesisTranscript.text);
  await page.getByTestId('keys-verify-submit').click();
  await expect(page.getByTestId('keys-verify-result')).toHaveAttribute('data-ok', 'true');
  await expect(page.getByTestId('keys-verify-kind')).toHaveText('genesis');
  expect(genesisTranscript.text).toContain(WITNESS);
  await page.getByTestId('keys-verify-text').fill(genesisTranscript.text.replace(WITNESS, 'Mallory'));
  await page.getByTestId('keys-verify-submit').click();
  await expect(page.getByTestId('keys-verify-result')).toHaveAttribute('data-ok', 'false');
  await expect(page.getByTestId('keys-verify-problems')).not.toBeEmpty();

  // ---------- reshare goes through the two-person rule: a request is filed, no ceremony opens ----------
  await page.getByTestId('keys-begin-reshare').click();
  await page.getByTestId('keys-begin-officers').fill(OFFICERS.slice(0, 4).join('\n'));
  await page.getByTestId('keys-begin-threshold').fill('3');
  await page.getByTestId('keys-begin-witnesses').fill(WITNESS);
  await page.getByTestId('keys-begin-submit').click();
  await expect(page.getByTestId('approval-dialog')).toBeVisible();
  await page.getByTestId('approval-reason').fill('Owen leaves the organisation');
  await page.getByTestId('approval-submit').click();
  await expect(page.getByTestId('approval-dialog')).toHaveCount(0);
  await expect(page.getByTestId('keys-begin-error')).toHaveAttribute('data-code', 'APPROVAL_REQUIRED');
  await expect(page.getByTestId('keys-begin-error')).toContainText(/two-person request #\d+/);
  await page.getByTestId('keys-begin-go-approvals').click();
  await expect(page.getByTestId('nav-approvals')).toHaveAttribute('aria-current', 'page');
  await page.getByTestId('nav-keys').click();
  await expect(rows).toHaveCount(4);
  await expect(page.getByTestId('keys-open-ceremony')).toHaveCount(0);

  // The palette offers sealing while the hierarchy is unsealed; it asks first.
  await page.keyboard.press('Control+k');
  await page.keyboard.type('seal the key');
  await page.keyboard.press('Enter');
  await expect(page.getByTestId('keys-seal-dialog')).toBeVisible();
  await page.getByTestId('keys-seal-cancel').click();
  await expect(page.getByTestId('keys-seal-state')).toHaveAttribute('data-sealed', 'false');
  violations.push(...(await axe(page, 'Keys page with a hierarchy')));
  expect(violations, violations.join('\n')).toEqual([]);
});
