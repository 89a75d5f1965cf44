/**
 * Attack test through the real UI: a hostile lab host (test/lab/gpu/hostile.ts) whose nvidia-smi,
 * hostname, os-release and login shell print escape sequences, C1 controls, bidi overrides, NUL,
 * very long strings and HTML, enrolled and scanned in the console; then HTML typed or imported
 * into every input the UI echoes back.
 *
 * Defences: React renders text, never markup (no dangerouslySetInnerHTML — a lint rule too); the
 * core's sanitiser strips terminal controls from host text and the renderer's safeText does it
 * again; the strict CSP would block an injected handler even if markup ever got through, which is
 * why the test looks for injected *elements*, not only for script effects. The terminal (xterm.js)
 * is the one place escape sequences are interpreted, and it must keep working.
 */
import type { Page } from '@playwright/test';
import { HOSTILE_SEQUENCES as S, HOSTILE_VISIBLE, labDown, labUp, setLoginText, type Lab } from '../lab/lab';
import { authorizeAirlock, enrolHost, expect, firstRunSetup, scanHost, test } from './fixtures';

const LAB_ID = 'e2ehostile';

/** Markup that would show up as an element (and try to run) if any view rendered HTML. */
const IMG = '<img src=x onerror="window.__pwned=1">';
const IMG_NOSPACE = '<img/src=x/onerror=window.__pwned=1>';
const SVG_NOSPACE = '<svg/onload=window.__pwned=1>';
const SCRIPT_NOSPACE = '<script>alert(1)</script>';

interface PageState {
  title: string;
  scripts: number;
  pwned: unknown;
  injected: string[];
  /** Text or attribute values, outside the terminal, holding an escape/control/bidi character. */
  rawControls: string[];
}

/**
 * Runs in the page: what an injection or a leaked control character would change there. Typed
 * loosely on purpose: the root tsconfig has no DOM library (core code must not see one).
 */
function inPage(): PageState {
  const g = globalThis as unknown as { document: any; Node: any; NodeFilter: any; __pwned?: unknown };
  const FORBIDDEN = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]/;
  const term = g.document.querySelector('[data-testid=terminal-screen]');
  const outside = (n: any) => !term || !term.contains(n);
  // Anywhere, the terminal included: the app renders no image but data: ones, no frame, and no
  // element with an inline handler; and the host's `<b>bold</b>` must not have become bold.
  const injected: string[] = Array.from(
    g.document.querySelectorAll('img:not([src^="data:"]), iframe, object, embed, *[onerror], *[onload], *[onclick]') as ArrayLike<any>,
  ).map((el) => String(el.outerHTML).slice(0, 120));
  for (const b of Array.from(g.document.querySelectorAll('b') as ArrayLike<any>)) if (b.textContent === 'bold') injected.push(String(b.outerHTML));
  const rawControls: string[] = [];
  const walker = g.document.createTreeWalker(g.document.body, g.NodeFilter.SHOW_TEXT | g.NodeFilter.SHOW_ELEMENT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    if (!outside(n)) continue;
    if (n.nodeType === g.Node.TEXT_NODE) {
      const t = String(n.data);
      if (FORBIDDEN.test(t)) rawControls.push(`text: ${JSON.stringify(t.slice(0, 120))}`);
    } else {
      for (const a of Array.from(n.attributes as ArrayLike<any>)) {
        const v = String(a.value);
        if (FORBIDDEN.test(v)) rawControls.push(`${String(n.tagName)}[${String(a.name)}]: ${JSON.stringify(v.slice(0, 120))}`);
      }
    }
  }
  return {
    title: String(g.document.title),
    scripts: Number(g.document.querySelectorAll('script').length),
    pwned: g.__pwned,
    injected,
    rawControls,
  };
}

const pageState = (page: Page): Promise<PageState> => page.evaluate(inPage);

test('a hostile host and hostile input render as inert text; the terminal still works on that host', async ({ app }) => {
  test.setTimeout(240_000);
  const { page } = app;
  const dialogs: string[] = [];
  page.on('dialog', (d) => {
    dialogs.push(`${d.type()}: ${d.message()}`);
    void d.dismiss();
  });

  let lab: Lab | null = null;
  try {
    lab = await labUp({ id: LAB_ID, hosts: 1, gpuProfiles: ['hostile'] });
    const host = lab.hosts[0]!;

    await firstRunSetup(page);
    const before = await pageState(page);
    expect(before.injected).toEqual([]);
    const clean = async (where: string) => {
      const now = await pageState(page);
      expect(now.title, `document title after ${where}`).toBe(before.title);
      expect(now.scripts, `script elements after ${where}`).toBe(before.scripts);
      expect(now.pwned, `window.__pwned after ${where}`).toBeUndefined();
      expect(now.injected, `injected elements after ${where}`).toEqual([]);
      expect(now.rawControls, `raw control characters on screen after ${where}`).toEqual([]);
      expect(dialogs, `dialogs after ${where}`).toEqual([]);
    };

    // ---- The hostile host: enrol, scan, look at everything it reported. ----
    await authorizeAirlock(page, lab);
    await enrolHost(page, host);
    await scanHost(page, host.name, 'reachable');
    await clean('scanning the hostile host (hosts table)');
    await page.getByTestId(`host-expand-${host.name}`).click();
    await expect(page.getByTestId(`gpu-table-${host.name}`)).toBeVisible();
    await clean('scanning the hostile host (host details)');
    // What is left is the text a reader should see, the HTML included, as text.
    await expect(page.getByTestId(`host-gpus-${host.name}`)).toContainText(HOSTILE_VISIBLE.gpu0Name);
    const detail = page.getByTestId(`host-detail-${host.name}`);
    await expect(detail).toContainText(HOSTILE_VISIBLE.hostnamePrefix);
    await expect(detail).toContainText(HOSTILE_VISIBLE.osPrefix);
    await expect(detail).toContainText(HOSTILE_VISIBLE.driverPrefix);
    await expect(page.getByTestId(`gpu-table-${host.name}`)).toContainText(HOSTILE_VISIBLE.gpu0UuidPrefix);
    await expect(page.getByTestId(`host-gpu-error-${host.name}`)).toContainText('WARNING: infoROM is corrupted');

    // Output nobody asked for (a hostile login shell): the scan fails and its error quotes it.
    await setLoginText(lab, host.name, `${S.csiClear}${S.oscTitle}Welcome ${IMG}${S.oscClipboard}${S.c1Csi}${S.bidiOverride}${S.nul}\n`);
    await scanHost(page, host.name, 'error');
    await expect(page.getByTestId(`host-scan-error-${host.name}`)).toContainText(`Welcome ${IMG}`);
    await expect(page.getByTestId(`host-error-${host.name}`)).toContainText(`Welcome ${IMG}`);
    await clean('a scan failing with hostile output');
    await setLoginText(lab, host.name, null);
    await scanHost(page, host.name, 'reachable');

    // ---- HTML typed into every input the UI echoes back. ----
    // Enrol dialog: the name and address fields refuse it in place.
    await page.getByTestId('enrol-open').click();
    await page.getByTestId('enrol-name').fill(IMG);
    await page.getByTestId('enrol-address').fill(IMG);
    await expect(page.getByTestId('enrol-dialog').locator('.warn-line')).toBeVisible();
    await expect(page.getByTestId('enrol-probe')).toBeDisabled();
    await clean('HTML in the enrol dialog');
    await page.getByTestId('enrol-cancel').click();

    // known_hosts whose skipped entries and reasons carry HTML (and escape sequences).
    await page.getByTestId('import-known-hosts').click();
    await page.getByTestId('import-file').setInputFiles({
      name: 'known_hosts',
      mimeType: 'text/plain',
      buffer: Buffer.from(
        `${IMG_NOSPACE} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n` +
          `gpu-x ${SVG_NOSPACE} AAAA${S.oscTitle}\n` +
          `${S.csiClear}${IMG}${S.bidiOverride}${S.zeroWidth}${S.c1Osc}\n`,
      ),
    });
    await page.getByTestId('import-submit').click();
    const result = page.getByTestId('import-result');
    await expect(result).toContainText('Added 0 · skipped 3');
    await expect(result).toContainText(IMG_NOSPACE);
    await expect(result).toContainText(`unknown key type ${SVG_NOSPACE}`);
    await clean('importing a hostile known_hosts');
    await page.getByTestId('import-close').click();

    // ssh_config with an HTML alias and an HTML HostName. (No `=` in the alias: ssh_config splits
    // patterns on it.) Nothing is added, so nothing could ever be connected to.
    await page.getByTestId('import-ssh-config').click();
    await page.getByTestId('import-file').setInputFiles({
      name: 'ssh_config',
      mimeType: 'text/plain',
      buffer: Buffer.from(`Host ${SCRIPT_NOSPACE}\n  HostName 10.254.254.254\n\nHost gpu-y\n  HostName ${SVG_NOSPACE}\n`),
    });
    await page.getByTestId('import-submit').click();
    await expect(result).toContainText('Added 0 · skipped 2');
    await expect(result).toContainText(SCRIPT_NOSPACE);
    await expect(result).toContainText(`HostName ${SVG_NOSPACE} is not a host name or address`);
    await clean('importing a hostile ssh_config');
    await page.getByTestId('import-close').click();

    // Users: a name that is markup is refused, and the refusal renders as text.
    await page.getByTestId('nav-users').click();
    await page.getByTestId('user-create-name').fill(IMG);
    await page.getByTestId('user-create-password').fill('a long enough password');
    // The form starts with no role (issue 11): choose one, so the refusal is about the name.
    await page.getByTestId('user-create-role-auditor').setChecked(true);
    await page.getByTestId('user-create-submit').click();
    await expect(page.getByTestId('user-create-error')).toHaveAttribute('data-code', 'INVALID_INPUT');
    await clean('HTML as a user name');

    // The audit trail records the imported text (short files are kept as they are, not digested):
    // the event's detail shows it as text. The core never sanitised it: only the renderer did.
    await page.getByTestId('nav-audit').click();
    await page.getByTestId('audit-filter-channel').fill('hosts:importKnownHosts');
    await page.getByTestId('audit-filter-apply').click();
    const importRow = page.locator('[data-testid=audit-row][data-channel="hosts:importKnownHosts"][data-outcome="pending"]').first();
    await importRow.click();
    await expect(page.locator('[data-testid=audit-detail] pre.params, .row-detail pre.params')).toContainText(IMG_NOSPACE);
    await clean('reading the audit detail of a hostile import');

    // ---- The terminal: the one place escape sequences are interpreted. It still works. ----
    await page.getByTestId('nav-terminal').click();
    await page.getByTestId('terminal-host').selectOption(host.name);
    await page.getByTestId('terminal-open').click();
    await expect(page.getByTestId('terminal-status')).toHaveAttribute('data-phase', 'open', { timeout: 30_000 });
    const rows = page.locator('[data-testid=terminal-screen] .xterm-rows');
    await expect(rows).not.toHaveText(/^\s*$/, { timeout: 20_000 });
    await page.getByTestId('terminal-screen').click();
    await page.keyboard.type('hostname; echo "marker-$((6*7))"\n');
    await expect(rows).toContainText('marker-42', { timeout: 20_000 });
    // The hostname's HTML is shown as characters in the terminal's cells, its sequences obeyed.
    await expect(rows).toContainText('evil-host<img src=x onerror=alert(1)>');
    // OSC 0 set xterm's title, OSC 52 asked for the clipboard: neither reaches the page.
    await clean('running `hostname` on the hostile host in the terminal');
    await page.getByTestId('terminal-close').click();
    await expect(page.getByTestId('terminal-status')).toHaveAttribute('data-phase', 'closed');
  } finally {
    await labDown({ id: LAB_ID });
  }
});
