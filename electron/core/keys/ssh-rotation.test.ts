import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AirlockError } from '../../../shared/domain/errors';
import { openDatabase, type Db } from '../db/db';
import { meta } from '../db/meta';
import { generateIdentity, publicKeyOf } from '../identity/ssh-key';
import type { SshConnection } from '../ssh/connection';
import { shCommand } from '../ssh/quote';
import { Vault } from '../vault/vault';
import { ConsoleKeyStore } from './console-keys';
import { KeyRegistry } from './registry';
import { addScript, killHookFromEnv, parseOutcome, removeScript, SshRotations, verifyScript } from './ssh-rotation';

/**
 * The rotation's state machine on a real database and vault, against "hosts" that are temp
 * directories: each one's authorized_keys decides, as sshd would, which key may log in, and the
 * step scripts really run under /bin/sh there. (The lab's real sshd: test/integration/keys-ssh-rotation.test.ts.)
 */

const KDF = { alg: 'argon2id' as const, memoryKiB: 1024, iterations: 1, parallelism: 1 };
const dirs: string[] = [];
const tmp = (p: string) => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), p));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

/** Runs a command line as a host would (`/bin/sh -c …` with its HOME). */
function runSh(command: string, home: string) {
  const r = spawnSync('/bin/sh', ['-c', command], { env: { PATH: process.env.PATH, HOME: home }, encoding: 'utf8' });
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr, truncated: false };
}

const blob = (line: string) => line.split(' ')[1]!;
const keysFile = (home: string) => path.join(home, '.ssh', 'authorized_keys');
const lines = (home: string) => (fs.existsSync(keysFile(home)) ? fs.readFileSync(keysFile(home), 'utf8').split('\n').filter(Boolean) : []);

/** Hosts that accept exactly the keys in their authorized_keys; a cut host is unreachable. */
function fleet(names: string[]) {
  const homes = Object.fromEntries(names.map((n) => [n, tmp(`rot-${n}-`)])) as Record<string, string>;
  const cut = new Set<string>();
  const logins: Array<{ host: string; key: string }> = [];
  let enrolled = [...names];
  return {
    homes,
    cut,
    logins,
    enroll: (n: string) => {
      homes[n] = tmp(`rot-${n}-`);
      enrolled.push(n);
    },
    unenroll: (n: string) => (enrolled = enrolled.filter((x) => x !== n)),
    list: () => enrolled.map((name) => ({ name })),
    resolveHosts: (sel: string[]) => (sel.includes('all') ? enrolled : sel).map((name) => ({ name })),
    async open(name: string, auth: { privateKey?: string }) {
      if (cut.has(name)) throw new AirlockError('HOST_UNREACHABLE', `${name} is unreachable.`);
      const key = blob(publicKeyOf(auth.privateKey!));
      if (!lines(homes[name]!).some((l) => l.split(/\s+/).includes(key))) throw new AirlockError('SSH_AUTH_FAILED', `${name} refused the key.`);
      logins.push({ host: name, key });
      return { exec: async (cmd: string) => runSh(cmd, homes[name]!), close() {} } as unknown as SshConnection;
    },
  };
}

function setup(names = ['h1', 'h2', 'h3']) {
  const db: Db = openDatabase(path.join(tmp('rot-db-'), 'airlock.db'));
  const vault = new Vault({ db, kdf: KDF, random: crypto.randomBytes, now: () => new Date().toISOString() });
  const vaultKey = vault.newVaultKey();
  const registry = new KeyRegistry({ db, vault, random: crypto.randomBytes });
  const first = registry.mint(vaultKey, 'ssh.identity', { comment: 'airlock@alice' });
  const f = fleet(names);
  for (const h of names) {
    fs.mkdirSync(path.dirname(keysFile(f.homes[h]!)), { recursive: true });
    fs.writeFileSync(keysFile(f.homes[h]!), `ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOperatorsOwnKeyXXXXXXXXXXXXXXXXXXXXXXXXXX op@desk\n${first.publicKey}\n`, { mode: 0o640 });
  }
  const rotations = (o: { boundary?: (l: string) => void; owner?: string } = {}) =>
    new SshRotations({ db, now: () => new Date(), random: crypto.randomBytes, registry, hosts: f, resolveHosts: f.resolveHosts, ...o });
  /** The SSH keys the vault holds (current and staged), as public blobs. */
  const vaultKeys = () =>
    new ConsoleKeyStore(db)
      .entries('ssh.identity')
      .filter((e) => e.sealed !== null)
      .map((e) => blob(publicKeyOf((e.stagedFor ? registry.unsealNextSsh(vaultKey, e.stagedFor) : registry.unseal(vaultKey, 'ssh.identity'))!.toString('utf8'))));
  /** No host accepts a key of Airlock's that the vault does not hold, and each accepts one it holds. */
  const noHostLost = (hosts = names) => {
    const inVault = vaultKeys();
    for (const h of hosts) {
      const ours = lines(f.homes[h]!).filter((l) => !l.includes('op@desk'));
      expect(ours.length, h).toBeGreaterThan(0);
      for (const l of ours) expect(inVault, `${h}: ${l}`).toContain(blob(l));
    }
  };
  return { db, vault, vaultKey, registry, first, f, rotations, vaultKeys, noHostLost };
}

describe('the step scripts (real /bin/sh)', () => {
  const a = generateIdentity('airlock@a').publicKey;
  const b = generateIdentity('airlock@b').publicKey;

  it('add appends once, keeps the other lines and the mode, and copes with a missing final newline', () => {
    const home = tmp('rot-sh-');
    fs.mkdirSync(path.join(home, '.ssh'));
    fs.writeFileSync(keysFile(home), `# keep me\n${a}`, { mode: 0o640 });
    fs.chmodSync(keysFile(home), 0o640);
    expect(parseOutcome('add', runSh(shCommand(addScript(b)), home))).toMatch(/was added/);
    expect(parseOutcome('add', runSh(shCommand(addScript(b)), home))).toMatch(/already/);
    expect(lines(home)).toEqual(['# keep me', a, b]);
    expect(fs.statSync(keysFile(home)).mode & 0o777).toBe(0o640);
    expect(fs.readdirSync(path.join(home, '.ssh'))).toEqual(['authorized_keys']);
  });

  it('add creates ~/.ssh/authorized_keys 0600 when there is none', () => {
    const home = tmp('rot-sh-');
    expect(parseOutcome('add', runSh(shCommand(addScript(b)), home))).toMatch(/was added/);
    expect(lines(home)).toEqual([b]);
    expect(fs.statSync(keysFile(home)).mode & 0o777).toBe(0o600);
  });

  it('remove drops every line of the old key (with options too), is idempotent, and refuses while the new key is absent', () => {
    const home = tmp('rot-sh-');
    fs.mkdirSync(path.join(home, '.ssh'));
    fs.writeFileSync(keysFile(home), `${a}\nfrom="10.0.0.0/8" ${a.split(' ').slice(0, 2).join(' ')} other\n`, { mode: 0o600 });
    expect(() => parseOutcome('remove', runSh(shCommand(removeScript(a, b)), home))).toThrow(/new key is not in/);
    expect(lines(home)).toHaveLength(2);
    expect(() => parseOutcome('verify', runSh(shCommand(verifyScript(b)), home))).toThrow(/new key is not in/);
    runSh(shCommand(addScript(b)), home);
    expect(parseOutcome('verify', runSh(shCommand(verifyScript(b)), home))).toMatch(/new login/);
    expect(parseOutcome('remove', runSh(shCommand(removeScript(a, b)), home))).toMatch(/was removed/);
    expect(parseOutcome('remove', runSh(shCommand(removeScript(a, b)), home))).toMatch(/already gone/);
    expect(lines(home)).toEqual([b]);
  });

  it('refuses to replace a symlinked authorized_keys', () => {
    const home = tmp('rot-sh-');
    fs.mkdirSync(path.join(home, '.ssh'));
    fs.writeFileSync(path.join(home, 'elsewhere'), `${a}\n`);
    fs.symlinkSync(path.join(home, 'elsewhere'), keysFile(home));
    expect(() => parseOutcome('add', runSh(shCommand(addScript(b)), home))).toThrow(/symbolic link/);
    expect(fs.readFileSync(path.join(home, 'elsewhere'), 'utf8')).toBe(`${a}\n`);
  });

  it('reads host output strictly: one marker line, exit 0, nothing truncated', () => {
    const ok = { code: 0, stdout: 'AIRLOCK-ROTATE added\n', stderr: '', truncated: false };
    expect(parseOutcome('add', ok)).toMatch(/added/);
    expect(() => parseOutcome('add', { ...ok, stdout: 'motd\nAIRLOCK-ROTATE added\n' })).toThrow(/not understood/);
    expect(() => parseOutcome('add', { ...ok, code: 1 })).toThrow(/exit 1/);
    expect(() => parseOutcome('add', { ...ok, truncated: true })).toThrow(/not understood/);
    expect(() => parseOutcome('remove', ok)).toThrow(/not understood/);
    expect(() => parseOutcome('add', { code: 2, stdout: '', stderr: '\u001b[31mboom\u001b[0m', truncated: false })).toThrow(/not understood \(exit 2\)/);
  });
});

describe('the kill hook (test only)', () => {
  it('is inert unless AIRLOCK_TEST_KILL_AT is set, and fires once at the n-th boundary', () => {
    expect(killHookFromEnv({})).toBeUndefined();
    expect(() => killHookFromEnv({ AIRLOCK_TEST_KILL_AT: 'x' })).toThrow(/boundary index/);
    const fired: number[] = [];
    let n = 0;
    const hook = killHookFromEnv({ AIRLOCK_TEST_KILL_AT: '2' }, () => fired.push(n))!;
    for (; n < 5; n++) hook(`b${n}`);
    expect(fired).toEqual([2]);
  });
});

describe('SSH identity rotation', () => {
  it('rotates every host: the new key works alone, the old one is refused everywhere and gone from the vault', async () => {
    const s = setup();
    const r = await s.rotations().start(s.vaultKey, 'alice', ['all'], new AbortController().signal);
    expect(r.status).toBe('succeeded');
    expect(r.promoted).toBe(true);
    expect(r.pendingHosts).toEqual([]);
    expect(r.hosts.map((h) => [h.host, h.status, h.steps.map((x) => x.status).join(',')])).toEqual([
      ['h1', 'succeeded', 'done,done,done'],
      ['h2', 'succeeded', 'done,done,done'],
      ['h3', 'succeeded', 'done,done,done'],
    ]);
    const current = s.registry.publicKey('ssh.identity')!;
    expect(blob(current)).not.toBe(blob(s.first.publicKey!));
    expect(s.vaultKeys()).toEqual([blob(current)]);
    expect(s.registry.hasNextSsh(r.id)).toBe(false);
    expect(meta(s.db).get('ssh.identity.public')).toBe(current);
    for (const h of ['h1', 'h2', 'h3']) expect(lines(s.f.homes[h]!)).toEqual([expect.stringContaining('op@desk'), current]);
    await expect(s.f.open('h1', { privateKey: s.registry.unseal(s.vaultKey, 'ssh.identity')!.toString() })).resolves.toBeTruthy();
    // verify and remove logged in with the new key, add with the old one.
    expect(s.f.logins.filter((l) => l.host === 'h2').map((l) => l.key === blob(current))).toEqual([false, true, true]);
  });

  it('a host that is unreachable is pending: no host loses the old key, which stays in the vault; resume finishes', async () => {
    const s = setup();
    s.f.cut.add('h2');
    const r = await s.rotations().start(s.vaultKey, 'alice', ['all'], new AbortController().signal);
    expect(r.status).toBe('failed');
    expect(r.promoted).toBe(false);
    expect(r.pendingHosts).toEqual(['h1', 'h2', 'h3']);
    expect(r.hosts.find((h) => h.host === 'h2')).toMatchObject({ status: 'failed', next: 'add', message: expect.stringMatching(/add failed: h2 is unreachable/) });
    expect(r.hosts.find((h) => h.host === 'h1')).toMatchObject({ next: 'remove', message: expect.stringMatching(/still accepts the old one/) });
    for (const h of ['h1', 'h3']) expect(lines(s.f.homes[h]!).map(blob)).toContain(blob(s.first.publicKey!));
    expect(s.vaultKeys()).toHaveLength(2);
    expect(s.registry.publicKey('ssh.identity')).toBe(s.first.publicKey);
    s.noHostLost();
    // No second rotation meanwhile.
    await expect(s.rotations().start(s.vaultKey, 'alice', ['all'], new AbortController().signal)).rejects.toMatchObject({ code: 'CONFLICT' });
    s.f.cut.delete('h2');
    const done = await s.rotations().resume(s.vaultKey, r.id, new AbortController().signal);
    expect(done).toMatchObject({ status: 'succeeded', promoted: true, pendingHosts: [], attempts: 2 });
    expect(s.vaultKeys()).toHaveLength(1);
    s.noHostLost();
  });

  it('refuses a selection that leaves an enrolled host out (it would lose the key), and a console without a key', async () => {
    const s = setup();
    await expect(s.rotations().start(s.vaultKey, 'alice', ['h1', 'h2'], new AbortController().signal)).rejects.toMatchObject({ code: 'INVALID_INPUT', message: expect.stringMatching(/not selected: h3/) });
    expect(s.db.prepare('SELECT COUNT(*) FROM ssh_rotations').pluck().get()).toBe(0);
  });

  it('brings hosts enrolled since the start along before deleting the old key, and drops hosts removed since', async () => {
    const s = setup(['h1', 'h2']);
    s.f.cut.add('h2');
    const r = await s.rotations().start(s.vaultKey, 'alice', ['all'], new AbortController().signal);
    s.f.cut.delete('h2');
    s.f.enroll('h9');
    fs.mkdirSync(path.dirname(keysFile(s.f.homes.h9!)), { recursive: true });
    fs.writeFileSync(keysFile(s.f.homes.h9!), `${s.first.publicKey}\n`);
    s.f.unenroll('h1');
    const done = await s.rotations().resume(s.vaultKey, r.id, new AbortController().signal);
    expect(done.status).toBe('succeeded');
    expect(done.hosts.map((h) => [h.host, h.status])).toEqual([
      ['h1', 'cancelled'],
      ['h2', 'succeeded'],
      ['h9', 'succeeded'],
    ]);
    s.noHostLost(['h2', 'h9']);
  });

  it('a console that dies at any step boundary leaves every host accepting a key in the vault, and a resume finishes', async () => {
    const probe = setup();
    const labels: string[] = [];
    await probe.rotations({ boundary: (l) => labels.push(l) }).start(probe.vaultKey, 'alice', ['all'], new AbortController().signal);
    expect(labels[0]).toBe('created');
    expect(labels.at(-1)).toBe('promote:recorded');
    for (let at = 0; at < labels.length; at++) {
      const s = setup();
      let n = 0;
      const crash = (l: string) => {
        if (n++ === at) throw new Error(`crash at ${l}`);
      };
      // The dying console had another owner id: after it, its rotation's owner is dead.
      await expect(s.rotations({ boundary: crash, owner: 'dead:1' }).start(s.vaultKey, 'alice', ['all'], new AbortController().signal)).rejects.toThrow(`crash at ${labels[at]}`);
      s.noHostLost();
      const id = s.db.prepare('SELECT id FROM ssh_rotations').pluck().get() as string;
      const done = await s.rotations().resume(s.vaultKey, id, new AbortController().signal);
      expect(done, labels[at]).toMatchObject({ status: 'succeeded', promoted: true, pendingHosts: [] });
      expect(s.vaultKeys(), labels[at]).toEqual([blob(s.registry.publicKey('ssh.identity')!)]);
      s.noHostLost();
      expect(s.registry.hasNextSsh(id)).toBe(false);
      expect(s.db.prepare('SELECT COUNT(*) FROM console_keys WHERE staged_for = ?').pluck().get(id)).toBe(0);
    }
  });
});
