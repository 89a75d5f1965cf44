import { createHmac, timingSafeEqual } from 'node:crypto';
import { checkKeyBlob, decodeStrictBase64, looksLikeKeyType, splitFields } from './fingerprint';
import { sanitizeHostText } from './sanitize';

export interface KnownHostsEntry {
  /** Host names or addresses as written (case kept), with `[addr]:port` unpacked into host and port. */
  hosts: string[];
  port: number;
  keyType: string;
  fingerprint: string;
  /** 1-based line number in the file. */
  line: number;
}

/**
 * A hashed host name (`|1|salt|hash`, as `HashKnownHosts yes` and `ssh-keyscan -H` write) with its
 * key. The address cannot be read back from it; it is kept and matched when a host is added by
 * address ({@link matchesHashedHost}).
 */
export interface HashedKnownHostsEntry {
  /** Base64 of the 20-byte HMAC-SHA1 key, as written. */
  salt: string;
  /** Base64 of HMAC-SHA1(salt, `host` or `[host]:port`), as written. */
  hash: string;
  keyType: string;
  /** The key blob, base64 (canonical: checked by decodeStrictBase64). */
  key: string;
  fingerprint: string;
  line: number;
}

/** An `@revoked` line: a key that must never be pinned or accepted, for any host. */
export interface RevokedKnownHostsEntry {
  /** The line's host field as written (sanitised): for display only, revocation is not per host. */
  hosts: string;
  keyType: string;
  key: string;
  fingerprint: string;
  line: number;
}

export interface SkippedLine {
  line: number;
  /** The offending text, sanitised and shortened for display. */
  entry: string;
  reason: string;
}

export interface KnownHostsParse {
  entries: KnownHostsEntry[];
  hashed: HashedKnownHostsEntry[];
  revoked: RevokedKnownHostsEntry[];
  skipped: SkippedLine[];
}

// A real known_hosts has hundreds of lines; these bounds only stop a hostile file from costing much.
export const KNOWN_HOSTS_MAX_LINES = 50_000;
export const KNOWN_HOSTS_MAX_LINE_LENGTH = 16 * 1024;
const MAX_HOSTS_PER_LINE = 256;

/** Same character set as the contract's Address: no spaces, no shell metacharacters. */
const ADDRESS_RE = /^[A-Za-z0-9.:_-]{1,253}$/;
/** OpenSSH's hashed name: magic `|1|`, base64 salt, `|`, base64 HMAC-SHA1. Both are 20 bytes. */
const HASHED_RE = /^\|1\|([^|]*)\|([^|]*)$/;

export const REASONS = {
  certAuthority: '@cert-authority line: not supported (Airlock pins single host keys and trusts no certificate authority); nothing was imported from it',
  wildcard: 'wildcard pattern (* or ?): not supported, only single hosts are enrolled',
  negated: 'negated pattern (!): not supported, only single hosts are enrolled',
  hashedMalformed: 'malformed hashed host name: expected |1|salt|hash with a 20-byte base64 salt and hash',
  hashedUnknown: 'hashed host name of an unknown kind (only |1|, HMAC-SHA1, exists)',
} as const;

function show(s: string): string {
  return sanitizeHostText(s, 120);
}

type HostToken =
  | { kind: 'host'; host: string; port: number }
  | { kind: 'hashed'; salt: string; hash: string }
  | { kind: 'skip'; reason: string };

function parseHashedToken(tok: string): HostToken {
  if (!tok.startsWith('|1|')) return { kind: 'skip', reason: REASONS.hashedUnknown };
  const m = HASHED_RE.exec(tok);
  const salt = m ? decodeStrictBase64(m[1]!) : null;
  const hash = m ? decodeStrictBase64(m[2]!) : null;
  if (!salt || !hash || salt.length !== 20 || hash.length !== 20) return { kind: 'skip', reason: REASONS.hashedMalformed };
  return { kind: 'hashed', salt: m![1]!, hash: m![2]! };
}

function parseHostToken(tok: string): HostToken {
  if (tok.startsWith('|')) return parseHashedToken(tok);
  if (tok.startsWith('!')) return { kind: 'skip', reason: REASONS.negated };
  let host = tok;
  let port = 22;
  if (tok.startsWith('[')) {
    const m = /^\[([^\]]*)\]:(\d{1,5})$/.exec(tok);
    if (!m) return { kind: 'skip', reason: /[*?]/.test(tok) ? REASONS.wildcard : 'malformed [host]:port' };
    host = m[1]!;
    port = Number(m[2]);
    if (port < 1 || port > 65535) return { kind: 'skip', reason: `port out of range: ${m[2]}` };
  }
  if (/[*?]/.test(host)) return { kind: 'skip', reason: REASONS.wildcard };
  if (!ADDRESS_RE.test(host)) return { kind: 'skip', reason: 'not a host name or address' };
  return { kind: 'host', host, port };
}

/**
 * Parse an OpenSSH known_hosts file (sshd(8) "SSH_KNOWN_HOSTS FILE FORMAT") into:
 * - `entries`: plain host names with their key, enrollable as they are (one per line and port);
 * - `hashed`: hashed host names with their key, kept to be matched when a host is added by address;
 * - `revoked`: `@revoked` keys, refused for every host;
 * - `skipped`: every line or host pattern it could not use, with its line number and a reason
 *   (`@cert-authority`, wildcard and negated patterns are named as not supported).
 * Comments, blank lines and CRLF line ends are accepted. Never throws, whatever the input.
 */
export function parseKnownHosts(text: string): KnownHostsParse {
  const out: KnownHostsParse = { entries: [], hashed: [], revoked: [], skipped: [] };
  const { entries, hashed, revoked, skipped } = out;
  if (typeof text !== 'string') return out;
  const lines = text.split(/\r?\n|\r/, KNOWN_HOSTS_MAX_LINES + 1);
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    if (i >= KNOWN_HOSTS_MAX_LINES) {
      skipped.push({ line: lineNo, entry: '', reason: `more than ${KNOWN_HOSTS_MAX_LINES} lines: the rest was not read` });
      break;
    }
    const raw = lines[i]!;
    if (raw.length > KNOWN_HOSTS_MAX_LINE_LENGTH) {
      skipped.push({ line: lineNo, entry: show(raw), reason: 'line too long' });
      continue;
    }
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const fields = splitFields(line);
    let f = 0;
    let marker: '@revoked' | null = null;
    if (fields[0]!.startsWith('@')) {
      const m = fields[f++]!;
      if (m === '@cert-authority') {
        skipped.push({ line: lineNo, entry: show(line), reason: REASONS.certAuthority });
        continue;
      }
      if (m !== '@revoked') {
        skipped.push({ line: lineNo, entry: show(line), reason: `unknown marker ${show(m)}: not supported` });
        continue;
      }
      marker = m;
    }
    const hostField = fields[f++];
    const keyType = fields[f++];
    const b64 = fields[f++];
    if (!hostField || !keyType || !b64) {
      const expected = marker ? '@revoked hosts key-type key' : 'hosts key-type key';
      skipped.push({ line: lineNo, entry: show(line), reason: `not a known_hosts line (expected: ${expected})` });
      continue;
    }
    if (!looksLikeKeyType(keyType)) {
      skipped.push({ line: lineNo, entry: show(line), reason: `unknown key type ${show(keyType)}` });
      continue;
    }
    const key = checkKeyBlob(keyType, b64);
    if (!key.ok) {
      skipped.push({ line: lineNo, entry: show(line), reason: key.reason });
      continue;
    }
    if (marker === '@revoked') {
      // OpenSSH refuses a revoked key for the hosts the line names; a leaked key is no better for
      // any other host, so Airlock refuses it everywhere and keeps the host field only to show it.
      revoked.push({ hosts: show(hostField), keyType: key.keyType, key: b64, fingerprint: key.fingerprint, line: lineNo });
      continue;
    }
    const tokens = hostField.split(',').filter((t) => t.length > 0);
    if (tokens.length > MAX_HOSTS_PER_LINE) {
      skipped.push({ line: lineNo, entry: show(hostField), reason: `more than ${MAX_HOSTS_PER_LINE} host names on one line` });
      continue;
    }
    // One line may list the same host on several ports; each port is a separate endpoint to pin.
    const byPort = new Map<number, string[]>();
    for (const tok of tokens) {
      const h = parseHostToken(tok);
      if (h.kind === 'skip') {
        skipped.push({ line: lineNo, entry: show(tok), reason: h.reason });
        continue;
      }
      if (h.kind === 'hashed') {
        hashed.push({ salt: h.salt, hash: h.hash, keyType: key.keyType, key: b64, fingerprint: key.fingerprint, line: lineNo });
        continue;
      }
      const list = byPort.get(h.port) ?? [];
      if (!list.includes(h.host)) list.push(h.host);
      byPort.set(h.port, list);
    }
    for (const [port, hosts] of byPort) entries.push({ hosts, port, keyType: key.keyType, fingerprint: key.fingerprint, line: lineNo });
  }
  return out;
}

/**
 * The names OpenSSH hashes for a host: `host` on port 22, `[host]:port` otherwise. ssh(1) lowercases
 * the host name before it looks it up, ssh-keygen -H hashes it as written: both spellings are tried.
 */
function hashedNames(hostname: string, port: number): string[] {
  const names = new Set([hostname, hostname.toLowerCase()]);
  return [...names].map((h) => (port === 22 ? h : `[${h}]:${port}`));
}

/** Whether one hashed entry (salt and hash as written, base64) names hostname:port. Never throws. */
export function hashedEntryMatches(entry: { salt: string; hash: string }, hostname: string, port: number): boolean {
  if (typeof hostname !== 'string' || hostname.length > 1024) return false;
  const salt = decodeStrictBase64(entry.salt);
  const hash = decodeStrictBase64(entry.hash);
  if (!salt || !hash || salt.length !== 20 || hash.length !== 20) return false;
  let hit = false;
  for (const name of hashedNames(hostname, port)) {
    if (timingSafeEqual(createHmac('sha1', salt).update(name).digest(), hash)) hit = true;
  }
  return hit;
}

/** The strongest first: when several imported keys match a host, the first of these is pinned. */
export function keyTypeRank(keyType: string): number {
  if (keyType === 'ssh-ed25519') return 0;
  if (keyType.startsWith('ecdsa-sha2-')) return 1;
  if (keyType === 'ssh-rsa') return 2;
  return 3;
}

/**
 * Whether a hashed known_hosts host field (`|1|salt|hash`, HashKnownHosts) names hostname:port.
 * OpenSSH hashes `host` for port 22 and `[host]:port` otherwise, with HMAC-SHA1 keyed by the salt.
 * Accepts a comma-separated field; never throws.
 */
export function matchesHashedHost(entryHostField: string, hostname: string, port: number): boolean {
  if (typeof entryHostField !== 'string' || typeof hostname !== 'string' || entryHostField.length > 4096) return false;
  for (const tok of entryHostField.split(',')) {
    const m = HASHED_RE.exec(tok);
    if (m && hashedEntryMatches({ salt: m[1]!, hash: m[2]! }, hostname, port)) return true;
  }
  return false;
}

/** The hashed host field OpenSSH would write for hostname:port with this salt (20 bytes). */
export function hashHostName(hostname: string, port: number, salt: Buffer): string {
  const name = port === 22 ? hostname : `[${hostname}]:${port}`;
  return `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update(name).digest('base64')}`;
}
