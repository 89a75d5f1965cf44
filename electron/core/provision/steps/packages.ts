import { z } from 'zod';
import { uploadFile } from '../../ssh/sftp';
import { checkHostPath, HostPath, q, StepFailure } from '../remote';
import type { StoreDeb } from '../../store/store';
import { defineStep, UPLOAD_STALL_MS, type StepContext } from './types';

const PkgName = z.string().regex(/^[a-z0-9][a-z0-9+.-]+$/);
const Params = z
  .object({
    packages: z.array(z.object({ name: PkgName, version: z.string().regex(/^[A-Za-z0-9.+~:-]+$/).optional() }).strict()).min(1).max(200),
    /** Where the .deb files are staged on the host before dpkg installs them. */
    cacheDir: HostPath.default('/var/cache/airlock/debs'),
  })
  .strict();
type Params = z.infer<typeof Params>;

interface Wanted {
  deb: StoreDeb;
  installed: string | null;
}

async function hostArch(ctx: StepContext): Promise<string> {
  const r = await ctx.remote.must('dpkg --print-architecture', 'reading the host architecture (dpkg)');
  const arch = r.stdout.trim();
  if (!/^[a-z0-9-]{1,32}$/.test(arch)) throw new StepFailure('dpkg printed an unexpected architecture');
  return arch;
}

/** Installed versions (status "install ok installed" only), by package name. */
async function installed(ctx: StepContext, names: string[]): Promise<Map<string, string>> {
  const r = await ctx.remote.sh(`dpkg-query -W -f='\${Package}\\t\${Version}\\t\${Status}\\n' ${names.map(q).join(' ')} 2>/dev/null; true`);
  const out = new Map<string, string>();
  for (const line of r.stdout.split('\n')) {
    const [name, version, status] = line.split('\t');
    if (name && version && status === 'install ok installed') out.set(name, version);
  }
  return out;
}

async function wanted(ctx: StepContext, p: Params): Promise<Wanted[]> {
  const arch = await hostArch(ctx);
  const have = await installed(ctx, p.packages.map((x) => x.name));
  return p.packages.map((x) => ({ deb: ctx.store.deb(x.name, arch, x.version), installed: have.get(x.name) ?? null }));
}

/**
 * Offline package installation: only .deb files from Airlock's offline store, uploaded over SFTP,
 * checked by SHA-256 on the host, checked to be the package they claim (dpkg-deb --field), and
 * installed with `dpkg -i` from the local files. Never a network fetch.
 */
export const offlinePackages = defineStep<Params>({
  type: 'offline-packages',
  title: 'Offline package installation',
  params: Params,
  needs: { root: true, store: (p) => p.packages.map((x) => `deb:${x.name}${x.version ? `=${x.version}` : ''}`) },
  async check(ctx, p) {
    const w = await wanted(ctx, p);
    const changes = w
      .filter((x) => x.installed !== x.deb.version)
      .map((x) => ({ kind: 'package' as const, target: x.deb.package, from: x.installed, to: `${x.deb.version} (${x.deb.arch})`, diff: null }));
    return { state: changes.length ? 'change' : 'ok', changes };
  },
  async apply(ctx, p) {
    const w = (await wanted(ctx, p)).filter((x) => x.installed !== x.deb.version);
    if (w.length === 0) return;
    const dir = checkHostPath(p.cacheDir, 'cacheDir');
    await ctx.remote.must(`mkdir -p ${q(dir)} && chmod 0700 ${q(dir)}`, `creating ${dir}`);
    const total = w.reduce((s, x) => s + x.deb.size, 0);
    let done = 0;
    const files: string[] = [];
    for (const x of w) {
      const remotePath = `${dir}/${x.deb.file}`;
      const r = await uploadFile({
        connections: [ctx.remote.conn],
        localPath: ctx.store.objectPath(x.deb.sha256),
        remotePath,
        sha256: x.deb.sha256,
        mode: 0o600,
        signal: ctx.signal,
        // A host that stops acknowledging for this long is given up on (the part file stays for resume).
        timeoutMs: UPLOAD_STALL_MS,
        onProgress: (pr) => ctx.transfer({ sent: pr.sent, done: done + pr.done, total }),
      });
      done += x.deb.size;
      ctx.transfer({ sent: r.bytesSent, done, total });
      ctx.log(`${x.deb.file}: ${r.skipped ? 'already on the host' : `uploaded ${r.bytesSent} bytes`}, sha256 ${r.sha256.slice(0, 16)}… verified on the host\n`);
      // The file must be the package the store says it is before dpkg touches it.
      const f = await ctx.remote.must(`dpkg-deb --field ${q(remotePath)} Package Version Architecture`, `reading ${x.deb.file}`);
      const fields = Object.fromEntries(f.stdout.split('\n').filter(Boolean).map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1).trim()]));
      if (fields.Package !== x.deb.package || fields.Version !== x.deb.version || fields.Architecture !== x.deb.arch) {
        throw new StepFailure(`${x.deb.file} says it is ${fields.Package} ${fields.Version} (${fields.Architecture}), not what the store recorded`, null, '', 'PARSE_ERROR');
      }
      files.push(remotePath);
    }
    await ctx.remote.must(`DEBIAN_FRONTEND=noninteractive dpkg -i ${files.map(q).join(' ')}`, 'dpkg -i', { timeoutMs: 10 * 60_000, onOutput: (s) => ctx.log(s) });
  },
  async verify(ctx, p) {
    const w = await wanted(ctx, p);
    const bad = w.filter((x) => x.installed !== x.deb.version);
    return {
      ok: bad.length === 0,
      message: bad.map((x) => `${x.deb.package}: ${x.installed ?? 'not installed'}, ${x.deb.version} wanted`).join('; ') || undefined,
      facts: { packages: w.map((x) => ({ name: x.deb.package, version: x.installed, arch: x.deb.arch, sha256: x.deb.sha256 })) },
    };
  },
});
