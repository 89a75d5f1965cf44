import { createHash } from 'node:crypto';
import sshpk from 'sshpk';

/** OpenSSH's form: `SHA256:` + unpadded base64 of 32 bytes (what `ssh-keygen -lf` prints). */
export const FINGERPRINT_RE = /^SHA256:[A-Za-z0-9+/]{43}$/;

// Large enough for a 16384-bit RSA key; anything bigger is not a public key we would pin.
const MAX_BLOB_BYTES = 8192;
const MAX_KEY_TYPE_LEN = 64;

/** Fingerprint of a public key in SSH wire format (the blob inside an authorized_keys line). */
export function fingerprintOfKey(rawKeyBlob: Buffer): string {
  return 'SHA256:' + createHash('sha256').update(rawKeyBlob).digest('base64').replace(/=+$/, '');
}

/**
 * The key type named at the start of a wire-format blob (`ssh-ed25519`, `ecdsa-sha2-nistp256`…),
 * or null when the blob does not start with a plausible SSH string.
 */
export function keyTypeOfBlob(blob: Buffer): string | null {
  if (blob.length < 4) return null;
  const len = blob.readUInt32BE(0);
  if (len < 1 || len > MAX_KEY_TYPE_LEN || 4 + len > blob.length) return null;
  const type = blob.subarray(4, 4 + len).toString('latin1');
  return /^[A-Za-z0-9@._+-]+$/.test(type) ? type : null;
}

/**
 * Decode base64 the way we accept it from files: canonical only, so two spellings of one key
 * cannot exist and junk is refused instead of silently decoded (Node's decoder skips bad chars).
 */
export function decodeStrictBase64(s: string): Buffer | null {
  if (s.length === 0 || s.length % 4 !== 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(s)) return null;
  const buf = Buffer.from(s, 'base64');
  return buf.toString('base64') === s ? buf : null;
}

// Types sshpk can check structurally; for others we only check that the blob names its own type.
const SSHPK_TYPES = new Set([
  'ssh-rsa',
  'ssh-dss',
  'ssh-ed25519',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
]);

/** The blob's SSH strings, or null when they do not exactly fill it. */
function wireStrings(blob: Buffer, max: number): Buffer[] | null {
  const out: Buffer[] = [];
  let pos = 0;
  while (pos < blob.length) {
    if (out.length >= max || pos + 4 > blob.length) return null;
    const len = blob.readUInt32BE(pos);
    if (pos + 4 + len > blob.length) return null;
    out.push(blob.subarray(pos + 4, pos + 4 + len));
    pos += 4 + len;
  }
  return out;
}

const EC_POINT_LEN: Record<string, number> = { nistp256: 65, nistp384: 97, nistp521: 133 };

/**
 * Field counts and sizes per type: sshpk alone accepts e.g. an ed25519 key of 3 bytes, and a
 * malformed key in an imported file should be reported, not pinned.
 */
function wellFormed(type: string, blob: Buffer): boolean {
  const f = wireStrings(blob, 8);
  if (!f) return false;
  if (type === 'ssh-ed25519') return f.length === 2 && f[1]!.length === 32;
  const ec = /^ecdsa-sha2-(nistp\d+)$/.exec(type);
  if (ec) return f.length === 3 && f[1]!.toString('latin1') === ec[1] && f[2]!.length === EC_POINT_LEN[ec[1]!] && f[2]![0] === 4;
  if (type === 'ssh-rsa') return f.length === 3 && f[1]!.length > 0 && f[2]!.length >= 64;
  if (type === 'ssh-dss') return f.length === 5;
  return f.length >= 2;
}

export type BlobCheck = { ok: true; keyType: string; fingerprint: string } | { ok: false; reason: string };

/**
 * Check a base64 key as written in a file against the type written beside it. A blob whose
 * embedded type differs from the declared one is refused: pinning it would pin something other
 * than what the operator reads.
 */
export function checkKeyBlob(declaredType: string, base64: string): BlobCheck {
  if (base64.length > Math.ceil(MAX_BLOB_BYTES / 3) * 4) return { ok: false, reason: 'key too long' };
  const blob = decodeStrictBase64(base64);
  if (!blob) return { ok: false, reason: 'bad base64 in key' };
  const embedded = keyTypeOfBlob(blob);
  if (!embedded) return { ok: false, reason: 'malformed key blob' };
  if (embedded !== declaredType) {
    return { ok: false, reason: `key type mismatch: line says ${declaredType}, key is ${embedded}` };
  }
  if (!wellFormed(embedded, blob)) return { ok: false, reason: `malformed ${embedded} key` };
  if (SSHPK_TYPES.has(embedded)) {
    try {
      sshpk.parseKey(blob, 'rfc4253');
    } catch {
      return { ok: false, reason: `malformed ${embedded} key` };
    }
  }
  return { ok: true, keyType: embedded, fingerprint: fingerprintOfKey(blob) };
}

const KEY_TYPE_TOKEN = /^(?:ssh-[a-z0-9-]+|ecdsa-sha2-[a-z0-9-]+|sk-[a-z0-9-]+@openssh\.com|[a-z0-9-]+-cert-v0[01]@openssh\.com)$/;

/** Whether a token looks like an SSH public key algorithm name. */
export function looksLikeKeyType(token: string): boolean {
  return token.length <= MAX_KEY_TYPE_LEN && KEY_TYPE_TOKEN.test(token);
}

/** Split on blanks, keeping double-quoted runs (authorized_keys options) together. */
export function splitFields(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  let has = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (c === '\\' && quoted && i + 1 < line.length) {
      cur += c + line[++i]!;
      has = true;
    } else if (c === '"') {
      quoted = !quoted;
      cur += c;
      has = true;
    } else if (!quoted && (c === ' ' || c === '\t')) {
      if (has) out.push(cur);
      cur = '';
      has = false;
    } else {
      cur += c;
      has = true;
    }
  }
  if (has) out.push(cur);
  return out;
}

export interface PublicKeyLine {
  keyType: string;
  fingerprint: string;
  /** Whatever followed the key on the line, unsanitised: callers decide how to show it. */
  comment: string;
  /** Fields before the key type (authorized_keys options, or known_hosts marker and hosts). */
  prefix: string[];
}

/**
 * Fingerprint of an authorized_keys or known_hosts line (or a bare `type base64 [comment]` public
 * key). Returns null on anything it cannot read; never throws.
 */
export function fingerprintOfLine(line: string): PublicKeyLine | null {
  if (typeof line !== 'string' || line.length > 64 * 1024) return null;
  const trimmed = line.trim();
  if (!trimmed || trimmed.startsWith('#')) return null;
  const fields = splitFields(trimmed);
  for (let i = 0; i < fields.length - 1 && i < 4; i++) {
    const type = fields[i]!;
    if (!looksLikeKeyType(type)) continue;
    const r = checkKeyBlob(type, fields[i + 1]!);
    if (!r.ok) return null;
    return { keyType: r.keyType, fingerprint: r.fingerprint, comment: fields.slice(i + 2).join(' '), prefix: fields.slice(0, i) };
  }
  return null;
}
