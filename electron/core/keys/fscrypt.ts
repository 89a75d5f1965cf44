import crypto from 'node:crypto';
import path from 'node:path';
import { Readable } from 'node:stream';
import { z } from 'zod';
import { AirlockError, type ErrorCode } from '../../../shared/domain/errors';
import type { ExecOptions, ExecResult } from '../ssh/connection/types';
import { shellQuote, shellQuoteScript } from '../ssh/quote';
import { FSCRYPT_HOST_PY } from './fscrypt-host';

/**
 * Model weights at rest on a GPU host, encrypted with fscrypt v2 (docs/keys-fscrypt.md).
 *
 * Layout on the host: the models filesystem (ext4 with the `encrypt` feature) is mounted at the
 * *store*, `<parent of dir>/.models-fs` by default (`/srv/.models-fs` for `/srv/models`); each
 * encrypted directory is `<store>/k-<key identifier>`, and `dir` is a symlink to the current one.
 * fscrypt sets a policy only on an empty directory (ext4 never on its root), and a re-key swaps
 * directories by renaming that symlink, which is atomic.
 *
 * The 64-byte master key goes over SSH on the command's stdin straight into the filesystem's
 * keyring (FS_IOC_ADD_ENCRYPTION_KEY): never argv, never a file. After a reboot the keyring is
 * empty and the directory is `locked` until Airlock delivers the key again ({@link unlockModels}).
 */

/** What the host runs commands through: an {@link SshConnection} or anything with its `exec`. */
export interface HostExec {
  exec(cmd: string, opts: ExecOptions): Promise<ExecResult>;
}

export interface FscryptOptions {
  /** Where the models filesystem is mounted; default `<dirname(dir)>/.models-fs`. */
  store?: string;
  /** Per command; default 60 s (a re-key's copy and verify steps take their own, longer default). */
  timeoutMs?: number;
  /** Run through `sudo -n` (a login user other than root). */
  sudo?: boolean;
  signal?: AbortSignal;
}

/**
 * `absent`: no such directory. `unencrypted`: a plain directory. `locked`: encrypted, its key not in
 * the kernel (a host after a reboot). `unlocked`: encrypted and readable. `unsupported`: the host
 * cannot do it (no fscrypt on that filesystem, a policy Airlock did not make, or no python3).
 */
export type ModelsState = 'unencrypted' | 'locked' | 'unlocked' | 'absent' | 'unsupported';

export interface ModelsStatus {
  state: ModelsState;
  /** The policy's master key identifier (32 hex digits), when encrypted. */
  identifier: string | null;
  /** Where `dir` resolves to on the host. */
  target: string | null;
  /** A short, checked explanation: `empty`/`not empty` (unencrypted), `busy` (a key removed while files were open), why unsupported. */
  detail: string | null;
}

/** Master keys are 64 bytes (AES-256-XTS needs 512 bits). */
export const FSCRYPT_KEY_BYTES = 64;
const HEX32 = /^[0-9a-f]{32}$/;
const MAX_OUTPUT = 256 * 1024;
const DEFAULT_TIMEOUT_MS = 60_000;

/**
 * The key identifier the kernel gives a v2 master key: HKDF-SHA512 (unsalted) of the key, info
 * `"fscrypt\0"` + context byte 1, 16 bytes (fs/crypto/keyring.c). Computed here so a wrong key is
 * refused before it is sent, and the kernel's own answer is checked against it.
 */
export function fscryptKeyIdentifier(key: Buffer): string {
  checkKey(key);
  const info = Buffer.from('fscrypt\0\x01', 'latin1');
  return Buffer.from(crypto.hkdfSync('sha512', key, Buffer.alloc(0), info, 16)).toString('hex');
}

export function checkKey(key: Buffer, what = 'A models key'): void {
  if (!Buffer.isBuffer(key) || key.length !== FSCRYPT_KEY_BYTES) {
    throw new AirlockError('INVALID_INPUT', `${what} must be ${FSCRYPT_KEY_BYTES} bytes.`);
  }
}

/** A host path of ours: absolute, normalised, no shell or control characters (quoted anyway). */
export function checkModelsPath(p: string, what: string): string {
  if (typeof p !== 'string' || p.length > 1024 || !p.startsWith('/') || p === '/' || path.posix.normalize(p) !== p || p.endsWith('/') || !/^[A-Za-z0-9._+@:/-]+$/.test(p)) {
    throw new AirlockError('INVALID_INPUT', `${what} must be a normalised absolute path of letters, digits and ._+@:- (got ${JSON.stringify(String(p).slice(0, 80))}).`);
  }
  return p;
}

/** The store (mount point of the models filesystem) for `dir`. */
export function modelsStore(dir: string, opts: FscryptOptions = {}): string {
  return checkModelsPath(opts.store ?? path.posix.join(path.posix.dirname(dir), '.models-fs'), 'The models filesystem path');
}

/** The command line that runs the host program with `args` (each quoted; the program too). */
export function hostCommand(args: string[], opts: { sudo?: boolean } = {}): string {
  const words = ['python3', '-I', '-S', '-c', shellQuoteScript(FSCRYPT_HOST_PY), ...args.map(shellQuote)];
  return `${opts.sudo ? 'sudo -n ' : ''}${words.join(' ')}`;
}

const Failure = z.object({ ok: z.literal(false), code: z.string().regex(/^[A-Z]{2,16}$/), detail: z.string().max(400) }).strict();

/** Runs the host program; returns its `ok: true` object, or throws the mapped refusal. Zeroes its copy of `secret`. */
export async function runHost(conn: HostExec, args: string[], secret: Buffer | null, opts: FscryptOptions & { what: string; dir: string }): Promise<Record<string, unknown>> {
  let r: ExecResult;
  try {
    r = await conn.exec(hostCommand(args, opts), {
      timeoutMs: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      signal: opts.signal,
      maxOutputBytes: MAX_OUTPUT,
      ...(secret ? { stdin: Readable.from([secret], { objectMode: false }) } : {}),
    });
  } finally {
    secret?.fill(0);
  }
  const text = r.stdout.trim();
  if (r.code === 127 || (/python3: (command )?not found|No such file/.test(r.stderr) && text === '')) {
    throw new AirlockError('KEY_UNAVAILABLE', `The host has no python3, which Airlock needs to manage the encrypted models directory ${opts.dir}; install python3 on the host.`);
  }
  if (r.truncated || text.includes('\n') || text.length === 0) {
    throw new AirlockError('PARSE_ERROR', `${opts.what}: the host's answer was not one line of Airlock's host program (exit ${r.code ?? r.signal ?? '?'}).`);
  }
  let obj: unknown;
  try {
    obj = JSON.parse(text);
  } catch {
    throw new AirlockError('PARSE_ERROR', `${opts.what}: the host's answer is not JSON.`);
  }
  if (r.code === 0 && typeof obj === 'object' && obj !== null && (obj as { ok?: unknown }).ok === true) return obj as Record<string, unknown>;
  const f = Failure.safeParse(obj);
  if (r.code !== 3 || !f.success) throw new AirlockError('PARSE_ERROR', `${opts.what}: the host's answer is not one Airlock's host program gives (exit ${r.code ?? r.signal ?? '?'}).`);
  throw refusal(f.data.code, opts.what, opts.dir);
}

/** The one place host refusal codes become messages (the host's own detail is not shown: untrusted). */
export function refusal(code: string, what: string, dir: string): AirlockError {
  const m: Record<string, [ErrorCode, string]> = {
    ABSENT: ['NOT_FOUND', `${dir} (or the models filesystem) does not exist on the host; create the host's models filesystem first.`],
    NOTDIR: ['INVALID_INPUT', `${dir} on the host is not a directory.`],
    UNSUPPORTED: ['INVALID_INPUT', `The filesystem of ${dir} on the host cannot hold an Airlock fscrypt v2 directory (ext4 needs the encrypt feature: tune2fs -O encrypt).`],
    NOTEMPTY: ['CONFLICT', `${dir} on the host already holds unencrypted files; Airlock encrypts only an empty or absent directory: move the files away, encrypt, then copy them in.`],
    NOTLAYOUT: ['CONFLICT', `${dir} on the host is not a symlink to an Airlock encrypted directory in its models filesystem; Airlock does not change a directory it did not make.`],
    OTHERKEY: ['CONFLICT', `${dir} on the host is encrypted under another key than the one given; use that key, or re-key it.`],
    WRONGKEY: ['KEY_UNAVAILABLE', `The key given is not the key of ${dir} on the host (its policy names another key identifier); nothing was unlocked.`],
    IDMISMATCH: ['INTERNAL', `The host's kernel computed another identifier for the key than Airlock did for ${dir}; nothing was reported unlocked.`],
    NOTPRESENT: ['KEY_UNAVAILABLE', `The key was delivered but ${dir} on the host still reports it absent; try again.`],
    UNENCRYPTED: ['CONFLICT', `${dir} on the host is not encrypted; encrypt it first.`],
    BADKEY: ['INTERNAL', `The host did not receive the whole key for ${dir}.`],
    SPECIAL: ['CONFLICT', `${dir} on the host holds something other than files and directories (a symlink or device); Airlock re-keys only plain files: remove it first.`],
    INCOMPLETE: ['CONFLICT', `The new copy of ${dir} on the host lacks a file of the old one (or has one of another size); run the copy and verify steps again before swapping or cleaning up.`],
    NOTSWAPPED: ['CONFLICT', `${dir} on the host still points at the old directory; swap before cleaning up (the old directory is kept).`],
    SHORTCOPY: ['INTERNAL', `Copying a file of ${dir} on the host ended early; run the copy step again.`],
    OS: ['INTERNAL', `A system call on the host failed for ${dir}; see the host, then try again.`],
  };
  const [c, msg] = m[code] ?? ['PARSE_ERROR', `the host answered with an unknown refusal`];
  return new AirlockError(c, `${what}: ${msg}`);
}

const Ok = { ok: z.literal(true) };
const StatusOut = z
  .object({
    ...Ok,
    state: z.enum(['unencrypted', 'locked', 'unlocked', 'absent', 'unsupported']),
    target: z.string().max(4096).nullable(),
    id: z.string().regex(HEX32).nullable(),
    detail: z.string().max(400).nullable(),
    removed: z.enum(['absent', 'busy', 'removed']).optional(),
  })
  .strict();

/** Host text for a caller that may show it: printable ASCII only (escape sequences, bidi controls become `?`), bounded. */
function printable(s: string | null, max: number): string | null {
  return s === null ? null : s.replace(/[^\x20-\x7e]/g, '?').slice(0, max);
}

function toStatus(o: z.infer<typeof StatusOut>): ModelsStatus {
  return { state: o.state, identifier: o.id, target: printable(o.target, 4096), detail: printable(o.detail, 200) };
}

function parsed<T extends z.ZodType>(schema: T, obj: unknown, what: string): z.infer<T> {
  const r = schema.safeParse(obj);
  if (!r.success) throw new AirlockError('PARSE_ERROR', `${what}: the host's answer does not have the expected fields.`);
  return r.data;
}

/** What `dir` is on the host: see {@link ModelsState}. A host without python3 is `unsupported`. */
export async function modelsStatus(conn: HostExec, dir: string, opts: FscryptOptions = {}): Promise<ModelsStatus> {
  checkModelsPath(dir, 'The models directory');
  const what = `Checking ${dir}`;
  try {
    return toStatus(parsed(StatusOut, await runHost(conn, ['status', dir], null, { ...opts, what, dir }), what));
  } catch (e) {
    if (e instanceof AirlockError && e.code === 'KEY_UNAVAILABLE' && /python3/.test(e.message)) {
      return { state: 'unsupported', identifier: null, target: null, detail: 'no python3 on the host' };
    }
    throw e;
  }
}

/**
 * Makes `dir` a fresh encrypted directory under `key`: adds the key to the filesystem's keyring,
 * creates `<store>/k-<identifier>` with a v2 policy, and points `dir` at it. Accepts an absent or
 * empty `dir`, and one already encrypted under this key (idempotent: it is then unlocked);
 * refuses a non-empty unencrypted one, and one under another key. Zeroes its copy of the key.
 */
export async function encryptModelsDir(conn: HostExec, dir: string, key: Buffer, opts: FscryptOptions = {}): Promise<ModelsStatus> {
  checkModelsPath(dir, 'The models directory');
  const id = fscryptKeyIdentifier(key);
  const what = `Encrypting ${dir}`;
  const out = toStatus(parsed(StatusOut, await runHost(conn, ['encrypt', dir, modelsStore(dir, opts), id], Buffer.from(key), { ...opts, what, dir }), what));
  if (out.state !== 'unlocked' || out.identifier !== id) throw new AirlockError('INTERNAL', `${what}: the host reports ${out.state}, not unlocked under the key given.`);
  return out;
}

/**
 * Delivers `key` again (a host after a reboot reports `locked`). The host checks that the key's
 * identifier is the one in the directory's policy before the key reaches the keyring, and that
 * the kernel computes the same; success is reported only when the directory then reads as
 * unlocked under that identifier. A wrong key is refused (KEY_UNAVAILABLE) and never added.
 */
export async function unlockModels(conn: HostExec, dir: string, key: Buffer, opts: FscryptOptions = {}): Promise<ModelsStatus> {
  checkModelsPath(dir, 'The models directory');
  const id = fscryptKeyIdentifier(key);
  const what = `Unlocking ${dir}`;
  const out = toStatus(parsed(StatusOut, await runHost(conn, ['unlock', dir, id], Buffer.from(key), { ...opts, what, dir }), what));
  if (out.state !== 'unlocked' || out.identifier !== id) throw new AirlockError('KEY_UNAVAILABLE', `${what}: the host reports ${out.state} after the key was delivered; nothing is unlocked.`);
  return out;
}

/**
 * Removes the directory's key from the kernel (FS_IOC_REMOVE_ENCRYPTION_KEY, for all users when
 * root): file contents become unreadable and names show encrypted. Files still open keep working
 * until closed; the status then says `locked` with detail `busy`.
 */
export async function lockModels(conn: HostExec, dir: string, opts: FscryptOptions = {}): Promise<ModelsStatus> {
  checkModelsPath(dir, 'The models directory');
  const what = `Locking ${dir}`;
  return toStatus(parsed(StatusOut, await runHost(conn, ['lock', dir], null, { ...opts, what, dir }), what));
}
