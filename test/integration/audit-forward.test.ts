import Database from 'better-sqlite3';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DB_FILE } from '../../electron/core/app';
import { ADMIN, testCore, type TestCore } from '../support/core';
import { startReceiver, waitFor } from '../support/syslog';

/** Syslog forwarding against real receivers: TCP and TLS sockets parsing RFC 6587 octet-counted RFC 5424. */
const FAST = { backoffMinMs: 50, backoffMaxMs: 300, pollMs: 100, graceMs: 150, flushMs: 1500, connectTimeoutMs: 2000 };
const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

let certDir: string;
const openssl = (args: string[]) => {
  const r = spawnSync('openssl', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')}: ${r.stderr}`);
};
beforeAll(() => {
  certDir = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-tls-'));
  // A self-signed receiver certificate for 127.0.0.1, and an unrelated one, both made by the real openssl.
  for (const name of ['receiver', 'stranger']) {
    openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2', '-subj', `/CN=${name}`,
      '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-keyout', path.join(certDir, `${name}.key`), '-out', path.join(certDir, `${name}.crt`)]);
  }
});
afterAll(() => fs.rmSync(certDir, { recursive: true, force: true }));

async function core(dir?: string): Promise<TestCore> {
  const t = await testCore({ auditForwarding: FAST, ...(dir ? { dataDir: dir } : {}) });
  cleanup.push(() => t.close());
  return t;
}

function chainRows(dir: string) {
  const db = new Database(path.join(dir, DB_FILE), { readonly: true });
  try {
    return db.prepare('SELECT seq, body, prev_hash AS prevHash, hash FROM audit_events ORDER BY seq').all() as Array<{ seq: number; body: string; prevHash: string; hash: string }>;
  } finally {
    db.close();
  }
}

describe('audit forwarding to syslog', () => {
  it('sends every event as RFC 5424 with seq and chain hash, so the receiver can re-verify the chain', async () => {
    const rx = await startReceiver();
    cleanup.push(() => rx.stop());
    const t = await core();
    const c = t.client();
    await c.ok('session:setup', ADMIN);
    const status = await c.ok('audit:setForwarding', { host: '127.0.0.1', port: rx.port, tls: false, fromSeq: 1 });
    expect(status).toMatchObject({ enabled: true, host: '127.0.0.1', port: rx.port, tls: false });
    await c.call('hosts:remove', { name: 'nope' }); // an error outcome
    for (let i = 0; i < 5; i++) await c.ok('hosts:list', {});
    const head = () => chainRows(t.dir).at(-1)!.seq;
    await waitFor(() => new Set(rx.seqs()).size >= head(), 10_000, 'all events at the receiver');
    expect(rx.errors).toEqual([]);

    const rows = chainRows(t.dir);
    const bySeq = new Map(rx.records.map((r) => [Number(r.sd.seq), r]));
    let prev = '0'.repeat(64);
    for (const row of rows) {
      const r = bySeq.get(row.seq)!;
      expect(r, `seq ${row.seq}`).toBeDefined();
      expect(r).toMatchObject({ version: 1, app: 'airlock', sdId: 'airlock@32473', msg: row.body, procid: String(process.pid) });
      expect(r.sd).toMatchObject({ seq: String(row.seq), hash: row.hash, prevHash: row.prevHash });
      const e = JSON.parse(r.msg) as { channel: string; outcome: string; ts: string; actor: string };
      expect(r.sd).toMatchObject({ channel: e.channel, outcome: e.outcome, actor: e.actor });
      expect(r.timestamp).toBe(e.ts);
      expect(r.pri).toBe(13 * 8 + (e.outcome === 'refused' ? 4 : e.outcome === 'error' ? 5 : 6));
      // The receiver alone can re-verify the chain from the records.
      expect(r.sd.prevHash).toBe(prev);
      expect(crypto.createHash('sha256').update(r.sd.prevHash + r.msg, 'utf8').digest('hex')).toBe(r.sd.hash);
      prev = r.sd.hash!;
    }
    expect(rx.records.some((r) => r.pri === 13 * 8 + 5)).toBe(true);
  });

  it('keeps working while the receiver is down and resumes without a gap when it returns', async () => {
    let rx = await startReceiver();
    const port = rx.port;
    cleanup.push(() => rx.stop());
    const t = await core();
    const c = t.client();
    await c.ok('session:setup', ADMIN);
    await c.ok('audit:setForwarding', { host: '127.0.0.1', port, tls: false, fromSeq: 1 });
    for (let i = 0; i < 3; i++) await c.ok('hosts:list', {});
    const head = () => chainRows(t.dir).at(-1)!.seq;
    await waitFor(() => new Set(rx.seqs()).size >= head(), 10_000, 'first events');
    const before = rx.records.length;

    await rx.stop();
    // Actions are never blocked or failed by forwarding.
    for (let i = 0; i < 20; i++) expect((await c.call('hosts:list', {})).ok).toBe(true);
    let down = await c.ok('audit:getForwarding', {});
    for (let i = 0; down.connected; i++) {
      if (i > 200) throw new Error('the forwarder did not notice the receiver went down');
      await new Promise((r) => setTimeout(r, 25));
      down = await c.ok('audit:getForwarding', {});
    }
    for (let i = 0; i < 10; i++) {
      await new Promise((r) => setTimeout(r, 40)); // refused reconnects, with back-off
      down = await c.ok('audit:getForwarding', {});
      expect(down.connected).toBe(false);
    }
    expect(down.forwardedSeq).toBeLessThan(head());
    expect(down.lastError).toMatch(/ECONNREFUSED/);

    const again = await startReceiver({ port });
    const seen = new Set<number>(rx.seqs());
    rx = again;
    for (let i = 0; i < 5; i++) await c.ok('hosts:list', {});
    await waitFor(() => {
      for (const s of again.seqs()) seen.add(s);
      return seen.size >= head();
    }, 15_000, 'the backlog after the receiver returned');
    const all = [...seen].sort((a, b) => a - b);
    expect(all[0]).toBe(1);
    expect(all.at(-1)).toBe(all.length); // 1..n with no gap
    expect(before).toBeGreaterThan(0);
    const up = await c.ok('audit:getForwarding', {});
    expect(up.connected).toBe(true);
  });

  it('resumes in a new process from the last delivered sequence number (kept in meta)', async () => {
    const rx = await startReceiver();
    cleanup.push(() => rx.stop());
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-fwd-'));
    cleanup.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    const a = await testCore({ dataDir: dir, auditForwarding: FAST });
    const ca = a.client();
    await ca.ok('session:setup', ADMIN);
    await ca.ok('audit:setForwarding', { host: '127.0.0.1', port: rx.port, tls: false, fromSeq: 1 });
    for (let i = 0; i < 4; i++) await ca.ok('hosts:list', {});
    await a.close(); // delivers what is pending, records how far
    const firstRun = rx.seqs();
    const delivered = Number(new Database(path.join(dir, DB_FILE), { readonly: true }).prepare("SELECT value FROM meta WHERE key = 'audit.forwarded_seq'").pluck().get());
    // Normally everything (a clean close confirms it); never more than was received.
    expect(delivered, `first run ${firstRun.join(',')}`).toBeGreaterThan(0);
    expect(delivered).toBeLessThanOrEqual(Math.max(...firstRun));

    const b = await core(dir);
    const cb = b.client();
    await cb.ok('session:login', { name: ADMIN.admin, password: ADMIN.password });
    await cb.ok('hosts:list', {});
    const head = () => chainRows(dir).at(-1)!.seq;
    await waitFor(() => new Set(rx.seqs()).size >= head(), 10_000, 'second process events');
    const all = rx.seqs();
    // The new process resumes right after what was confirmed; nothing is missing.
    expect(all.slice(firstRun.length)[0]).toBe(delivered + 1);
    expect([...new Set(all)].sort((x, y) => x - y)).toEqual(Array.from({ length: head() }, (_, i) => i + 1));
  });

  it('forwards over TLS to a receiver whose CA is pinned, and refuses any other certificate', async () => {
    const key = fs.readFileSync(path.join(certDir, 'receiver.key'), 'utf8');
    const cert = fs.readFileSync(path.join(certDir, 'receiver.crt'), 'utf8');
    const rx = await startReceiver({ tls: { key, cert } });
    cleanup.push(() => rx.stop());
    const t = await core();
    const c = t.client();
    await c.ok('session:setup', ADMIN);

    // Pinned to a different CA: the handshake fails, nothing is sent, the actions still work.
    const stranger = fs.readFileSync(path.join(certDir, 'stranger.crt'), 'utf8');
    await c.ok('audit:setForwarding', { host: '127.0.0.1', port: rx.port, tls: true, caPem: stranger, fromSeq: 1 });
    expect((await c.call('hosts:list', {})).ok).toBe(true);
    await new Promise((r) => setTimeout(r, 300));
    const refused = await c.ok('audit:getForwarding', {});
    expect(refused).toMatchObject({ enabled: true, tls: true, connected: false });
    expect(refused.lastError ?? '').toMatch(/certificate|self.signed|verify/i);
    expect(rx.records).toHaveLength(0);

    // The right CA: everything arrives, over TLS.
    const s = await c.ok('audit:setForwarding', { host: '127.0.0.1', port: rx.port, tls: true, caPem: cert, fromSeq: 1 });
    expect(s.caFingerprint).toBe(new crypto.X509Certificate(cert).fingerprint256);
    for (let i = 0; i < 3; i++) await c.ok('hosts:list', {});
    const head = () => chainRows(t.dir).at(-1)!.seq;
    await waitFor(() => new Set(rx.seqs()).size >= head(), 10_000, 'events over TLS');
    expect(rx.errors).toEqual([]);
    expect(new Set(rx.seqs()).size).toBe(head());

    // Off: nothing more is sent.
    await c.ok('audit:setForwarding', { off: true });
    const n = rx.records.length;
    await c.ok('hosts:list', {});
    await new Promise((r) => setTimeout(r, 300));
    expect(rx.records.length).toBe(n);
    expect(await c.ok('audit:getForwarding', {})).toMatchObject({ enabled: false, connected: false });
  });

  it('refuses a CA that is not a certificate, and a CA without TLS', async () => {
    const t = await core();
    const c = t.client();
    await c.ok('session:setup', ADMIN);
    expect(await c.call('audit:setForwarding', { host: '127.0.0.1', port: 6514, tls: true, caPem: 'not a pem' })).toMatchObject({ ok: false, error: { code: 'INVALID_INPUT' } });
    const cert = fs.readFileSync(path.join(certDir, 'receiver.crt'), 'utf8');
    expect(await c.call('audit:setForwarding', { host: '127.0.0.1', port: 6514, tls: false, caPem: cert })).toMatchObject({ ok: false, error: { code: 'INVALID_INPUT' } });
    expect(await c.call('audit:setForwarding', { host: 'bad host; rm -rf /', port: 514, tls: false })).toMatchObject({ ok: false, error: { code: 'INVALID_INPUT' } });
  });
});
