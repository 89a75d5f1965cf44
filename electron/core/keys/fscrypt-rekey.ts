import { z } from 'zod';
import { AirlockError } from '../../../shared/domain/errors';
import { type FscryptOptions, type HostExec, checkKey, checkModelsPath, fscryptKeyIdentifier, modelsStore, runHost } from './fscrypt';

/**
 * Re-keying a host's models directory (issue 12, "models key rotation on a host"): the files are
 * re-encrypted on the host itself — copied into a new directory under the new key on the same
 * filesystem, no byte over the network — checked against the store's SHA-256s, swapped in by one
 * atomic rename, and only then is the old directory deleted and the old key removed.
 *
 * Five named steps, each its own SSH command, each idempotent and safe to re-run after a crash
 * at any point in it or between two of them (the journal that records them is built elsewhere;
 * docs/keys-fscrypt.md lists the crash states each step accepts):
 *
 * - `prepare`: both keys in the keyring (the old one again after a reboot), `<store>/k-<new id>`
 *   made with a v2 policy of the new key (a directory left empty by a crash gets its policy).
 * - `copy`: every file of the old directory into the new one — to a temporary name, fsync'd, then
 *   renamed; a file already there at full size is kept, temporary leftovers are removed.
 * - `verify`: every file of the new directory hashed and compared with `expected`; a missing, extra
 *   or different file refuses (HASH_MISMATCH) and the bad copy is deleted, so `copy` redoes it.
 *   The old directory is untouched.
 * - `swap`: `dir`, a symlink, is repointed at the new directory (a new symlink renamed over it),
 *   after a check that every old file has a copy of its size.
 * - `cleanup`: only once `dir` points at the new directory, and after the same check: the old
 *   directory is deleted, then the old key removed from the kernel.
 *
 * Until `swap`, `dir` is the old directory, whole; after it, the new one, verified. The old copy
 * is deleted only after both. At no moment is the only copy of a file somewhere a crash can lose.
 */
export type RekeyStep = 'prepare' | 'copy' | 'verify' | 'swap' | 'cleanup';
export const REKEY_STEPS: readonly RekeyStep[] = ['prepare', 'copy', 'verify', 'swap', 'cleanup'];

export interface RekeyInput {
  /** The models directory Airlock uses (`/srv/models`): a symlink into the models filesystem. */
  dir: string;
  oldKey: Buffer;
  newKey: Buffer;
  /** The store's SHA-256 (64 lowercase hex) of every file, by path relative to `dir`. Needed by `verify`. */
  expected?: Record<string, string>;
}

export interface RekeyStepResult {
  step: RekeyStep;
  /** Where `dir` pointed when the step began: the old directory, or already the new one. */
  where: 'old' | 'swapped';
  /** `copy`: files copied this time and files found already copied. */
  copied?: number;
  skipped?: number;
  /** `verify`: files checked. */
  files?: number;
  /** `cleanup`: what became of the old key (`busy`: removed while files under it were still open). */
  removed?: 'absent' | 'busy' | 'removed';
}

/** Copy and verify move the whole directory's bytes: their default timeout is generous. */
const LONG_TIMEOUT_MS = 60 * 60_000;
const MAX_FILES = 100_000;
const SHA256 = /^[0-9a-f]{64}$/;

/** A relative path inside the models directory, as the store names it: no `..`, no leading `/`, no control characters. */
export function checkRelPath(p: string): string {
  const segs = p.split('/');
  if (p.length === 0 || p.length > 4096 || segs.some((s) => s === '' || s === '.' || s === '..' || s.length > 255) || /[\0-\x1f\x7f]/.test(p)) {
    throw new AirlockError('INVALID_INPUT', `A model file path must be relative, without empty, . or .. segments or control characters (got ${JSON.stringify(p.slice(0, 80))}).`);
  }
  if (segs[segs.length - 1]!.startsWith('.airlock-part-')) throw new AirlockError('INVALID_INPUT', `A model file may not be named .airlock-part-* (Airlock's temporary copies): ${JSON.stringify(p.slice(0, 80))}.`);
  return p;
}

function checkExpected(expected: Record<string, string> | undefined): Record<string, string> {
  if (!expected || typeof expected !== 'object') throw new AirlockError('INVALID_INPUT', 'Verifying a re-key needs the expected SHA-256 of every model file.');
  const entries = Object.entries(expected);
  if (entries.length > MAX_FILES) throw new AirlockError('INVALID_INPUT', `A models directory may hold at most ${MAX_FILES} files.`);
  for (const [p, h] of entries) {
    checkRelPath(p);
    if (typeof h !== 'string' || !SHA256.test(h)) throw new AirlockError('INVALID_INPUT', `The expected SHA-256 of ${JSON.stringify(p.slice(0, 80))} is not 64 lowercase hex digits.`);
  }
  return expected;
}

const Name = z.string().max(4096);
const StepOut = z
  .object({
    ok: z.literal(true),
    step: z.enum(['prepare', 'copy', 'verify', 'swap', 'cleanup']),
    where: z.enum(['old', 'swapped']),
    copied: z.number().int().nonnegative().optional(),
    skipped: z.number().int().nonnegative().optional(),
    files: z.number().int().nonnegative().optional(),
    removed: z.enum(['absent', 'busy', 'removed']).optional(),
    problems: z.number().int().nonnegative().optional(),
    mismatched: z.array(z.object({ path: Name, actual: z.string().regex(SHA256), source: z.string().regex(SHA256).nullable() }).strict()).max(100).optional(),
    missing: z.array(Name).max(100).optional(),
    extra: z.array(Name).max(100).optional(),
  })
  .strict();

/** A path the host reported, for a message: printable ASCII only, bounded. */
function shown(p: string): string {
  return JSON.stringify(p.replace(/[^\x20-\x7e]/g, '?').slice(0, 120));
}

/**
 * Runs one re-key step on the host. Safe to call again after a crash in it or after it (see the
 * module comment). Zeroes its copies of the keys; the caller's buffers are its own to zero.
 */
export async function rekeyStep(conn: HostExec, step: RekeyStep, input: RekeyInput, opts: FscryptOptions = {}): Promise<RekeyStepResult> {
  if (!REKEY_STEPS.includes(step)) throw new AirlockError('INVALID_INPUT', `Unknown re-key step ${JSON.stringify(String(step))}.`);
  const dir = checkModelsPath(input.dir, 'The models directory');
  checkKey(input.oldKey, 'The old models key');
  checkKey(input.newKey, 'The new models key');
  const oldId = fscryptKeyIdentifier(input.oldKey);
  const newId = fscryptKeyIdentifier(input.newKey);
  if (oldId === newId) throw new AirlockError('INVALID_INPUT', 'The new models key is the old one; a re-key needs a new key.');
  const expected = step === 'verify' ? checkExpected(input.expected) : null;
  const secret = Buffer.concat([input.oldKey, input.newKey, ...(expected ? [Buffer.from(JSON.stringify(expected))] : [])]);
  const what = `Re-keying ${dir} (${step})`;
  const long = step === 'copy' || step === 'verify' || step === 'cleanup';
  const raw = await runHost(conn, ['rekey', step, dir, modelsStore(dir, opts), oldId, newId], secret, {
    ...opts,
    timeoutMs: opts.timeoutMs ?? (long ? LONG_TIMEOUT_MS : undefined),
    what,
    dir,
  });
  const r = StepOut.safeParse(raw);
  if (!r.success || r.data.step !== step) throw new AirlockError('PARSE_ERROR', `${what}: the host's answer does not have the expected fields.`);
  const o = r.data;
  if (step === 'verify' && (o.problems ?? 0) > 0) {
    const parts = [
      ...(o.mismatched ?? []).map((m) => `${shown(m.path)} hashes to ${m.actual.slice(0, 12)}…${m.source === null ? '' : m.source === input.expected![m.path] ? ' (the old copy is right; the bad new copy was removed, so copy redoes it)' : ' (the old copy on the host is already damaged)'}`),
      ...(o.missing ?? []).map((p) => `${shown(p)} is missing`),
      ...(o.extra ?? []).map((p) => `${shown(p)} is not in the store`),
    ];
    throw new AirlockError(
      'HASH_MISMATCH',
      `${what}: ${o.problems} file(s) of the new copy do not match the store: ${parts.slice(0, 5).join('; ')}${parts.length > 5 ? '; …' : ''}. Nothing was swapped: the old directory stays in use. Run copy and verify again; a file damaged in the old directory must be pushed again first.`,
    );
  }
  if (step === 'verify' && o.files !== Object.keys(expected!).length) throw new AirlockError('PARSE_ERROR', `${what}: the host checked ${o.files} files, not ${Object.keys(expected!).length}.`);
  const out: RekeyStepResult = { step, where: o.where };
  for (const k of ['copied', 'skipped', 'files', 'removed'] as const) if (o[k] !== undefined) (out as unknown as Record<string, unknown>)[k] = o[k];
  return out;
}

/**
 * The whole re-key, each step in order (for a caller without a journal: a crash leaves a state
 * that running this again, or the remaining steps, completes).
 */
export async function rekeyModels(conn: HostExec, input: RekeyInput & { expected: Record<string, string> }, opts: FscryptOptions = {}): Promise<RekeyStepResult[]> {
  const out: RekeyStepResult[] = [];
  for (const step of REKEY_STEPS) out.push(await rekeyStep(conn, step, input, opts));
  return out;
}
