import fs from 'node:fs';
import { revealHidden } from '../../shared/domain/visible-text';

/**
 * Files the CLI reads because an operator named them (passwords, playbooks, --params, known_hosts,
 * ssh_config, attestations, keys, CA certificates). A wrong file is the operator's mistake to fix:
 * it gets one line naming the file and what is wrong, and exit 2 — never a stack trace showing
 * install paths, never an unbounded read (`/dev/zero`, a huge log given by mistake).
 */

/** A mistake in how the command was called: the message, the help text, exit 2. */
export class UsageError extends Error {}

/** Bad input the operator gave (a file that cannot be used, two typed passwords that differ): the message only, exit 2. */
export class InputError extends UsageError {}

export const FILE_LIMITS = {
  password: 4 * 1024,
  params: 1024 * 1024,
  playbook: 256 * 1024,
  sshText: 1024 * 1024, // known_hosts, ssh_config: the contract's FileText bound
  attestation: 4 * 1024 * 1024,
  pem: 64 * 1024,
  share: 16 * 1024, // an armored root key share (the contract's bound)
  transcript: 1024 * 1024,
} as const;

const REASONS: Record<string, string> = {
  ENOENT: 'no such file',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EISDIR: 'it is a directory',
  ENOTDIR: 'a part of the path is not a directory',
  ELOOP: 'too many symbolic links',
  ENAMETOOLONG: 'the name is too long',
  EMFILE: 'too many open files',
  EIO: 'input/output error',
};

/** The operator's path, shown with any control or invisible character made visible. */
const shown = (file: string) => revealHidden(file);

function cannotRead(file: string, e: unknown): InputError {
  const code = (e as { code?: unknown })?.code;
  const why = typeof code === 'string' ? (REASONS[code] ?? code) : 'unreadable';
  return new InputError(`cannot read ${shown(file)}: ${why}`);
}

/**
 * The bytes of `file`, at most `maxBytes`. Pipes and devices are read too (`--password-file
 * /dev/stdin`, `<(…)`), in bounded chunks, so the cap holds where fstat has no size.
 */
export function readFileBounded(file: string, maxBytes: number): Buffer {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (e) {
    throw cannotRead(file, e);
  }
  try {
    const st = fs.fstatSync(fd);
    if (st.isDirectory()) throw new InputError(`cannot read ${shown(file)}: it is a directory`);
    if (st.isFile() && st.size > maxBytes) throw new InputError(`${shown(file)} is too large (${st.size} bytes; at most ${maxBytes})`);
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const buf = Buffer.alloc(Math.min(64 * 1024, maxBytes + 1 - total));
      let n: number;
      try {
        n = fs.readSync(fd, buf, 0, buf.length, null);
      } catch (e) {
        throw cannotRead(file, e);
      }
      if (n === 0) break;
      chunks.push(buf.subarray(0, n));
      total += n;
      if (total > maxBytes) throw new InputError(`${shown(file)} is too large (more than ${maxBytes} bytes)`);
    }
    return Buffer.concat(chunks);
  } finally {
    fs.closeSync(fd);
  }
}

/** The text of `file`: UTF-8 (a leading BOM dropped), at most `maxBytes`. */
export function readTextFile(file: string, maxBytes: number): string {
  const bytes = readFileBounded(file, maxBytes);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new InputError(`${shown(file)} is not valid UTF-8 text`);
  }
  return text.startsWith('\ufeff') ? text.slice(1) : text;
}

/** `line L column C` of a 0-based offset into `text`. */
function lineCol(text: string, offset: number): string {
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  const col = offset - (before.lastIndexOf('\n') + 1) + 1;
  return `line ${line} column ${col}`;
}

/** The JSON value in `file`; invalid JSON names the file and where it went wrong. */
export function readJsonFile(file: string, maxBytes: number): unknown {
  const text = readTextFile(file, maxBytes);
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    const at = /at position (\d+)/.exec(msg);
    if (!at) throw new InputError(`${shown(file)} is not valid JSON: ${text.trim() === '' ? 'the file is empty' : 'it ends too early'}`);
    // V8's wording without its own position suffix: "Unexpected token } in JSON", "Expected ',' or '}' after property value in JSON".
    const what = msg.replace(/\s*(?:in JSON\s*)?at position \d+.*$/s, '').replace(/ in JSON$/, '');
    throw new InputError(`${shown(file)} is not valid JSON: ${lineCol(text, Number(at[1]))}: ${revealHidden(what).slice(0, 200)}`);
  }
}
