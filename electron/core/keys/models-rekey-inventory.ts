import { z } from 'zod';
import { AirlockError } from '../../../shared/domain/errors';
import { shellQuote, shellQuoteScript } from '../ssh/quote';
import { sanitizeHostText } from '../ssh/sanitize';
import { checkModelsPath, type HostExec } from './fscrypt';
import { checkRelPath } from './fscrypt-rekey';

/**
 * What a re-key's `verify` checks the new copy against (keys/models-rekey.ts): the SHA-256 of every
 * file of the host's models directory, read on the host from the old directory right after
 * `prepare` (the old key is then in the kernel), and checked there against the manifests
 * provisioning wrote beside each model (`.airlock-manifest.sha256`, the offline store's hashes,
 * provision/steps/models.ts). A file a manifest lists with another hash means the old copy is
 * already damaged: the re-key refuses before anything is copied, rather than carry the damage
 * into the new directory. Only hashes cross the network; the bytes stay on the host.
 */

/** The manifest provisioning writes into every model version's directory. */
export const MODEL_MANIFEST = '.airlock-manifest.sha256';
const MAX_FILES = 100_000;
/** 100,000 paths of up to 4 KiB would be more; real model trees are far below this. */
const MAX_OUTPUT = 32 * 1024 * 1024;
const SHA256 = /^[0-9a-f]{64}$/;

/** Hashes every regular file under realpath(DIR) (symlinks, devices refused as the re-key's copy does). One JSON line. */
export const INVENTORY_PY = String.raw`
import hashlib, json, os, stat, sys
from concurrent.futures import ThreadPoolExecutor
def fail(code, detail=''):
    sys.stdout.write(json.dumps({'ok': False, 'code': code, 'detail': str(detail)[:200]}) + '\n')
    sys.exit(3)
def sha256(p):
    h = hashlib.sha256()
    with open(p, 'rb', buffering=0) as f:
        b = bytearray(1 << 22)
        v = memoryview(b)
        while True:
            n = f.readinto(b)
            if not n:
                break
            h.update(v[:n])
    return h.hexdigest()
def main(d, limit):
    top = os.path.realpath(d)
    if not os.path.isdir(top):
        fail('ABSENT', d)
    rels = []
    def bad(e):
        raise e
    for root, dirs, files in os.walk(top, onerror=bad):
        for n in dirs:
            if os.path.islink(os.path.join(root, n)):
                fail('SPECIAL', os.path.relpath(os.path.join(root, n), top))
        for n in files:
            p = os.path.join(root, n)
            if not stat.S_ISREG(os.lstat(p).st_mode):
                fail('SPECIAL', os.path.relpath(p, top))
            rels.append(os.path.relpath(p, top))
            if len(rels) > limit:
                fail('TOOMANY', limit)
    rels.sort()
    with ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1))) as ex:
        sums = list(ex.map(lambda r: sha256(os.path.join(top, r)), rels))
    manifests = {}
    for r in rels:
        if os.path.basename(r) == '${MODEL_MANIFEST}':
            with open(os.path.join(top, r), 'rb') as f:
                manifests[r] = f.read(1 << 20).decode('utf-8', 'replace')
    sys.stdout.write(json.dumps({'ok': True, 'files': dict(zip(rels, sums)), 'manifests': manifests}) + '\n')
try:
    main(sys.argv[1], int(sys.argv[2]))
except OSError as e:
    fail('ENOKEY' if e.errno == 126 else 'OS', e.strerror)
`;

const Out = z.union([
  z.object({ ok: z.literal(true), files: z.record(z.string().max(4096), z.string().regex(SHA256)), manifests: z.record(z.string().max(4096), z.string().max(1 << 21)) }).strict(),
  z.object({ ok: z.literal(false), code: z.string().regex(/^[A-Z]{2,16}$/), detail: z.string().max(400) }).strict(),
]);

const REFUSED: Record<string, string> = {
  ABSENT: 'does not exist on the host',
  SPECIAL: 'holds a symbolic link, device or socket, which a re-key does not copy; remove it first',
  TOOMANY: `holds more than ${MAX_FILES} files`,
  ENOKEY: 'is locked (its key is not in the host kernel); unlock it first (keys unlock-models)',
};

/**
 * The SHA-256 of every file of `dir` (relative paths), computed on the host and checked against
 * the model manifests in it. HASH_MISMATCH when a file differs from its manifest (the old copy is
 * damaged: push that model again, then re-key).
 */
export async function inventoryModels(conn: HostExec, dir: string, opts: { sudo?: boolean; timeoutMs?: number; signal?: AbortSignal } = {}): Promise<Record<string, string>> {
  checkModelsPath(dir, 'The models directory');
  const cmd = `${opts.sudo ? 'sudo -n ' : ''}python3 -I -S -c ${shellQuoteScript(INVENTORY_PY)} ${shellQuote(dir)} ${shellQuote(String(MAX_FILES))}`;
  const r = await conn.exec(cmd, { timeoutMs: opts.timeoutMs ?? 60 * 60_000, signal: opts.signal, maxOutputBytes: MAX_OUTPUT });
  const text = r.stdout.trim();
  let parsed: z.infer<typeof Out> | null = null;
  try {
    const p = Out.safeParse(JSON.parse(text));
    parsed = p.success && !r.truncated && !text.includes('\n') ? p.data : null;
  } catch {
    parsed = null;
  }
  if (!parsed) {
    const err = sanitizeHostText(r.stderr, 200);
    throw new AirlockError('PARSE_ERROR', `Listing the model files of ${dir}: the host's answer was not understood (exit ${r.code ?? r.signal ?? '?'})${err ? `: ${err}` : ''}.`);
  }
  if (!parsed.ok) {
    const why = REFUSED[parsed.code] ?? `could not be read (${parsed.code})`;
    throw new AirlockError(parsed.code === 'ENOKEY' ? 'KEY_UNAVAILABLE' : 'CONFLICT', `Listing the model files of ${dir}: the directory ${why}.`);
  }
  for (const p of Object.keys(parsed.files)) checkRelPath(p);
  checkManifests(dir, parsed.files, parsed.manifests);
  return parsed.files;
}

/** Every file a manifest lists must be there with the manifest's hash. */
export function checkManifests(dir: string, files: Record<string, string>, manifests: Record<string, string>): void {
  const bad: string[] = [];
  for (const [m, text] of Object.entries(manifests)) {
    const base = m.includes('/') ? m.slice(0, m.lastIndexOf('/') + 1) : '';
    for (const line of text.split('\n')) {
      const mm = /^([0-9a-f]{64}) [ *](.+)$/.exec(line);
      if (!mm) continue;
      const rel = base + mm[2]!;
      if (files[rel] !== mm[1]) bad.push(`${JSON.stringify(rel.slice(0, 120))} ${files[rel] === undefined ? 'is missing' : 'differs from its manifest'}`);
    }
  }
  if (bad.length) {
    throw new AirlockError(
      'HASH_MISMATCH',
      `The models in ${dir} on the host are already damaged: ${bad.slice(0, 5).join('; ')}${bad.length > 5 ? '; …' : ''}. Nothing was copied; the old directory stays in use. Push those models again (provisioning's model-weights step), then resume the re-key.`,
    );
  }
}
