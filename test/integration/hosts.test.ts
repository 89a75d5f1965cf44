import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authorizeKey, cutLink, killSshd, labDown, labUp, replaceHostKey, restoreLink, startSshd, type Lab, type LabHost } from '../lab/lab';
import { ADMIN, testCore, type TestClient, type TestCore } from '../support/core';

/**
 * The hosts slice end to end inside the core: real OpenSSH sshd hosts in the lab's
 * network namespaces, real SQLite files, the same composition root the shells use.
 */
const LAB_ID = 'ihosts';
const execFileAsync = promisify(execFile);
let lab: Lab;
let t: TestCore;
let admin: TestClient;
let h: LabHost[];

beforeAll(async () => {
  t = await testCore({ sshTimeoutMs: 4000 });
  admin = t.client();
  await admin.ok('session:setup', ADMIN);
  const id = await admin.ok('identity:show', {});
  lab = await labUp({ id: LAB_ID, hosts: 4 });
  await authorizeKey(lab, id.publicKey);
  h = lab.hosts;
});

afterAll(async () => {
  await t?.close();
  await labDown({ id: LAB_ID });
});

const enrol = (host: LabHost, name = host.name) =>
  admin.ok('hosts:add', { name, address: host.address, port: host.port, user: host.user, fingerprint: host.fingerprint });

describe('enrolment with a pinned host key', () => {
  it('probe shows the same SHA256 fingerprint as ssh-keygen on the host key', async () => {
    const p = await admin.ok('hosts:probe', { address: h[0]!.address, port: h[0]!.port });
    expect(p.fingerprint).toBe(h[0]!.fingerprint);
    expect(p.keyType).toBe('ssh-ed25519');
    expect(p.pinned).toBeNull();
  });

  it('refuses to pin a fingerprint the host does not present', async () => {
    const other = h[1]!.fingerprint;
    const r = await admin.call('hosts:add', { name: 'wrong', address: h[0]!.address, port: h[0]!.port, user: 'root', fingerprint: other });
    expect(r).toMatchObject({ ok: false, error: { code: 'HOST_KEY_MISMATCH' } });
    if (!r.ok) expect(r.error.message).toContain(h[0]!.fingerprint);
    expect(await admin.ok('hosts:list', {})).toEqual([]);
  });

  it('enrols hosts, then scans them concurrently for OS and GPU inventory', async () => {
    for (const host of h) await enrol(host);
    const out = await admin.ok('hosts:scan', {});
    expect(out.map((o) => [o.name, o.ok, o.error?.code ?? null])).toEqual(h.map((x) => [x.name, true, null]));
    const byName = Object.fromEntries(out.map((o) => [o.name, o.inventory!]));
    const a100 = byName[h[0]!.name]!;
    expect(a100.hostname).toBe(h[0]!.name);
    expect(a100.gpus).toHaveLength(8);
    expect(a100.gpus[0]!.name).toBe('NVIDIA A100-SXM4-80GB');
    expect(a100.driverVersion).toMatch(/^\d+\.\d+/);
    expect(a100.os).toMatch(/Debian|Linux/);
    const h100 = byName[h[1]!.name]!;
    expect(h100.gpus[0]!.name).toMatch(/H100/);
    // The older driver: only clocks_throttle_reasons, and N/A power readings become null.
    const t4 = byName[h[2]!.name]!;
    expect(t4.gpus[0]!.name).toMatch(/T4/);
    expect(t4.gpus.some((g) => g.powerDrawW === null)).toBe(true);
    expect(t4.gpus[0]!.throttleReasons).not.toBeNull();
    // No GPU (driver not loaded): recorded, not a failure of the scan.
    const none = byName[h[3]!.name]!;
    expect(none.gpus).toEqual([]);
    expect(none.gpuError).toBeTruthy();

    const listed = await admin.ok('hosts:list', {});
    expect(listed.every((x) => x.status === 'reachable' && x.lastSeenAt)).toBe(true);
  });
});

describe('the terminal', () => {
  it('opens a PTY after the host key check and runs a command', async () => {
    const c = admin;
    const { id, fingerprint } = await c.ok('terminal:open', { host: h[0]!.name, cols: 100, rows: 30 });
    expect(fingerprint).toBe(h[0]!.fingerprint);
    await c.ok('terminal:input', { id, data: 'echo "host=$(hostname) sum=$((20+22))"\n' });
    const text = () => c.events.filter((e) => e.event === 'terminal:data' && (e.payload as { id: string }).id === id).map((e) => (e.payload as { data: string }).data).join('');
    await expect.poll(text, { timeout: 10_000 }).toContain(`host=${h[0]!.name} sum=42`);
    await c.ok('terminal:resize', { id, cols: 120, rows: 40 });
    await c.ok('terminal:input', { id, data: 'stty size\n' });
    await expect.poll(text, { timeout: 10_000 }).toContain('40 120');
    // Another client cannot type into this terminal.
    const other = t.client();
    await other.ok('session:login', { name: 'alice', password: ADMIN.password });
    expect(await other.call('terminal:input', { id, data: 'reboot\n' })).toMatchObject({ ok: false, error: { code: 'NOT_FOUND' } });
    await c.ok('terminal:close', { id });
    expect(await c.call('terminal:input', { id, data: 'x' })).toMatchObject({ ok: false, error: { code: 'NOT_FOUND' } });
  });
});

describe('faults', () => {
  it('refuses a changed host key, naming both fingerprints, and records it on the host', async () => {
    const host = h[1]!;
    const fresh = await replaceHostKey(lab, host.name);
    expect(fresh).not.toBe(host.fingerprint);
    const [out] = await admin.ok('hosts:scan', { names: [host.name] });
    expect(out).toMatchObject({ ok: false, status: 'key-changed', error: { code: 'HOST_KEY_CHANGED' } });
    expect(out!.error!.message).toContain(host.fingerprint);
    expect(out!.error!.message).toContain(fresh);
    const term = await admin.call('terminal:open', { host: host.name, cols: 80, rows: 24 });
    expect(term).toMatchObject({ ok: false, error: { code: 'HOST_KEY_CHANGED' } });
    const row = (await admin.ok('hosts:list', {})).find((x) => x.name === host.name)!;
    expect(row.status).toBe('key-changed');
    expect(row.fingerprint).toBe(host.fingerprint);
  });

  it('times out on a cut link with a clear error, without holding up the other hosts', async () => {
    await cutLink(lab, h[2]!.name);
    try {
      const started = Date.now();
      const out = await admin.ok('hosts:scan', { names: [h[0]!.name, h[2]!.name], timeoutMs: 2000 });
      expect(out[0]).toMatchObject({ ok: true });
      expect(out[1]).toMatchObject({ ok: false, status: 'unreachable' });
      expect(['TIMEOUT', 'HOST_UNREACHABLE']).toContain(out[1]!.error!.code);
      expect(Date.now() - started).toBeLessThan(15_000);
    } finally {
      await restoreLink(lab, h[2]!.name);
    }
    const [back] = await admin.ok('hosts:scan', { names: [h[2]!.name] });
    expect(back).toMatchObject({ ok: true });
  });

  it('reports a dead sshd as unreachable and recovers when it returns', async () => {
    await killSshd(lab, h[3]!.name);
    const [dead] = await admin.ok('hosts:scan', { names: [h[3]!.name], timeoutMs: 2000 });
    expect(dead).toMatchObject({ ok: false, status: 'unreachable', error: { code: 'HOST_UNREACHABLE' } });
    await startSshd(lab, h[3]!.name);
    const [alive] = await admin.ok('hosts:scan', { names: [h[3]!.name] });
    expect(alive).toMatchObject({ ok: true });
  });

  it('cancels a running scan', async () => {
    await cutLink(lab, h[2]!.name);
    try {
      const pending = admin.call('hosts:scan', { names: [h[2]!.name], requestId: 'scan-1', timeoutMs: 60_000 });
      await new Promise((r) => setTimeout(r, 300));
      expect(await admin.ok('ops:cancel', { requestId: 'scan-1' })).toEqual({ cancelled: true });
      const r = await pending;
      expect(r.ok && r.value[0]).toMatchObject({ ok: false, error: { code: 'CANCELLED' } });
    } finally {
      await restoreLink(lab, h[2]!.name);
    }
  });
});

describe('imports', () => {
  it('enrols hosts from a known_hosts file written by the real ssh-keyscan', async () => {
    const other = await testCore();
    try {
      const c = other.client();
      await c.ok('session:setup', ADMIN);
      const text = execFileSync('ssh-keyscan', ['-T', '5', '-p', String(h[0]!.port), h[0]!.address], { encoding: 'utf8' });
      const out = await c.ok('hosts:importKnownHosts', { text: '# from ssh-keyscan\n' + text + '\n@revoked * ssh-ed25519 AAAA\n|1|abc=|def= ssh-ed25519 AAAA\n' });
      expect(out.added).toHaveLength(1);
      expect(out.added[0]!.fingerprint).toBe(h[0]!.fingerprint);
      expect(out.skipped.length).toBeGreaterThanOrEqual(2);
    } finally {
      await other.close();
    }
  });

  it('imports ssh_config hosts as unconfirmed, refuses to connect until confirmed', async () => {
    const other = await testCore({ sshTimeoutMs: 4000 });
    try {
      const c = other.client();
      await c.ok('session:setup', ADMIN);
      await authorizeKey(lab, (await c.ok('identity:show', {})).publicKey);
      const cfg = `Host gpu-a\n  HostName ${h[0]!.address}\n  Port ${h[0]!.port}\n  User root\n\nHost *\n  ServerAliveInterval 10\n`;
      const out = await c.ok('hosts:importSshConfig', { text: cfg });
      expect(out.added).toEqual([{ name: 'gpu-a', address: h[0]!.address, port: h[0]!.port, fingerprint: null }]);
      const [refused] = await c.ok('hosts:scan', { names: ['gpu-a'] });
      expect(refused).toMatchObject({ ok: false, error: { code: 'HOST_KEY_UNCONFIRMED' } });
      await c.ok('hosts:confirm', { name: 'gpu-a', fingerprint: h[0]!.fingerprint });
      const [ok] = await c.ok('hosts:scan', { names: ['gpu-a'] });
      expect(ok).toMatchObject({ ok: true });
    } finally {
      await other.close();
    }
  });
});

/** A fresh console (its own database) with Airlock's key authorised on the lab hosts. */
async function freshCore(): Promise<{ core: TestCore; c: TestClient }> {
  const core = await testCore({ sshTimeoutMs: 4000 });
  const c = core.client();
  await c.ok('session:setup', ADMIN);
  await authorizeKey(lab, (await c.ok('identity:show', {})).publicKey);
  return { core, c };
}

/** The real ssh-keyscan: `-H` hashes the names as HashKnownHosts does. Not blocking: a relay in this process may serve it. */
const keyscan = async (address: string, port: number, hashed: boolean) =>
  (await execFileAsync('ssh-keyscan', ['-T', '5', ...(hashed ? ['-H'] : []), '-p', String(port), address], { encoding: 'utf8' })).stdout;

/** Fingerprints of a known_hosts text, by the real ssh-keygen -lf, in file order. */
function fingerprints(text: string): string[] {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-kh-'));
  try {
    fs.writeFileSync(path.join(dir, 'kh'), text);
    return execFileSync('ssh-keygen', ['-lf', path.join(dir, 'kh')], { encoding: 'utf8' }).trim().split('\n').map((l) => l.split(' ')[1]!);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Hash a plain known_hosts text with the real ssh-keygen -H -f. */
function hashWithKeygen(text: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-kh-'));
  try {
    const f = path.join(dir, 'known_hosts');
    fs.writeFileSync(f, text);
    execFileSync('ssh-keygen', ['-H', '-f', f], { stdio: 'ignore' });
    return fs.readFileSync(f, 'utf8');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** A new key pair's public line (`type base64`), made by the real ssh-keygen. */
function newKey(type: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-kh-'));
  try {
    execFileSync('ssh-keygen', ['-q', '-t', type, '-N', '', '-f', path.join(dir, 'k')]);
    return fs.readFileSync(path.join(dir, 'k.pub'), 'utf8').trim().split(' ').slice(0, 2).join(' ');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

describe('hashed known_hosts (HashKnownHosts yes, ssh-keyscan -H)', () => {
  it('keeps hashed entries and pins the right key when the host is added by address with no fingerprint', async () => {
    const { core, c } = await freshCore();
    try {
      const host = h[0]!;
      const text = await keyscan(host.address, host.port, true);
      expect(text).toMatch(/^\|1\|/m);
      expect(text).not.toContain(host.address);
      const [real] = fingerprints(text);
      const lines = text.trim().split('\n').length;
      const file = `# hashed by ssh-keyscan -H\r\n\r\n${text.replace(/\n/g, '\r\n')}@cert-authority *.lab ${newKey('ed25519')}\r\n`;
      const out = await c.ok('hosts:importKnownHosts', { text: file });
      // Nothing can be named from a hashed file: no host yet, but every entry is kept.
      expect(out.added).toEqual([]);
      expect(out.kept).toEqual([{ line: 3, keyType: 'ssh-ed25519', fingerprint: real }]);
      expect(lines).toBe(1);
      expect(out.skipped).toEqual([{ line: 4, entry: expect.stringContaining('@cert-authority'), reason: expect.stringMatching(/@cert-authority.*not supported/) }]);
      expect(out.revoked).toEqual([]);
      expect(await c.ok('hosts:list', {})).toEqual([]);

      const probe = await c.ok('hosts:probe', { address: host.address, port: host.port });
      expect(probe).toMatchObject({ fingerprint: real, knownHosts: 'match' });
      const added = await c.ok('hosts:add', { name: 'hashed-a', address: host.address, port: host.port, user: host.user });
      expect(added).toMatchObject({ name: 'hashed-a', fingerprint: real, keyType: 'ssh-ed25519' });
      const [scan] = await c.ok('hosts:scan', { names: ['hashed-a'] });
      expect(scan).toMatchObject({ ok: true, status: 'reachable' });

      // An address no entry names still needs a fingerprint: nothing is pinned blindly.
      const other = h[2]!;
      const r = await c.call('hosts:add', { name: 'nope', address: other.address, port: other.port, user: other.user });
      expect(r).toMatchObject({ ok: false, error: { code: 'HOST_KEY_UNCONFIRMED' } });
      expect((await c.ok('hosts:probe', { address: other.address, port: other.port })).knownHosts).toBe('none');
      expect((await c.ok('hosts:list', {})).map((x) => x.name)).toEqual(['hashed-a']);
    } finally {
      await core.close();
    }
  });

  it('prefers ed25519 among several matching key types; refuses a host that presents another key', async () => {
    const { core, c } = await freshCore();
    try {
      const [good, bad] = [h[0]!, h[2]!];
      const [real] = fingerprints(await keyscan(good.address, good.port, false));
      // Plain lines for the same address with an ECDSA and an RSA key as well, hashed by ssh-keygen -H.
      const plain = [
        `${good.address} ${newKey('ecdsa')}`,
        (await keyscan(good.address, good.port, false)).trim(),
        `${good.address} ${newKey('rsa')}`,
        `${bad.address} ${newKey('ed25519')}`, // not the key bad presents
        `${h[3]!.address} ${newKey('ecdsa')}`, // a type h[3] has no key of
      ].join('\n') + '\n';
      const hashed = hashWithKeygen(plain);
      expect(hashed).not.toContain(good.address);
      const out = await c.ok('hosts:importKnownHosts', { text: hashed });
      expect(out.kept.map((k) => k.keyType)).toEqual(['ecdsa-sha2-nistp256', 'ssh-ed25519', 'ssh-rsa', 'ssh-ed25519', 'ecdsa-sha2-nistp256']);
      expect(out.added).toEqual([]);

      const added = await c.ok('hosts:add', { name: 'multi', address: good.address, port: good.port, user: good.user });
      expect(added).toMatchObject({ fingerprint: real, keyType: 'ssh-ed25519' });
      const [scan] = await c.ok('hosts:scan', { names: ['multi'] });
      expect(scan).toMatchObject({ ok: true });

      const [presented] = fingerprints(await keyscan(bad.address, bad.port, false));
      const imported = out.kept[3]!.fingerprint;
      const r = await c.call('hosts:add', { name: 'spoofed', address: bad.address, port: bad.port, user: bad.user });
      expect(r).toMatchObject({ ok: false, error: { code: 'HOST_KEY_MISMATCH' } });
      if (!r.ok) {
        expect(r.error.message).toContain(presented);
        expect(r.error.message).toContain(imported);
      }
      expect((await c.ok('hosts:probe', { address: bad.address, port: bad.port })).knownHosts).toBe('differs');
      // Only the imported type is asked for; a host without a key of that type is refused clearly.
      const noType = await c.call('hosts:add', { name: 'no-ecdsa', address: h[3]!.address, port: h[3]!.port, user: h[3]!.user });
      expect(noType).toMatchObject({ ok: false, error: { code: 'HOST_KEY_MISMATCH', message: expect.stringContaining(`does not present the ecdsa-sha2-nistp256 key ${out.kept[4]!.fingerprint}`) } });
      expect(await c.ok('hosts:probe', { address: h[3]!.address, port: h[3]!.port })).toMatchObject({ keyType: 'ssh-ed25519', knownHosts: 'differs' });
      expect((await c.ok('hosts:list', {})).map((x) => x.name)).toEqual(['multi']);
    } finally {
      await core.close();
    }
  });

  it('confirms an ssh_config host with no fingerprint from a hashed entry for its address', async () => {
    const { core, c } = await freshCore();
    try {
      const host = h[2]!;
      await c.ok('hosts:importSshConfig', { text: `Host gpu-c\n  HostName ${host.address}\n  Port ${host.port}\n  User ${host.user}\n` });
      const text = await keyscan(host.address, host.port, true);
      const [real] = fingerprints(text);
      expect((await c.ok('hosts:importKnownHosts', { text })).kept).toHaveLength(1);
      const confirmed = await c.ok('hosts:confirm', { name: 'gpu-c' });
      expect(confirmed).toMatchObject({ fingerprint: real, keyType: 'ssh-ed25519', status: 'unknown' });
      expect((await c.ok('hosts:scan', { names: ['gpu-c'] }))[0]).toMatchObject({ ok: true });
    } finally {
      await core.close();
    }
  });

  it('matches the [host]:port form on a port other than 22', async () => {
    const host = h[0]!;
    // A loopback port that forwards to the lab host's sshd: ssh-keyscan -H hashes "[127.0.0.1]:PORT".
    const relay = net.createServer((s) => {
      const up = net.connect(host.port, host.address);
      s.pipe(up).pipe(s);
      s.on('error', () => up.destroy());
      up.on('error', () => s.destroy());
    });
    await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r));
    const port = (relay.address() as net.AddressInfo).port;
    expect(port).not.toBe(22);
    const { core, c } = await freshCore();
    try {
      const text = await keyscan('127.0.0.1', port, true);
      expect(text).toMatch(/^\|1\|/);
      const [real] = fingerprints(text);
      const out = await c.ok('hosts:importKnownHosts', { text });
      expect(out.kept).toHaveLength(1);
      const added = await c.ok('hosts:add', { name: 'relayed', address: '127.0.0.1', port, user: host.user });
      expect(added).toMatchObject({ port, fingerprint: real });
      const [scan] = await c.ok('hosts:scan', { names: ['relayed'] });
      expect(scan).toMatchObject({ ok: true });
      // The same hashed entry does not name the host's own port 22 address.
      const r = await c.call('hosts:add', { name: 'direct', address: '127.0.0.1', port: 22, user: host.user });
      expect(r).toMatchObject({ ok: false, error: { code: 'HOST_KEY_UNCONFIRMED' } });
    } finally {
      await core.close();
      await new Promise((r) => relay.close(r));
    }
  });

  it('honours @revoked: an enrolled host pinned to the key is no longer connected to, and adding it is refused naming the key', async () => {
    const { core, c } = await freshCore();
    try {
      const host = h[3]!;
      const plain = (await keyscan(host.address, host.port, false)).trim();
      const [fp] = fingerprints(plain);
      await c.ok('hosts:add', { name: 'victim', address: host.address, port: host.port, user: host.user, fingerprint: fp });
      expect((await c.ok('hosts:scan', { names: ['victim'] }))[0]).toMatchObject({ ok: true });

      const keyPart = plain.split(' ').slice(1).join(' ');
      const text = `${await keyscan(host.address, host.port, true)}@revoked * ${keyPart}\n${host.address} ${keyPart}\n`;
      const out = await c.ok('hosts:importKnownHosts', { text });
      expect(out.revoked).toEqual([{ line: 2, keyType: 'ssh-ed25519', fingerprint: fp, hosts: ['victim'] }]);
      // The plain line with that key is not enrolled, and says why.
      expect(out.added).toEqual([]);
      expect(out.skipped).toEqual([{ line: 3, entry: `line 3: ${host.address}`, reason: expect.stringContaining(`${fp} is revoked`) }]);

      // Connection time: refused before anything is sent, also for the terminal.
      const [scan] = await c.ok('hosts:scan', { names: ['victim'] });
      expect(scan).toMatchObject({ ok: false, status: 'key-changed', error: { code: 'HOST_KEY_REVOKED' } });
      expect(scan!.error!.message).toContain(fp);
      expect(await c.call('terminal:open', { host: 'victim', cols: 80, rows: 24 })).toMatchObject({ ok: false, error: { code: 'HOST_KEY_REVOKED' } });
      expect((await c.ok('hosts:list', {}))[0]).toMatchObject({ name: 'victim', status: 'key-changed', lastError: expect.stringContaining('HOST_KEY_REVOKED') });

      // Pinning time: by the imported hashed entry, by an explicit fingerprint, or by re-confirming.
      await c.ok('hosts:remove', { name: 'victim' });
      for (const input of [{}, { fingerprint: fp }]) {
        const r = await c.call('hosts:add', { name: 'again', address: host.address, port: host.port, user: host.user, ...input });
        expect(r).toMatchObject({ ok: false, error: { code: 'HOST_KEY_REVOKED' } });
        if (!r.ok) expect(r.error.message).toContain(`ssh-ed25519 key ${fp}`);
      }
      expect((await c.ok('hosts:probe', { address: host.address, port: host.port })).knownHosts).toBe('revoked');
      expect(await c.ok('hosts:list', {})).toEqual([]);
    } finally {
      await core.close();
    }
  });
});

describe('audit of the hosts slice', () => {
  it('records every action and the chain verifies', async () => {
    const { events } = await admin.ok('audit:list', { limit: 1000 });
    const channels = new Set(events.map((e) => e.channel));
    for (const c of ['hosts:probe', 'hosts:add', 'hosts:scan', 'terminal:open', 'terminal:close', 'ops:cancel']) expect(channels).toContain(c);
    expect(events.some((e) => e.channel === 'terminal:input')).toBe(false);
    expect((await admin.ok('audit:verify', {})).ok).toBe(true);
  });
});
