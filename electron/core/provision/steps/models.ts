import { z } from 'zod';
import { ModelName, ModelVersion } from '../../../../shared/contract/provision';
import { uploadFile } from '../../ssh/sftp';
import { checkHostPath, HostPath, q, StepFailure } from '../remote';
import type { StoreModel } from '../../store/store';
import { defineStep, UPLOAD_STALL_MS, type StepContext } from './types';

const Params = z
  .object({
    model: ModelName,
    version: ModelVersion,
    /** The model lands in <dest>/<model>/<version>/. */
    dest: HostPath.default('/srv/models'),
    /** SSH connections used at once for the transfer (parallel SFTP streams). */
    connections: z.number().int().min(1).max(8).default(2),
    /**
     * SFTP channels per connection (sshd allows about 2 MiB in flight per channel). One stream in
     * all (1 × 1) resumes exactly from the part file; more streams resume from the last checkpoint.
     */
    channelsPerConnection: z.number().int().min(1).max(4).default(2),
    /**
     * check re-hashes every file on the host instead of trusting sizes and modification times
     * (slow for large models; for repairing a corruption that kept both, which verify reports).
     */
    rehash: z.boolean().default(false),
  })
  .strict();
type Params = z.infer<typeof Params>;

export const MANIFEST = '.airlock-manifest.sha256';
/** Size and modification time of every file as Airlock last verified it: a change means re-check. */
export const STAT = '.airlock-manifest.stat';

export function modelDir(p: { dest: string; model: string; version: string }): string {
  return `${checkHostPath(p.dest, 'dest').replace(/\/+$/, '')}/${p.model}/${p.version}`;
}

function manifest(m: StoreModel): string {
  return m.files.map((f) => `${f.sha256}  ${f.path}\n`).join('');
}

/** Sizes and modification times of the files present (missing ones absent), and what Airlock recorded last time. */
async function present(ctx: StepContext, dir: string, m: StoreModel) {
  const paths = m.files.map((f) => `${dir}/${f.path}`);
  const r = await ctx.remote.sh(`for f in ${paths.map(q).join(' ')}; do if [ -f "$f" ]; then printf '%s\\t%s\\n' "$(stat -c '%s %Y' "$f")" "$f"; fi; done; true`);
  const sizes = new Map<string, number>();
  const lines: string[] = [];
  for (const line of r.stdout.split('\n')) {
    const t = line.indexOf('\t');
    if (t > 0) {
      sizes.set(line.slice(t + 1), Number(line.slice(0, t).split(' ')[0]));
      lines.push(line);
    }
  }
  return { sizes, stat: lines.join('\n') + '\n', manifest: await ctx.remote.readFile(`${dir}/${MANIFEST}`), recorded: await ctx.remote.readFile(`${dir}/${STAT}`) };
}

/** SHA-256 of each file as computed on the host (null where missing or unreadable). */
async function hostHashes(ctx: StepContext, dir: string, m: StoreModel): Promise<Map<string, string>> {
  const r = await ctx.remote.sh(`cd ${q(dir)} && sha256sum -- ${m.files.map((f) => q(f.path)).join(' ')}`, { timeoutMs: 60 * 60_000 });
  const got = new Map<string, string>();
  for (const line of r.stdout.split('\n')) {
    const mm = /^([0-9a-f]{64}) [ *](.+)$/.exec(line);
    if (mm) got.set(mm[2]!, mm[1]!);
  }
  return got;
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
    const { sizes, manifest: have, stat, recorded } = await present(ctx, dir, m);
    const hashes = p.rehash ? await hostHashes(ctx, dir, m) : null;
    const changes = m.files
      .filter((f) => sizes.get(`${dir}/${f.path}`) !== f.size || (hashes && hashes.get(f.path) !== f.sha256))
      .map((f) => ({
        kind: 'model' as const,
        target: `${dir}/${f.path}`,
        from: sizes.has(`${dir}/${f.path}`) ? `${sizes.get(`${dir}/${f.path}`)} bytes${hashes ? `, sha256 ${(hashes.get(f.path) ?? '?').slice(0, 16)}…` : ''}` : null,
        to: `${f.size} bytes, sha256 ${f.sha256.slice(0, 16)}…`,
        diff: null,
      }));
    if (changes.length === 0 && (have !== manifest(m) || recorded !== stat)) {
      // Sizes match, but Airlock has not verified these bytes, or a file was written since: re-verify (on the host) and re-push what differs.
      changes.push({ kind: 'model', target: `${dir}/${MANIFEST}`, from: have === null ? null : 'files changed since Airlock verified them', to: `${m.files.length} file(s) verified`, diff: null });
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
        channelsPerConnection: p.channelsPerConnection,
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
    await ctx.remote.writeFile(`${dir}/${STAT}`, (await present(ctx, dir, m)).stat, '0644');
  },
  async verify(ctx, p) {
    const m = ctx.store.model(p.model, p.version);
    const dir = modelDir(p);
    const got = await hostHashes(ctx, dir, m);
    const bad = m.files.filter((f) => got.get(f.path) !== f.sha256);
    return {
      ok: bad.length === 0,
      message: bad.length ? `SHA-256 mismatch or missing on the host: ${bad.map((f) => `${dir}/${f.path}`).join(', ')}` : undefined,
      facts: { dir, model: p.model, version: p.version, files: m.files.map((f) => ({ path: f.path, size: f.size, sha256: got.get(f.path) ?? null })) },
    };
  },
});
