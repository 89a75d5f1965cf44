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

export interface SkippedLine {
  line: number;
  /** The offending text, sanitised and shortened for display. */
  entry: string;
  reason: string;
}

export interface KnownHostsParse {
  entries: KnownHostsEntry[];
  skipped: SkippedLine[];
}

// A real known_hosts has hundreds of lines; these bounds only stop a hostile file from costing much.
export const KNOWN_HOSTS_MAX_LINES = 50_000;
export const KNOWN_HOSTS_MAX_LINE_LENGTH = 16 * 1024;
const MAX_HOSTS_PER_LINE = 256;

/** Same character set as the contract's Address: no spaces, no shell metacharacters. */
const ADDRESS_RE = /^[A-Za-z0-9.:_-]{1,253}$/;

function show(s: string): string {
  return sanitizeHostText(s, 120);
}

type HostToken = { kind: 'host'; host: string; port: number } | { kind: 'skip'; reason: string };

function parseHostToken(tok: string): HostToken {
  if (tok.startsWith('|')) return { kind: 'skip', reason: 'hashed host name: cannot enrol without the address' };
  if (tok.startsWith('!')) return { kind: 'skip', reason: 'negated pattern: not a host' };
  let host = tok;
  let port = 22;
  if (tok.startsWith('[')) {
    const m = /^\[([^\]]*)\]:(\d{1,5})$/.exec(tok);
    if (!m) return { kind: 'skip', reason: 'malformed [host]:port' };
    host = m[1]!;
    port = Number(m[2]);
    if (port < 1 || port > 65535) return { kind: 'skip', reason: `port out of range: ${m[2]}` };
  }
  if (/[*?]/.test(host)) return { kind: 'skip', reason: 'wildcard pattern: not a single host' };
  if (!ADDRESS_RE.test(host)) return { kind: 'skip', reason: 'not a host name or address' };
  return { kind: 'host', host, port };
}

/**
 * Parse an OpenSSH known_hosts file into enrollable entries (one per line and port) and the lines
 * or host patterns it could not use, each with a reason. Never throws, whatever the input.
 */
export function parseKnownHosts(text: string): KnownHostsParse {
  const entries: KnownHostsEntry[] = [];
  const skipped: SkippedLine[] = [];
  if (typeof text !== 'string') return { entries, skipped };
  const lines = text.split(/\r?\n/, KNOWN_HOSTS_MAX_LINES + 1);
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
    if (fields[0]!.startsWith('@')) {
      const marker = fields[0]!;
      const reason =
        marker === '@cert-authority'
          ? 'certificate authority line: trusts a CA, not a single host key'
          : marker === '@revoked'
            ? 'revoked key line: names a key to refuse, not one to pin'
            : `unknown marker ${show(marker)}`;
      skipped.push({ line: lineNo, entry: show(line), reason });
      continue;
    }
    const hostField = fields[f++];
    const keyType = fields[f++];
    const b64 = fields[f++];
    if (!hostField || !keyType || !b64) {
      skipped.push({ line: lineNo, entry: show(line), reason: 'not a known_hosts line (expected: hosts key-type key)' });
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
      const list = byPort.get(h.port) ?? [];
      if (!list.includes(h.host)) list.push(h.host);
      byPort.set(h.port, list);
    }
    for (const [port, hosts] of byPort) entries.push({ hosts, port, keyType: key.keyType, fingerprint: key.fingerprint, line: lineNo });
  }
  return { entries, skipped };
}

/**
 * Whether a hashed known_hosts host field (`|1|salt|hash`, HashKnownHosts) names hostname:port.
 * OpenSSH hashes `host` for port 22 and `[host]:port` otherwise, with HMAC-SHA1 keyed by the salt.
 * Accepts a comma-separated field; never throws.
 */
export function matchesHashedHost(entryHostField: string, hostname: string, port: number): boolean {
  if (typeof entryHostField !== 'string' || typeof hostname !== 'string' || entryHostField.length > 4096) return false;
  const name = port === 22 ? hostname : `[${hostname}]:${port}`;
  for (const tok of entryHostField.split(',')) {
    const m = /^\|1\|([A-Za-z0-9+/=]+)\|([A-Za-z0-9+/=]+)$/.exec(tok);
    if (!m) continue;
    const salt = decodeStrictBase64(m[1]!);
    const hash = decodeStrictBase64(m[2]!);
    if (!salt || !hash || salt.length !== 20 || hash.length !== 20) continue;
    const mac = createHmac('sha1', salt).update(name).digest();
    if (timingSafeEqual(mac, hash)) return true;
  }
  return false;
}

/** The hashed host field OpenSSH would write for hostname:port with this salt (20 bytes). */
export function hashHostName(hostname: string, port: number, salt: Buffer): string {
  const name = port === 22 ? hostname : `[${hostname}]:${port}`;
  return `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update(name).digest('base64')}`;
}
