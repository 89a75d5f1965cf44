/**
 * The audit view at scale: 1,000,000 chained events are written straight into a fresh data
 * directory's SQLite (with the trail's own recipe: RFC 8785 body, SHA-256 chain) before
 * `airlock serve` starts. The view must stay virtualised (a bounded number of rows in the DOM),
 * reach the far end at once, filter by channel and search targets on the server, and verify the
 * whole chain with a progress bar.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { canonical } from '../../electron/core/audit/canonical';
import { chainHash } from '../../electron/core/audit/chain';
import { ADMIN, cli, expect, startServe, stop, test } from './fixtures';

const N = 1_000_000;

/** Append n events after the current head, in one transaction. Returns the new head seq. */
function seed(dbFile: string, n: number): number {
  const db = new Database(dbFile);
  try {
    const head = db.prepare('SELECT seq, ts, hash FROM audit_events ORDER BY seq DESC LIMIT 1').get() as { seq: number; ts: string; hash: string };
    const insert = db.prepare('INSERT INTO audit_events (seq, ts, actor, channel, body, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?)');
    // Times stay in order: within the second after the head, before anything serve writes later.
    const t0 = Date.parse(head.ts);
    let prev = head.hash;
    let seq = head.seq;
    db.transaction(() => {
      for (let i = 0; i < n; i++) {
        seq++;
        const needle = i % 1000 === 0;
        const body = {
          seq,
          ts: new Date(t0 + Math.floor(i / 1000)).toISOString(),
          actor: i % 3 === 0 ? 'ops-bot' : 'admin',
          roles: ['admin'],
          session: null,
          shell: 'cli',
          channel: needle ? 'hosts:remove' : i % 2 ? 'hosts:scan' : 'hosts:list',
          phase: 'outcome',
          target: needle ? `Needle-${i}` : `gpu-node-${i % 512}`,
          params: { request: seq - 1 },
          outcome: i % 97 === 0 ? 'error' : 'ok',
          errorCode: i % 97 === 0 ? 'HOST_UNREACHABLE' : null,
        };
        const text = canonical(body);
        const hash = chainHash(prev, text);
        insert.run(seq, body.ts, body.actor, body.channel, text, prev, hash);
        prev = hash;
      }
    })();
    return seq;
  } finally {
    db.close();
  }
}

test('a million audit events: virtualised, far end reachable, filters, verify with progress', async ({ playwright, launchOptions }, testInfo) => {
  test.setTimeout(180_000);
  const dataDir = mkdtempSync(path.join(tmpdir(), 'airlock-e2e-audit-'));
  const logs: string[] = [];
  let child: Awaited<ReturnType<typeof startServe>>['child'] | null = null;
  let browser: Awaited<ReturnType<typeof playwright.chromium.launch>> | null = null;
  try {
    const init = await cli(dataDir, ['init', '--admin', ADMIN.name], { AIRLOCK_NEW_PASSWORD: ADMIN.password });
    expect(init.code, init.stderr).toBe(0);
    const started = Date.now();
    const headSeq = seed(path.join(dataDir, 'airlock.db'), N);
    testInfo.annotations.push({ type: 'seed', description: `${N} events in ${Date.now() - started} ms` });

    const served = await startServe(dataDir, logs);
    child = served.child;
    browser = await playwright.chromium.launch({ ...launchOptions, headless: true });
    const page = await (await browser.newContext({ viewport: { width: 1480, height: 900 } })).newPage();
    page.on('pageerror', (e) => logs.push(`[pageerror] ${e.message}`));
    page.on('console', (m) => logs.push(`[console.${m.type()}] ${m.text()}`));
    await page.goto(served.url);
    await page.getByTestId('login-name').fill(ADMIN.name);
    await page.getByTestId('login-password').fill(ADMIN.password);
    await page.getByTestId('login-submit').click();
    await expect(page.getByTestId('topbar-user')).toHaveText(ADMIN.name);

    await page.getByTestId('nav-audit').click();
    const count = page.getByTestId('audit-count');
    await expect(count).toHaveAttribute('data-rows', /\d+/);
    expect(Number(await count.getAttribute('data-rows'))).toBeGreaterThanOrEqual(headSeq);
    const rows = page.getByTestId('audit-table').locator('[data-testid=audit-row], [data-testid=audit-row-loading]');
    await expect(page.getByTestId('audit-row').first()).toBeVisible();
    expect(await rows.count()).toBeLessThan(100);

    // Fling to the far end: the oldest event (#1, the first-run setup) arrives, still virtualised.
    const scroller = page.getByTestId('audit-scroll');
    await scroller.evaluate((el) => {
      el.scrollTop = el.scrollHeight;
    });
    await expect(page.locator('[data-testid=audit-row][data-seq="1"]')).toBeVisible({ timeout: 15_000 });
    expect(await rows.count()).toBeLessThan(100);
    // …and the middle, in one jump.
    await scroller.evaluate((el) => {
      el.scrollTop = el.scrollHeight / 2;
    });
    // The rows of the far end stay in the DOM until React re-renders for the scroll event: wait for
    // the window to move rather than reading the first row at once (that read raced the re-render).
    const firstSeq = async () => Number(await page.getByTestId('audit-row').first().getAttribute('data-seq'));
    await expect.poll(firstSeq, { timeout: 15_000 }).toBeGreaterThan(headSeq * 0.4);
    await expect(page.getByTestId('audit-row-loading')).toHaveCount(0, { timeout: 15_000 });
    const midSeq = Number(await page.getByTestId('audit-row').first().getAttribute('data-seq'));
    expect(midSeq).toBeGreaterThan(headSeq * 0.4);
    expect(midSeq).toBeLessThan(headSeq * 0.6);
    expect(await rows.count()).toBeLessThan(100);

    // Server-side filter by channel, then a case-insensitive search on targets.
    await page.getByTestId('audit-filter-channel').fill('hosts:remove');
    await page.getByTestId('audit-filter-apply').click();
    const filtered = page.getByTestId('audit-row');
    await expect(filtered.first()).toHaveAttribute('data-channel', 'hosts:remove');
    await expect(page.locator('[data-testid=audit-row]:not([data-channel="hosts:remove"])')).toHaveCount(0);
    await page.getByTestId('audit-filter-channel').fill('');
    await page.getByTestId('audit-filter-target').fill('needle-99900');
    await page.getByTestId('audit-filter-apply').click();
    await expect(filtered.first()).toHaveAttribute('data-channel', 'hosts:remove', { timeout: 20_000 });
    const targets = await page.getByTestId('audit-row-target').allInnerTexts();
    expect(targets.length).toBeGreaterThan(0);
    for (const t of targets) expect(t.toLowerCase()).toContain('needle-99900');
    // Event detail shows the chain position.
    await filtered.first().click();
    await expect(page.getByTestId('audit-detail-chain')).toContainText(/prev [0-9a-f]{64}/);

    // Verify now: a progress bar while it runs, then the verdict for the whole chain.
    // (a string: the test's tsconfig has no DOM types)
    await page.evaluate(`new MutationObserver(() => {
      if (document.querySelector('[data-testid=audit-verify-progress]')) window.sawProgress = true;
    }).observe(document.body, { subtree: true, childList: true, attributes: true })`);
    await page.getByTestId('audit-verify').click();
    const verdict = page.getByTestId('audit-verify-result');
    await expect(verdict).toHaveAttribute('data-ok', 'true', { timeout: 60_000 });
    await expect(verdict).toContainText('Chain OK');
    expect(await page.evaluate('window.sawProgress === true')).toBe(true);
    expect(logs.filter((l) => l.startsWith('[pageerror]') || /Content Security Policy/.test(l))).toEqual([]);
  } finally {
    await testInfo.attach('console-and-core.log', { body: logs.join('\n'), contentType: 'text/plain' }).catch(() => {});
    await browser?.close().catch(() => {});
    if (child) await stop(child);
    rmSync(dataDir, { recursive: true, force: true });
  }
});
