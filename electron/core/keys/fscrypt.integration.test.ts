/**
 * fscrypt v2 model directories on real lab hosts (labUp with encryptedModels: an ext4 -O encrypt
 * image per host on a loop device): keys delivered over SSH, plaintext never on the host's disk
 * (the raw image file is read here), lock/unlock, and re-keying that survives a crash at every
 * step boundary and inside steps.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from '../ssh/connection/connect';
import type { SshConnection } from '../ssh/connection/types';
import { shellQuote as q } from '../ssh/quote';
import { generateIdentity } from '../identity/ssh-key';
import { authorizeKey, hostModelsImage, labDown, labUp, MODELS_FS_MOUNT, runOnHost, type Lab } from '../../../test/lab/lab';
import { rejection } from '../../../test/support/errors';
import { encryptModelsDir, fscryptKeyIdentifier, lockModels, modelsStatus, unlockModels } from './fscrypt';
import { REKEY_STEPS, rekeyModels, rekeyStep, type RekeyStep } from './fscrypt-rekey';

const LAB_ID = 'fscrypt';
const DIR = '/srv/models';
const T = 60_000;

let lab: Lab;
const conns: SshConnection[] = [];

beforeAll(async () => {
  lab = await labUp({ id: LAB_ID, hosts: 2, encryptedModels: true });
  const id = generateIdentity('airlock-fscrypt-test');
  await authorizeKey(lab, id.publicKey);
  for (const h of lab.hosts) {
    conns.push(await connect({ address: h.address, port: h.port, user: h.user, fingerprint: h.fingerprint, hostName: h.name }, { privateKey: id.privateKey }, { timeoutMs: 30_000 }));
  }
}, 180_000);

afterAll(async () => {
  for (const c of conns) c.close();
  await labDown({ id: LAB_ID });
}, 180_000);

async function sh(conn: SshConnection, script: string, stdin?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return conn.exec(`/bin/sh -c ${q(script)}`, { timeoutMs: T, ...(stdin === undefined ? {} : { stdin }) });
}

async function must(conn: SshConnection, script: string, stdin?: string): Promise<string> {
  const r = await sh(conn, script, stdin);
  if (r.code !== 0) throw new Error(`${script}: exit ${r.code}: ${r.stderr}`);
  return r.stdout;
}

/** Flushes the host's models filesystem to its loop device, then reads the raw image on this machine. */
async function rawImage(conn: SshConnection, host: string): Promise<Buffer> {
  await must(conn, `sync -f ${q(MODELS_FS_MOUNT)}`);
  return fs.readFileSync(await hostModelsImage(lab, host));
}

const key = () => crypto.randomBytes(64);
const sha = (b: Buffer | string) => crypto.createHash('sha256').update(b).digest('hex');

describe('lab models filesystem', () => {
  it('every host has an ext4 image with the encrypt feature mounted at /srv/.models-fs, and nothing at /srv/models yet', async () => {
    for (const [i, h] of lab.hosts.entries()) {
      expect(h.models).toMatchObject({ mounted: true, error: null, mountpoint: MODELS_FS_MOUNT });
      expect(h.models!.device).toMatch(/^\/dev\/loop\d+$/);
      const mounts = await must(conns[i]!, 'cat /proc/self/mounts');
      expect(mounts).toMatch(new RegExp(`^${h.models!.device} ${MODELS_FS_MOUNT} ext4 `, 'm'));
      expect((await modelsStatus(conns[i]!, DIR)).state).toBe('absent');
      expect(fs.statSync(await hostModelsImage(lab, h.name)).isFile()).toBe(true);
    }
  });

  it('control: a marker written to an unencrypted directory on the same filesystem IS found in the raw image', async () => {
    const c = conns[1]!;
    const marker = `AIRLOCK-CONTROL-${crypto.randomBytes(8).toString('hex')}`;
    await must(c, `mkdir -p ${MODELS_FS_MOUNT}/plain && cat > ${MODELS_FS_MOUNT}/plain/control.txt`, marker.repeat(100));
    expect((await rawImage(c, 'host2')).includes(marker)).toBe(true);
    await must(c, `rm -rf ${MODELS_FS_MOUNT}/plain`);
  });
});

describe('encrypt, lock, unlock', () => {
  const c = () => conns[0]!;
  const k = key();
  const marker = `AIRLOCK-MARKER-${crypto.randomBytes(8).toString('hex')}`;
  const nameMarker = `weights-${crypto.randomBytes(6).toString('hex')}`;
  const file = `${DIR}/llama/v1/${nameMarker}.bin`;
  const content = marker.repeat(2000);

  it('encrypts an absent /srv/models under a delivered key; a file written over SSH reads back, and the raw image holds no plaintext', async () => {
    const st = await encryptModelsDir(c(), DIR, k);
    expect(st).toEqual({ state: 'unlocked', identifier: fscryptKeyIdentifier(k), target: `${MODELS_FS_MOUNT}/k-${fscryptKeyIdentifier(k)}`, detail: null });
    expect((await must(c(), `readlink ${DIR}`)).trim()).toBe(st.target);
    await must(c(), `mkdir -p ${DIR}/llama/v1 && cat > ${q(file)}`, content);
    expect(await must(c(), `cat ${q(file)}`)).toBe(content);
    const policy = await modelsStatus(c(), DIR);
    expect(policy.state).toBe('unlocked');
    const img = await rawImage(c(), 'host1');
    expect(img.includes(marker)).toBe(false);
    expect(img.includes(nameMarker)).toBe(false);
    // The key is nowhere on the host's disk either, nor in the raw image.
    expect(img.includes(k)).toBe(false);
  });

  it('encrypting again with the same key is a no-op; with another key, or a non-empty plain directory, it refuses', async () => {
    expect((await encryptModelsDir(c(), DIR, k)).identifier).toBe(fscryptKeyIdentifier(k));
    const e1 = await rejection(encryptModelsDir(c(), DIR, key()));
    expect(e1).toMatchObject({ code: 'CONFLICT' });
    expect(e1.message).toMatch(/another key/);
    const plain = `${MODELS_FS_MOUNT}/plain-models`;
    await must(c(), `mkdir -p ${plain} && echo x > ${plain}/f`);
    const e2 = await rejection(encryptModelsDir(c(), plain, key()));
    expect(e2).toMatchObject({ code: 'CONFLICT' });
    expect(e2.message).toMatch(/already holds unencrypted files/);
    expect(await must(c(), `cat ${plain}/f`)).toBe('x\n');
    const e3 = await rejection(encryptModelsDir(c(), '/root/models', key(), { store: '/root' }));
    expect(e3).toMatchObject({ code: 'INVALID_INPUT' });
    expect(e3.message).toMatch(/encrypt feature/);
    expect((await modelsStatus(c(), '/root')).state).toBe('unsupported');
    expect(await modelsStatus(c(), plain)).toMatchObject({ state: 'unencrypted', detail: 'not empty' });
    await must(c(), `rm -rf ${plain}`);
  });

  it('lock: contents unreadable, names encrypted; a wrong key is refused and not added; the right key unlocks', async () => {
    const locked = await lockModels(c(), DIR);
    expect(locked).toMatchObject({ state: 'locked', identifier: fscryptKeyIdentifier(k), detail: null });
    const read = await sh(c(), `cat ${q(file)}`);
    expect(read.code).not.toBe(0);
    expect(read.stdout).not.toContain(marker);
    const names = await must(c(), `find ${DIR}/ -mindepth 1`);
    expect(names).not.toContain('llama');
    expect(names).not.toContain(nameMarker);
    expect(names.trim().split('\n')).toHaveLength(3);

    const e = await rejection(unlockModels(c(), DIR, key()));
    expect(e).toMatchObject({ code: 'KEY_UNAVAILABLE' });
    expect(e.message).toMatch(/not the key of \/srv\/models/);
    expect((await modelsStatus(c(), DIR)).state).toBe('locked');

    expect(await unlockModels(c(), DIR, k)).toMatchObject({ state: 'unlocked', identifier: fscryptKeyIdentifier(k) });
    expect(await must(c(), `cat ${q(file)}`)).toBe(content);
  });

  it('after a remount (what a reboot does to the keyring) the directory is locked, and re-delivering the key unlocks it', async () => {
    const dev = lab.hosts[0]!.models!.device!;
    const um = await runOnHost(lab, 'host1', ['umount', MODELS_FS_MOUNT]);
    expect(um.code).toBe(0);
    // Before the filesystem is back, /srv/models points nowhere.
    expect(await modelsStatus(c(), DIR)).toEqual({ state: 'absent', identifier: null, target: null, detail: 'dangling symlink' });
    const r = await runOnHost(lab, 'host1', ['mount', '-t', 'ext4', dev, MODELS_FS_MOUNT]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(await modelsStatus(c(), DIR)).toMatchObject({ state: 'locked', identifier: fscryptKeyIdentifier(k) });
    expect((await sh(c(), `cat ${q(file)}`)).code).not.toBe(0);
    expect(await unlockModels(c(), DIR, k)).toMatchObject({ state: 'unlocked' });
    expect(await must(c(), `cat ${q(file)}`)).toBe(content);
  });
});

describe('re-keying', () => {
  const c = () => conns[1]!;
  const marker = `AIRLOCK-REKEY-${crypto.randomBytes(8).toString('hex')}`;
  let current = key();
  const files: Record<string, Buffer> = {
    'llama/v1/config.json': Buffer.from(`{"marker":"${marker}"}`),
    'llama/v1/weights.bin': Buffer.concat([crypto.randomBytes(3 * 1024 * 1024 + 17), Buffer.from(marker.repeat(50))]),
    'mistral/v2/weights.safetensors': crypto.randomBytes(512 * 1024),
    'mistral/v2/empty.txt': Buffer.alloc(0),
  };
  const expected = Object.fromEntries(Object.entries(files).map(([p, b]) => [p, sha(b)]));

  /** Everything a finished re-key must leave: the new key opens every file intact, nothing else is left. */
  async function checkDone(k: Buffer): Promise<void> {
    const id = fscryptKeyIdentifier(k);
    expect(await modelsStatus(c(), DIR)).toMatchObject({ state: 'unlocked', identifier: id, target: `${MODELS_FS_MOUNT}/k-${id}` });
    const sums = await must(c(), `cd ${DIR}/ && find . -type f | sort | xargs sha256sum`);
    const got = Object.fromEntries(sums.trim().split('\n').map((l) => { const [h, p] = l.split(/\s+/); return [p!.slice(2), h!]; }));
    expect(got).toEqual(expected);
    expect((await must(c(), `ls -A ${MODELS_FS_MOUNT}`)).trim().split('\n').sort()).toEqual([`k-${id}`, 'lost+found']);
    expect(await sh(c(), `test -e ${DIR}.airlock-new`)).toMatchObject({ code: 1 });
    const img = await rawImage(c(), 'host2');
    expect(img.includes(marker)).toBe(false);
  }

  beforeAll(async () => {
    await encryptModelsDir(c(), DIR, current);
    // exec's stdin is text: the bytes go base64-encoded and are decoded on the host.
    for (const [p, b] of Object.entries(files)) await must(c(), `mkdir -p "$(dirname ${q(`${DIR}/${p}`)})" && base64 -d > ${q(`${DIR}/${p}`)}`, b.toString('base64'));
  }, 120_000);

  it('re-keys to a new key: every hash matches, the old key opens nothing, the marker is still absent from the raw image', async () => {
    const next = key();
    const steps = await rekeyModels(c(), { dir: DIR, oldKey: current, newKey: next, expected });
    expect(steps.map((s) => s.step)).toEqual([...REKEY_STEPS]);
    expect(steps[1]).toMatchObject({ copied: 4, skipped: 0 });
    expect(steps[2]).toMatchObject({ files: 4 });
    expect(steps[4]!.removed).toBe('removed');
    await checkDone(next);
    const e = await rejection(unlockModels(c(), DIR, current));
    expect(e).toMatchObject({ code: 'KEY_UNAVAILABLE' });
    // Locked under the new key, nothing reads; the new key reads it again.
    await lockModels(c(), DIR);
    expect((await sh(c(), `cat ${DIR}/*/*/* 2>&1`)).stdout).not.toContain(marker);
    await unlockModels(c(), DIR, next);
    current = next;
    await checkDone(current);
  });

  it.each(REKEY_STEPS.map((_, i) => i))('a crash after %i step(s), then a run from the start: still correct', async (n) => {
    const next = key();
    const input = { dir: DIR, oldKey: current, newKey: next, expected };
    for (const step of REKEY_STEPS.slice(0, n)) await rekeyStep(c(), step, input);
    // A reboot at the boundary, too: every key gone from the kernel (the old and, once made, the new).
    const dirs = (await must(c(), `ls ${MODELS_FS_MOUNT}`)).split('\n').filter((d) => d.startsWith('k-'));
    expect(dirs.length).toBe(n === 0 ? 1 : 2);
    for (const d of dirs) expect((await lockModels(c(), `${MODELS_FS_MOUNT}/${d}`)).state).toBe('locked');
    await rekeyModels(c(), input);
    current = next;
    await checkDone(current);
  });

  it('crashes inside steps: a half-made new directory, a torn copy, a stray swap link, a half-deleted old directory', async () => {
    const next = key();
    const input = { dir: DIR, oldKey: current, newKey: next, expected };
    const oldDir = `${MODELS_FS_MOUNT}/k-${fscryptKeyIdentifier(current)}`;
    const newDir = `${MODELS_FS_MOUNT}/k-${fscryptKeyIdentifier(next)}`;
    // prepare crashed between mkdir and the policy: an empty plain directory.
    await must(c(), `mkdir ${q(newDir)}`);
    await rekeyStep(c(), 'prepare', input);
    // copy crashed: one file torn short under its temporary name, one half-written under its own name's dir.
    await must(c(), `mkdir -p ${q(`${newDir}/llama/v1`)} && head -c 1000 ${q(`${oldDir}/llama/v1/weights.bin`)} > ${q(`${newDir}/llama/v1/.airlock-part-weights.bin`)}`);
    await must(c(), `head -c 10 ${q(`${oldDir}/llama/v1/config.json`)} > ${q(`${newDir}/llama/v1/config.json`)}`);
    const copy = await rekeyStep(c(), 'copy', input);
    expect(copy).toMatchObject({ copied: 4, skipped: 0 });
    expect(await must(c(), `find ${q(newDir)} -name '.airlock-part-*'`)).toBe('');
    await rekeyStep(c(), 'verify', input);
    // swap crashed after making its new link, before the rename.
    await must(c(), `ln -s ${q(newDir)} ${DIR}.airlock-new`);
    await rekeyStep(c(), 'swap', input);
    // cleanup crashed halfway through deleting the old directory.
    await must(c(), `rm -rf ${q(`${oldDir}/mistral`)}`);
    await rekeyStep(c(), 'cleanup', input);
    await rekeyStep(c(), 'cleanup', input);
    current = next;
    await checkDone(current);
  });

  it('verify refuses a damaged copy (and a damaged original) and nothing is swapped; copy + verify again repair a damaged copy', async () => {
    const next = key();
    const input = { dir: DIR, oldKey: current, newKey: next, expected };
    const oldDir = `${MODELS_FS_MOUNT}/k-${fscryptKeyIdentifier(current)}`;
    const newDir = `${MODELS_FS_MOUNT}/k-${fscryptKeyIdentifier(next)}`;
    await rekeyStep(c(), 'prepare', input);
    await rekeyStep(c(), 'copy', input);
    await must(c(), `printf 'X' | dd of=${q(`${newDir}/mistral/v2/weights.safetensors`)} bs=1 seek=100 conv=notrunc status=none`);
    const e = await rejection(rekeyStep(c(), 'verify', input));
    expect(e).toMatchObject({ code: 'HASH_MISMATCH' });
    expect(e.message).toMatch(/mistral\/v2\/weights\.safetensors/);
    expect(e.message).toMatch(/old directory stays in use/);
    expect((await modelsStatus(c(), DIR)).identifier).toBe(fscryptKeyIdentifier(current));
    // cleanup before swap is refused: the old directory is the live one.
    expect(await rejection(rekeyStep(c(), 'cleanup', input))).toMatchObject({ code: 'CONFLICT' });
    expect((await rekeyStep(c(), 'copy', input)).copied).toBe(1);
    await rekeyStep(c(), 'verify', input);

    // A damaged original: verify says so, the re-key cannot go on.
    const bad = { ...expected, 'mistral/v2/empty.txt': sha('not empty') };
    const e2 = await rejection(rekeyStep(c(), 'verify', { ...input, expected: bad }));
    expect(e2).toMatchObject({ code: 'HASH_MISMATCH' });
    expect(e2.message).toMatch(/already damaged/);
    expect(await must(c(), `ls ${q(oldDir)}`)).not.toBe('');
    await rekeyModels(c(), input);
    current = next;
    await checkDone(current);
  });

  it('step names are checked, and old == new is refused', async () => {
    expect(await rejection(rekeyStep(c(), 'explode' as RekeyStep, { dir: DIR, oldKey: current, newKey: key() }))).toMatchObject({ code: 'INVALID_INPUT' });
    expect(await rejection(rekeyStep(c(), 'prepare', { dir: DIR, oldKey: current, newKey: Buffer.from(current) }))).toMatchObject({ code: 'INVALID_INPUT' });
  });
});
