/**
 * Models re-key benchmark (issue 12): re-encrypting 1 GiB of model files on a lab host under a
 * new fscrypt key — the whole rekeyModels, all five steps, including the SHA-256 verification of
 * every copied file and the fsyncs — against `cp -r` of the same files on the same host, same
 * filesystem — into a directory encrypted under a key of its own, so cp does the same
 * re-encryption — followed by `sync -f` (a copy someone would trust after a crash), in the same
 * run, runs interleaved, medians. Context rows: cp into a plain directory (no encryption at all),
 * with and without sync, and each step's share. Page cache warm for both: the files were just written. The host's
 * models image is sized for it (4 GiB sparse: the old and new copies plus cp's).
 */
import crypto from 'node:crypto';
import { connect } from '../../electron/core/ssh/connection/connect';
import type { SshConnection } from '../../electron/core/ssh/connection/types';
import { shellQuote as q } from '../../electron/core/ssh/quote';
import { generateIdentity } from '../../electron/core/identity/ssh-key';
import { encryptModelsDir } from '../../electron/core/keys/fscrypt';
import { REKEY_STEPS, rekeyStep, type RekeyStep } from '../../electron/core/keys/fscrypt-rekey';
import { authorizeKey, labDown, labUp, MODELS_FS_MOUNT } from '../lab/lab';
import type { BenchRow } from './transfer';

const LAB_ID = 'rekey-bench';
const DIR = '/srv/models';
const CP_DIR = '/srv/models-cp';
const FILES = 8;
const FILE_MIB = 128; // 8 × 128 MiB = 1 GiB
const REPS = 3;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function must(conn: SshConnection, script: string): Promise<string> {
  const r = await conn.exec(`/bin/sh -c ${q(script)}`, { timeoutMs: 600_000 });
  if (r.code !== 0) throw new Error(`rekey bench: ${script}: exit ${r.code}: ${r.stderr}`);
  return r.stdout;
}

export async function benchRekey(rows: BenchRow[]): Promise<void> {
  const lab = await labUp({ id: LAB_ID, hosts: 1, replace: true, encryptedModels: { sizeMiB: 4096 } });
  let conn: SshConnection | null = null;
  try {
    const h = lab.hosts[0]!;
    if (!h.models?.mounted) throw new Error(`rekey bench: ${h.models?.error ?? 'no models filesystem'}`);
    const id = generateIdentity('airlock-bench-rekey');
    await authorizeKey(lab, id.publicKey);
    conn = await connect({ address: h.address, port: h.port, user: h.user, fingerprint: h.fingerprint, hostName: h.name }, { privateKey: id.privateKey }, { timeoutMs: 30_000 });
    let key = crypto.randomBytes(64);
    await encryptModelsDir(conn, DIR, key);
    // The model files, written on the host (random: incompressible), and their SHA-256 as the store has them.
    await must(conn, `mkdir -p ${DIR}/bench/v1 && for i in $(seq 1 ${FILES}); do head -c ${FILE_MIB}M /dev/urandom > ${DIR}/bench/v1/shard-$i.bin; done && sync -f ${DIR}/`);
    const sums = await must(conn, `cd ${DIR}/ && sha256sum bench/v1/*`);
    const expected = Object.fromEntries(sums.trim().split('\n').map((l) => { const [hash, p] = l.split(/\s+/); return [p!, hash!]; }));
    if (Object.keys(expected).length !== FILES) throw new Error('rekey bench: the host did not hash every file');

    // The anchor's target: a directory encrypted under a key of its own (cp re-encrypts into it, as
    // the re-key does); a context row copies into a plain directory of the same filesystem.
    await encryptModelsDir(conn, CP_DIR, crypto.randomBytes(64));
    const cpEnc: number[] = [];
    const cpPlain: number[] = [];
    const cpPlainNoSync: number[] = [];
    const rekey: number[] = [];
    const perStep: Record<RekeyStep, number[]> = { prepare: [], copy: [], verify: [], swap: [], cleanup: [] };
    // Timed on the host, so the SSH round trip of starting the command is not cp's.
    const cpInto = async (target: string): Promise<[number, number]> => {
      await must(conn!, `rm -rf ${target}/* && sync -f ${MODELS_FS_MOUNT}`);
      const out = await must(conn!, `a=$(date +%s%N); cp -r ${DIR}/. ${target}/; b=$(date +%s%N); sync -f ${MODELS_FS_MOUNT}; c=$(date +%s%N); echo $a $b $c`);
      const [a, b, c] = out.trim().split(' ').map(Number) as [number, number, number];
      await must(conn!, `rm -rf ${target}/* && sync -f ${MODELS_FS_MOUNT}`);
      return [(b - a) / 1e6, (c - a) / 1e6];
    };
    const cp = async () => {
      cpEnc.push((await cpInto(CP_DIR))[1]);
      await must(conn!, `mkdir -p ${MODELS_FS_MOUNT}/cp-plain`);
      const [noSync, withSync] = await cpInto(`${MODELS_FS_MOUNT}/cp-plain`);
      cpPlain.push(withSync);
      cpPlainNoSync.push(noSync);
    };
    const rk = async () => {
      const next = crypto.randomBytes(64);
      const t0 = performance.now();
      for (const step of REKEY_STEPS) {
        const s = performance.now();
        await rekeyStep(conn!, step, { dir: DIR, oldKey: key, newKey: next, expected });
        perStep[step].push(performance.now() - s);
      }
      rekey.push(performance.now() - t0);
      key.fill(0);
      key = next;
    };
    for (let i = 0; i < REPS; i++) {
      if (i % 2 === 0) {
        await cp();
        await rk();
      } else {
        await rk();
        await cp();
      }
    }
    const gib = (ms: number) => `${(1024 / (ms / 1000)).toFixed(0)} MiB/s`;
    const r = median(rekey);
    rows.push({
      figure: 're-key 1 GiB of model files on a host (fscrypt v2, copy + SHA-256 verify + swap + cleanup)',
      value: `${(r / 1000).toFixed(2)} s (${gib(r)})`,
      anchor: '`cp -r` + `sync -f` of the same files into a directory under another key, same host and filesystem',
      anchorValue: `${(median(cpEnc) / 1000).toFixed(2)} s (${gib(median(cpEnc))})`,
      ratio: `${(median(cpEnc) / r).toFixed(2)}×`,
      goal: '≥ 0.7×',
    });
    rows.push({ figure: '(context) the same', value: `${(r / 1000).toFixed(2)} s`, anchor: '`cp -r` + `sync -f` into a plain directory (no encryption)', anchorValue: `${(median(cpPlain) / 1000).toFixed(2)} s`, ratio: `${(median(cpPlain) / r).toFixed(2)}×`, goal: 'report' });
    rows.push({ figure: '(context) the same', value: `${(r / 1000).toFixed(2)} s`, anchor: '`cp -r` into a plain directory, no sync', anchorValue: `${(median(cpPlainNoSync) / 1000).toFixed(2)} s`, ratio: `${(median(cpPlainNoSync) / r).toFixed(2)}×`, goal: 'report' });
    for (const step of REKEY_STEPS) {
      rows.push({ figure: `(context) re-key step ${step}`, value: `${(median(perStep[step]) / 1000).toFixed(2)} s`, anchor: 'whole re-key', anchorValue: `${(r / 1000).toFixed(2)} s`, ratio: `${((median(perStep[step]) / r) * 100).toFixed(0)}%`, goal: 'report' });
    }
    key.fill(0);
  } finally {
    conn?.close();
    await labDown({ id: LAB_ID });
  }
}
