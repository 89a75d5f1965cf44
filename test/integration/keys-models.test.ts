/**
 * Model weights at rest, end to end from the `airlock` CLI (run in-process, each invocation its
 * own console process as far as the key hierarchy goes) on a real lab whose hosts have an ext4
 * models filesystem with the encrypt feature: genesis, the hosts enrolled, protect-models on both
 * (a non-empty plain directory refused first), weights written over SSH never in the clear in the
 * raw filesystem image, a host's key removed from its kernel (a reboot), models-status locked,
 * unlock-models refused while the hierarchy is sealed and done with the officers' shares.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from '../../electron/core/ssh/connection/connect';
import type { SshConnection } from '../../electron/core/ssh/connection/types';
import { shellQuote as q } from '../../electron/core/ssh/quote';
import { generateIdentity } from '../../electron/core/identity/ssh-key';
import Database from 'better-sqlite3';
import { lockModels, modelsStatus } from '../../electron/core/keys/fscrypt';
import { EXIT } from '../../electron/shells/cli';
import { ALICE, inProcessCli } from '../support/cli';
import { testCore } from '../support/core';
import { authorizeKey, hostModelsImage, labDown, labUp, MODELS_FS_MOUNT, type Lab } from '../lab/lab';

const LAB_ID = 'kmodels';
const DIR = '/srv/models';
const T = 60_000;

let lab: Lab;
let data: string;
let work: string;
let shares: string[] = [];
const conns = new Map<string, SshConnection>();

const airlock = inProcessCli(() => data);

async function ok(args: string[]) {
  const r = await airlock(args);
  expect(r.code, `airlock ${args.join(' ')}\n${r.stderr}${r.stdout}`).toBe(EXIT.ok);
  return r;
}

/** A shell script on a host over this test's own SSH connection (not the console's). */
async function sh(host: string, script: string, stdin?: string) {
  return conns.get(host)!.exec(`/bin/sh -c ${q(script)}`, { timeoutMs: T, ...(stdin === undefined ? {} : { stdin }) });
}
async function must(host: string, script: string, stdin?: string): Promise<string> {
  const r = await sh(host, script, stdin);
  if (r.code !== 0) throw new Error(`${host}: ${script}: exit ${r.code}: ${r.stderr}`);
  return r.stdout;
}

/** The host's models filesystem flushed to its loop device, read raw on this machine. */
async function rawImage(host: string): Promise<Buffer> {
  await must(host, `sync -f ${q(MODELS_FS_MOUNT)}`);
  return fs.readFileSync(await hostModelsImage(lab, host));
}

type Status = { host: string; state: string; keyId: string | null; identifier: string | null; dir: string };
type Unlock = Status & { outcome: string; code: string | null; message: string | null };

beforeAll(async () => {
  data = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-kmodels-'));
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-kmodels-work-'));
  lab = await labUp({ id: LAB_ID, hosts: 2, encryptedModels: true });
  await ok(['init', '--admin', 'alice']);
  await authorizeKey(lab, (await ok(['identity', 'show'])).stdout.trim());
  const mine = generateIdentity('airlock-kmodels-test');
  await authorizeKey(lab, mine.publicKey);
  for (const h of lab.hosts) {
    await ok(['hosts', 'add', h.name, '--address', h.address, '--port', String(h.port), '--user', h.user, '--fingerprint', h.fingerprint]);
    conns.set(h.name, await connect({ address: h.address, port: h.port, user: h.user, fingerprint: h.fingerprint, hostName: h.name }, { privateKey: mine.privateKey }, { timeoutMs: 30_000 }));
  }
  const g = await ok(['keys', 'genesis', '--threshold', '2', '--shares', '3', '--share-dir', path.join(work, 'shares'), '--json']);
  shares = g.json<{ shareFiles: string[] }>().shareFiles.map((f) => path.resolve(f));
}, 240_000);

afterAll(async () => {
  for (const c of conns.values()) c.close();
  await labDown({ id: LAB_ID });
  for (const d of [data, work]) if (d) fs.rmSync(d, { recursive: true, force: true });
}, 180_000);

const withShares = () => shares.slice(0, 2).flatMap((f) => ['--share', f]);

describe('models at rest from the console', () => {
  const marker = `AIRLOCK-WEIGHTS-${crypto.randomBytes(8).toString('hex')}`;
  const content = marker.repeat(4000);
  const digest = crypto.createHash('sha256').update(content).digest('hex');
  const file = `${DIR}/llm/7/weights.bin`;

  it('models-status: nothing there yet, and no key; protect-models refuses while sealed, and a non-empty plain directory', async () => {
    for (const h of lab.hosts) {
      const st = (await ok(['keys', 'models-status', h.name, '--json'])).json<Status>();
      expect(st).toEqual({ host: h.name, state: 'absent', keyId: null, identifier: null, dir: DIR });
    }
    const sealed = await airlock(['keys', 'protect-models', 'host1']);
    expect(sealed.code).toBe(EXIT.failed);
    expect(sealed.stderr).toMatch(/KEY_UNAVAILABLE/);
    expect(sealed.stderr).toMatch(/sealed/);

    const modelsKeys = async () =>
      (await ok(['keys', 'status', '--json'])).json<{ domains: { domain: string; versions: { dataKeys: number }[] }[] }>().domains.find((d) => d.domain === 'models')!.versions.reduce((a, v) => a + v.dataKeys, 0);
    // A plain directory on the root filesystem, with files: refused, untouched, no key made.
    await must('host2', `mkdir -p ${q(DIR)} && echo plain > ${q(`${DIR}/old.bin`)}`);
    const plain = await airlock(['keys', 'protect-models', 'host2', ...withShares()]);
    expect(plain.code).toBe(EXIT.failed);
    expect(plain.stderr).toMatch(/CONFLICT/);
    expect(plain.stderr).toMatch(/plain directory .* move its files away/);
    expect(await must('host2', `cat ${q(`${DIR}/old.bin`)}`)).toBe('plain\n');
    await must('host2', `rm -rf ${q(DIR)}`);
    // An unencrypted directory in the models filesystem itself, with files: refused the same way.
    const inFs = `${MODELS_FS_MOUNT}/plain`;
    await must('host2', `mkdir -p ${q(inFs)} && echo plain > ${q(`${inFs}/old.bin`)} && ln -s ${q(inFs)} ${q(DIR)}`);
    expect((await ok(['keys', 'models-status', 'host2', '--json'])).json<Status>().state).toBe('unencrypted');
    const full = await airlock(['keys', 'protect-models', 'host2', ...withShares()]);
    expect(full.code).toBe(EXIT.failed);
    expect(full.stderr).toMatch(/CONFLICT/);
    expect(full.stderr).toMatch(/already holds unencrypted files/);
    expect(await must('host2', `cat ${q(`${DIR}/old.bin`)}`)).toBe('plain\n');
    expect(await modelsKeys()).toBe(0);
    await must('host2', `rm -rf ${q(DIR)} ${q(inFs)}`);
  });

  it('protect-models on both hosts: each its own key; weights written over SSH are not in the raw image', async () => {
    const ids = new Set<string>();
    for (const h of lab.hosts) {
      const p = (await ok(['keys', 'protect-models', h.name, ...withShares(), '--json'])).json<Status>();
      expect(p).toMatchObject({ host: h.name, state: 'unlocked', keyId: `models.${h.name}.1`, dir: DIR });
      expect(p.identifier).toMatch(/^[0-9a-f]{32}$/);
      ids.add(p.identifier!);
      expect((await must(h.name, `readlink ${q(DIR)}`)).trim()).toBe(`${MODELS_FS_MOUNT}/k-${p.identifier}`);
      const st = (await ok(['keys', 'models-status', h.name, '--json'])).json<Status>();
      expect(st).toEqual(p);
    }
    expect(ids.size).toBe(2);
    const ks = (await ok(['keys', 'status', '--json'])).json<{ domains: { domain: string; versions: { dataKeys: number }[] }[] }>();
    expect(ks.domains.find((d) => d.domain === 'models')!.versions.reduce((a, v) => a + v.dataKeys, 0)).toBe(2);
    // Again: the same key, nothing new.
    const again = (await ok(['keys', 'protect-models', 'host1', ...withShares(), '--json'])).json<Status>();
    expect(again.keyId).toBe('models.host1.1');

    for (const h of lab.hosts) {
      await must(h.name, `mkdir -p ${q(path.posix.dirname(file))} && cat > ${q(file)}`, content);
      expect(await must(h.name, `sha256sum ${q(file)}`)).toMatch(new RegExp(`^${digest} `));
      const img = await rawImage(h.name);
      expect(img.length).toBeGreaterThan(0);
      expect(img.includes(marker)).toBe(false);
    }
  });

  it('a host whose key left its kernel (a reboot) is locked; unlock-models refuses while sealed, and with the shares unlocks it', async () => {
    expect((await lockModels(conns.get('host1')!, DIR)).state).toBe('locked');
    const st = (await ok(['keys', 'models-status', 'host1', '--json'])).json<Status>();
    expect(st).toMatchObject({ host: 'host1', state: 'locked', keyId: 'models.host1.1' });
    const read = await sh('host1', `cat ${q(file)}`);
    expect(read.code).not.toBe(0);
    expect(read.stdout).not.toContain(marker);
    // The scan says so on its plain line too (sealed in this process: nothing delivered).
    const scan = (await ok(['hosts', 'scan', 'host1', 'host2'])).stdout.split('\n');
    expect(scan.find((l) => l.startsWith('host1\t'))).toMatch(/\tmodels: LOCKED \(unseal the key hierarchy, or keys unlock-models\)$/);
    expect(scan.find((l) => l.startsWith('host2\t'))).toMatch(/\tmodels: unlocked$/);

    const sealed = await airlock(['keys', 'unlock-models', 'all']);
    expect(sealed.code).toBe(EXIT.failed);
    expect(sealed.stderr).toMatch(/KEY_UNAVAILABLE/);
    expect((await ok(['keys', 'models-status', 'host1', '--json'])).json<Status>().state).toBe('locked');

    const r = await airlock(['keys', 'unlock-models', 'all', ...withShares(), '--json']);
    expect(r.code, r.stderr).toBe(EXIT.ok);
    const out = r.json<Unlock[]>();
    expect(out.map((x) => [x.host, x.outcome, x.state])).toEqual([
      ['host1', 'unlocked', 'unlocked'],
      ['host2', 'already', 'unlocked'],
    ]);
    expect(await must('host1', `sha256sum ${q(file)}`)).toMatch(new RegExp(`^${digest} `));
    expect((await ok(['keys', 'models-status', 'host1', '--json'])).json<Status>().state).toBe('unlocked');
  });

  it('an unseal in a long-lived console (the ceremony screen asks for it) unlocks every locked protected host in the background, one audit event each', async () => {
    for (const h of ['host1', 'host2']) expect((await lockModels(conns.get(h)!, DIR)).state).toBe('locked');
    const t = await testCore({ dataDir: data, sshTimeoutMs: 10_000 });
    try {
      const c = t.client();
      await c.ok('session:login', { name: 'alice', password: ALICE });
      let un = await c.ok('keys:begin', { kind: 'unseal' });
      un = await c.ok('keys:acknowledge', { ceremony: un.id, step: 1, by: 'alice' });
      const share = (k: number) => fs.readFileSync(shares[k]!, 'utf8');
      expect(await c.ok('keys:addShare', { ceremony: un.id, share: share(0), unlockModels: true })).toMatchObject({ done: false, unlocking: [] });
      expect(await c.ok('keys:addShare', { ceremony: un.id, share: share(1), unlockModels: true })).toMatchObject({ done: true, unlocking: ['host1', 'host2'] });
      // The ceremony answered at once; the hosts are unlocked behind it (each over its own SSH connection).
      const deadline = Date.now() + T;
      const states = async () => Promise.all(['host1', 'host2'].map(async (h) => (await modelsStatus(conns.get(h)!, DIR)).state));
      while ((await states()).some((s) => s !== 'unlocked') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
      expect(await states()).toEqual(['unlocked', 'unlocked']);
      expect(await must('host1', `sha256sum ${q(file)}`)).toMatch(new RegExp(`^${digest} `));
      const db = new Database(path.join(data, 'airlock.db'), { readonly: true });
      try {
        let rows: Array<{ target: string; params: { after?: string; outcome?: string; keyId?: string } }> = [];
        while (Date.now() < deadline) {
          rows = (db.prepare("SELECT body FROM audit_events WHERE json_extract(body, '$.channel') = 'keys:unlockModels' AND json_extract(body, '$.phase') = 'outcome' AND json_extract(body, '$.params.after') = 'unseal' ORDER BY seq").pluck().all() as string[]).map((b) => JSON.parse(b));
          if (rows.length >= 2) break;
          await new Promise((r) => setTimeout(r, 200));
        }
        expect(rows.map((r) => [r.target, r.params.outcome, r.params.keyId]).sort()).toEqual([
          ['host1', 'unlocked', 'models.host1.1'],
          ['host2', 'unlocked', 'models.host2.1'],
        ]);
      } finally {
        db.close();
      }
    } finally {
      await t.close();
    }
  });

  it('unlock-models names hosts: an unknown one is refused; a host without a models key is skipped and the command fails', async () => {
    const unknown = await airlock(['keys', 'unlock-models', 'nosuchhost', ...withShares()]);
    expect(unknown.stderr).toMatch(/NOT_FOUND/);
    expect(unknown.code).not.toBe(EXIT.ok);
    // host2's row gone (its key shredded would do the same): nothing to deliver, said so.
    const third = lab.hosts[1]!;
    await ok(['hosts', 'remove', third.name]);
    await ok(['hosts', 'add', 'gpu-extra', '--address', third.address, '--port', String(third.port), '--user', third.user, '--fingerprint', third.fingerprint]);
    const r = await airlock(['keys', 'unlock-models', 'host1', 'gpu-extra', ...withShares(), '--json']);
    expect(r.code).toBe(EXIT.failed);
    expect(r.json<Unlock[]>().map((x) => [x.host, x.outcome, x.code])).toEqual([
      ['host1', 'already', null],
      ['gpu-extra', 'skipped', 'NOT_FOUND'],
    ]);
  });
});
