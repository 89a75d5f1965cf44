import { z } from 'zod';
import { ModelName, ModelVersion } from '../../../../shared/contract/provision';
import { uploadFile } from '../../ssh/sftp';
import { checkHostPath, q, StepFailure } from '../remote';
import type { StoreModel } from '../store';
import { defineStep, UPLOAD_STALL_MS, type StepContext } from './types';

const Params = z
  .object({
    model: ModelName,
    version: ModelVersion,
    /** The model lands in <dest>/<model>/<version>/. */
    dest: z.string().default('/srv/models'),
    /** SSH connections used at once for the transfer (parallel SFTP streams). */
    connections: z.number().int().min(1).max(8).default(2),
  })
  .strict();
type Params = z.infer<typeof Params>;

export const MANIFEST = '.airlock-manifest.sha256';

export function modelDir(p: { dest: string; model: string; version: string }): string {
  return `${checkHostPath(p.dest, 'dest').replace(/\/+$/, '')}/${p.model}/${p.version}`;
}

function manifest(m: StoreModel): string {
  return m.files.map((f) => `${f.sha256}  ${f.path}\n`).join('');
}

/** Sizes of the files present (missing ones absent), and the manifest Airlock left last time. */
async function present(ctx: StepContext, dir: string, m: StoreModel) {
  const paths = m.files.map((f) => `${dir}/${f.path}`);
  const r = await ctx.remote.sh(`for f in ${paths.map(q).join(' ')}; do if [ -f "$f" ]; then printf '%s\\t%s\\n' "$(stat -c %s "$f")" "$f"; fi; done; true`);
  const sizes = new Map<string, number>();
  for (const line of r.stdout.split('\n')) {
    const t = line.indexOf('\t');
    if (t > 0) sizes.set(line.slice(t + 1), Number(line.slice(0, t)));
  }
  return { sizes, manifest: await ctx.remote.readFile(`${dir}/${MANIFEST}`) };
}

/**
 * Model weights deployment: a model version's files from the offline store, pushed over SFTP with
 * resume (parallel streams), written under a temporary name and renamed once the SHA-256 computed
 * on the host matches, after a free-space check. verify re-hashes every file on the host.
 */
export const modelWeights = defineStep<Params>({
  type: 'model-weights',
  title: 'Model weights deployment',
  params: Params,
  needs: { root: true, store: (p) => [`model:${p.model}=${p.version}`] },
  async check(ctx, p) {
    const m = ctx.store.model(p.model, p.version);
    const dir = modelDir(p);
    const { sizes, manifest: have } = await present(ctx, dir, m);
    const changes = m.files
      .filter((f) => sizes.get(`${dir}/${f.path}`) !== f.size)
      .map((f) => ({ kind: 'model' as const, target: `${dir}/${f.path}`, from: sizes.has(`${dir}/${f.path}`) ? `${sizes.get(`${dir}/${f.path}`)} bytes` : null, to: `${f.size} bytes, sha256 ${f.sha256.slice(0, 16)}…`, diff: null }));
    if (changes.length === 0 && have !== manifest(m)) {
      // Sizes match but Airlock has not verified these bytes (or they were changed): re-verify and re-push what differs.
      changes.push({ kind: 'model', target: `${dir}/${MANIFEST}`, from: have === null ? null : 'different', to: `${m.files.length} file(s) verified`, diff: null });
    }
    return { state: changes.length ? 'change' : 'ok', changes };
  },
  async apply(ctx, p) {
    const m = ctx.store.model(p.model, p.version);
    const dir = modelDir(p);
    await ctx.remote.must(`mkdir -p ${q(dir)}`, `creating ${dir}`);
    // Room for everything not yet there (part files count as there: they will be resumed).
    const need = m.size;
    const df = await ctx.remote.must(`df -B1 --output=avail ${q(dir)} | tail -n 1`, `checking free space in ${dir}`);
    const avail = Number(df.stdout.trim());
    const { sizes } = await present(ctx, dir, m);
    const missing = m.files.filter((f) => sizes.get(`${dir}/${f.path}`) !== f.size).reduce((s, f) => s + f.size, 0);
    if (Number.isFinite(avail) && avail < missing) {
      throw new StepFailure(`not enough space in ${dir}: ${missing} bytes to write, ${avail} free`, null, '', 'NO_SPACE');
    }
    const extra = p.connections > 1 ? await ctx.extraConnections(p.connections - 1) : [];
    const conns = [ctx.remote.conn, ...extra];
    let done = 0;
    let sent = 0;
    for (const f of m.files) {
      const remotePath = `${dir}/${f.path}`;
      const r = await uploadFile({
        connections: conns,
        localPath: ctx.store.objectPath(f.sha256),
        remotePath,
        sha256: f.sha256,
        mode: 0o644,
        signal: ctx.signal,
        // A host that stops acknowledging for this long is given up on (the part file stays for resume).
        timeoutMs: UPLOAD_STALL_MS,
        onProgress: (pr) => ctx.transfer({ sent: sent + pr.sent, done: done + pr.done, total: need }),
      });
      done += f.size;
      sent += r.bytesSent;
      ctx.transfer({ sent, done, total: need });
      ctx.log(
        `${f.path}: ${r.skipped ? 'already there, hash verified' : `${r.bytesSent} bytes sent${r.resumedFrom ? ` (resumed at ${r.resumedFrom})` : ''}, sha256 verified on the host`}\n`,
      );
    }
    await ctx.remote.writeFile(`${dir}/${MANIFEST}`, manifest(m), '0644');
  },
  async verify(ctx, p) {
    const m = ctx.store.model(p.model, p.version);
    const dir = modelDir(p);
    const r = await ctx.remote.sh(`cd ${q(dir)} && sha256sum -- ${m.files.map((f) => q(f.path)).join(' ')}`, { timeoutMs: 60 * 60_000 });
    const got = new Map<string, string>();
    for (const line of r.stdout.split('\n')) {
      const mm = /^([0-9a-f]{64}) [ *](.+)$/.exec(line);
      if (mm) got.set(mm[2]!, mm[1]!);
    }
    const bad = m.files.filter((f) => got.get(f.path) !== f.sha256);
    return {
      ok: bad.length === 0,
      message: bad.length ? `SHA-256 mismatch or missing on the host: ${bad.map((f) => `${dir}/${f.path}`).join(', ')}` : undefined,
      facts: { dir, model: p.model, version: p.version, files: m.files.map((f) => ({ path: f.path, size: f.size, sha256: got.get(f.path) ?? null })) },
    };
  },
});
