import crypto from 'node:crypto';
import { setMaxListeners } from 'node:events';
import type { HostPolicy, HostPolicyState } from '../../../../shared/contract/access';
import { AirlockError } from '../../../../shared/domain/errors';
import type { Db } from '../../db/db';
import { keyFingerprint } from '../../keys/ed25519';
import { Remote } from '../../provision/remote';
import type { SshAuth, SshConnection } from '../../ssh/connection';
import { sanitizeHostText } from '../../ssh/sanitize';
import type { StoredPolicy } from './policy';

/**
 * Delivers the signed policy to every enrolled host over the SSH pool, in parallel (docs/gate.md
 * "Files on a host"): the pinned key `policy-signing.pem` when the host has none (a different one
 * is replaced only when the push names the host in `repin`), then `policy.json.sig` and
 * `policy.json`, each written to a temporary name, fsynced, and renamed (signature first); a SIGHUP
 * to the gate when it runs; then the files are read back and hashed here, and the gate's
 * status.json read — all host output being untrusted: read base64-framed, size-capped and parsed
 * strictly. A host that does not answer is `unreachable` (since when it first failed) and gets the
 * policy at the next push; one that holds something else than what was written, or whose gate
 * refused it, is `rejected` with the reason.
 */

export const GATE_DIR = '/etc/airlock/gate';
export const GATE_FILES = {
  key: `${GATE_DIR}/policy-signing.pem`,
  policy: `${GATE_DIR}/policy.json`,
  sig: `${GATE_DIR}/policy.json.sig`,
  status: '/run/airlock-gate/status.json',
  pid: '/run/airlock-gate/gate.pid',
} as const;

/** A policy file larger than this on a host is not one this console wrote. */
export const MAX_POLICY_BYTES = 4 * 1024 * 1024;
const MAX_SMALL = 64 * 1024;
/** How long a push waits for a running gate to report the new version (it reloads on SIGHUP, and polls every 500 ms). */
const GATE_WAIT_MS = 3000;

export interface PropagationHosts {
  get(name: string): { name: string; user: string };
  lease(name: string, auth: SshAuth, signal: AbortSignal): Promise<SshConnection>;
}

/** What a host holds, as read back (each null when the file is absent). */
export interface HostFiles {
  key: Buffer | null;
  policy: Buffer | null;
  sig: Buffer | null;
  status: Buffer | null;
  gateRunning: boolean;
}

/** The gate's status.json, parsed strictly: any field not of its type is dropped (null), never trusted as is. */
export interface GateStatus {
  policyVersion: number | null;
  policySha256: string | null;
  loadedAt: string | null;
  lastRejected: { at: string; reason: string; version: number | null } | null;
}

export function parseGateStatus(raw: Buffer | null): GateStatus | null {
  if (!raw || raw.length > MAX_SMALL) return null;
  let v: unknown;
  try {
    v = JSON.parse(raw.toString('utf8'));
  } catch {
    return null;
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) return null;
  const o = v as Record<string, unknown>;
  const int = (x: unknown) => (typeof x === 'number' && Number.isSafeInteger(x) && x >= 0 ? x : null);
  const short = (x: unknown) => (typeof x === 'string' && x.length <= 64 ? sanitizeHostText(x, 64) : null);
  const lr = o.lastRejected && typeof o.lastRejected === 'object' && !Array.isArray(o.lastRejected) ? (o.lastRejected as Record<string, unknown>) : null;
  const reason = lr && typeof lr.reason === 'string' && ['signature', 'older', 'malformed', 'unreadable'].includes(lr.reason) ? lr.reason : null;
  return {
    policyVersion: int(o.policyVersion),
    policySha256: typeof o.policySha256 === 'string' && /^[0-9a-f]{64}$/.test(o.policySha256) ? o.policySha256 : null,
    loadedAt: short(o.loadedAt),
    lastRejected: lr && reason ? { at: short(lr.at) ?? '?', reason, version: int(lr.version) } : null,
  };
}

/** The version a policy file on a host claims, if it is JSON with an integer version; null otherwise. */
function claimedVersion(bytes: Buffer): number | null {
  try {
    const v = (JSON.parse(bytes.toString('utf8')) as { version?: unknown }).version;
    return typeof v === 'number' && Number.isSafeInteger(v) ? v : null;
  } catch {
    return null;
  }
}

/** Whether `sigFile` (base64, one line) is a valid signature of `bytes` under `publicKeyPem`. */
export function verifies(publicKeyPem: string, bytes: Buffer, sigFile: Buffer | null): boolean {
  if (!sigFile || sigFile.length > 1024) return false;
  const text = sigFile.toString('utf8').trim();
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(text)) return false;
  try {
    return crypto.verify(null, bytes, publicKeyPem, Buffer.from(text, 'base64'));
  } catch {
    return false;
  }
}

const sha256 = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');
const samePem = (a: Buffer | string, b: string) => a.toString().replace(/\r\n/g, '\n').trim() === b.replace(/\r\n/g, '\n').trim();

/** The one read: every file base64-framed on its own line (binary or hostile bytes cannot break the framing), each capped. */
const READ_SCRIPT = [
  ['key', GATE_FILES.key, MAX_SMALL],
  ['policy', GATE_FILES.policy, MAX_POLICY_BYTES + 1],
  ['sig', GATE_FILES.sig, MAX_SMALL],
  ['status', GATE_FILES.status, MAX_SMALL + 1],
]
  .map(([name, file, max]) => `if [ -f '${file}' ]; then printf '%s ' ${name}; head -c ${max} '${file}' | base64 -w0; printf '\\n'; else printf '%s -\\n' ${name}; fi`)
  .concat([`if [ -f '${GATE_FILES.pid}' ]; then echo 'gate 1'; else echo 'gate 0'; fi`])
  .join('\n');

export async function readHostFiles(r: Remote): Promise<HostFiles> {
  const res = await r.sh(READ_SCRIPT, { maxOutputBytes: Math.ceil(((MAX_POLICY_BYTES + 4 * MAX_SMALL) * 4) / 3) + 4096 });
  if (res.code !== 0) throw new AirlockError('PARSE_ERROR', `Reading the gate files failed (exit ${res.code ?? res.signal ?? '?'}).`);
  const out: HostFiles = { key: null, policy: null, sig: null, status: null, gateRunning: false };
  const seen = new Set<string>();
  for (const line of res.stdout.split('\n')) {
    if (line === '') continue;
    const m = /^(key|policy|sig|status|gate) (-|[A-Za-z0-9+/]*={0,2}|0|1)$/.exec(line);
    if (!m || seen.has(m[1]!)) throw new AirlockError('PARSE_ERROR', 'The host answered the gate file read with something else than expected.');
    seen.add(m[1]!);
    if (m[1] === 'gate') out.gateRunning = m[2] === '1';
    else if (m[2] !== '-') out[m[1] as 'key' | 'policy' | 'sig' | 'status'] = Buffer.from(m[2]!, 'base64');
  }
  if (seen.size !== 5) throw new AirlockError('PARSE_ERROR', 'The host answered only part of the gate file read.');
  return out;
}

/** The write: pinned key (when asked), signature then policy, each tmp + fsync + rename; then SIGHUP to a running gate. Stdin: key line, signature line, policy bytes. */
const WRITE_SCRIPT = `set -e
d='${GATE_DIR}'
mkdir -p "$d"
IFS= read -r key
IFS= read -r sig
umask 022
if [ "$key" != "-" ]; then
  printf '%s' "$key" | base64 -d > "$d/policy-signing.pem.airlock-tmp"
  sync "$d/policy-signing.pem.airlock-tmp"
  mv -f "$d/policy-signing.pem.airlock-tmp" "$d/policy-signing.pem"
fi
printf '%s\\n' "$sig" > "$d/policy.json.sig.airlock-tmp"
cat > "$d/policy.json.airlock-tmp"
sync "$d/policy.json.sig.airlock-tmp" "$d/policy.json.airlock-tmp"
mv -f "$d/policy.json.sig.airlock-tmp" "$d/policy.json.sig"
mv -f "$d/policy.json.airlock-tmp" "$d/policy.json"
sync "$d"
if [ -f '${GATE_FILES.pid}' ]; then
  pid=$(head -c 16 '${GATE_FILES.pid}' | tr -d ' \\n')
  # Digits only, and never 0 or 1 (a process group, init): gate.pid is host output like any other.
  case "$pid" in ''|*[!0-9]*|0|1|0*) echo 'gate.pid is not a pid' >&2 ;; *) kill -HUP "$pid" 2>/dev/null || echo 'the gate did not take SIGHUP' >&2 ;; esac
fi`;

export interface PushOutcome {
  host: string;
  state: HostPolicyState;
  deliveredVersion: number | null;
  enforcingVersion: number | null;
  error: string | null;
  /** What this push changed on the host (for the audit trail). */
  wrote: { key: boolean; policy: boolean };
  replacedForeign: boolean;
}

interface DeliveryRow {
  host_id: number;
  state: HostPolicyState;
  delivered_version: number | null;
  delivered_sha256: string | null;
  enforcing_version: number | null;
  since: string;
  last_error: string | null;
  checked_at: string;
}

const message = (e: unknown) => sanitizeHostText(e instanceof Error ? e.message : String(e), 400);
const UNREACHABLE = new Set(['HOST_UNREACHABLE', 'TIMEOUT', 'SSH_ERROR', 'SSH_AUTH_FAILED', 'HOST_KEY_CHANGED', 'HOST_KEY_UNCONFIRMED', 'HOST_KEY_REVOKED', 'HOST_KEY_MISMATCH']);

export class PolicyPropagation {
  constructor(
    private readonly d: {
      db: Db;
      hosts: PropagationHosts;
      now: () => Date;
      timeoutMs?: number;
      concurrency?: number;
      /** Older versions' hashes, to tell a host holding an older policy of ours from a foreign one. */
      issuedVersionOf: (sha256: string) => number | null;
      /** Test and bench hook: how long to wait for a gate (default 3 s). */
      gateWaitMs?: number;
      sleep?: (ms: number) => Promise<void>;
    },
  ) {}

  private async onHost<T>(name: string, auth: SshAuth, signal: AbortSignal, fn: (r: Remote) => Promise<T>): Promise<T> {
    const host = this.d.hosts.get(name);
    const conn = await this.d.hosts.lease(name, auth, signal);
    try {
      return await fn(new Remote(conn, host.user === 'root', signal, this.d.timeoutMs ?? 15_000));
    } finally {
      conn.close();
    }
  }

  /** Pushes `policy` to each of `hosts` (at most `concurrency` at once), records and returns each outcome. */
  async push(policy: StoredPolicy, publicKeyPem: string, hosts: string[], o: { auth: SshAuth; signal: AbortSignal; repin?: ReadonlySet<string> }): Promise<PushOutcome[]> {
    const signal = this.fanOut(o.signal, hosts.length);
    return this.each(hosts, async (h) => {
      let out: PushOutcome;
      try {
        out = await this.onHost(h, o.auth, signal, (r) => this.pushOne(r, h, policy, publicKeyPem, o.repin?.has(h) ?? false));
      } catch (e) {
        out = this.failed(h, e);
      }
      this.record(h, out, policy);
      return out;
    });
  }

  /** Reads each host's files and the gate's status without writing anything; records and returns the state. */
  async check(policy: StoredPolicy | null, publicKeyPem: string | null, hosts: string[], o: { auth: SshAuth; signal: AbortSignal }): Promise<PushOutcome[]> {
    const signal = this.fanOut(o.signal, hosts.length);
    return this.each(hosts, async (h) => {
      let out: PushOutcome;
      try {
        out = await this.onHost(h, o.auth, signal, async (r) => this.judge(h, await readHostFiles(r), policy, publicKeyPem, { key: false, policy: false }, false));
      } catch (e) {
        out = this.failed(h, e);
      }
      if (policy) this.record(h, out, policy);
      return out;
    });
  }

  /**
   * The caller's signal, fanned out: every host's connection listens to a child signal of its own
   * push (so twenty hosts in parallel do not pile listeners on the caller's signal).
   */
  private fanOut(parent: AbortSignal, hosts: number): AbortSignal {
    const ac = new AbortController();
    setMaxListeners(Math.max(10, hosts * 4 + 10), ac.signal);
    if (parent.aborted) ac.abort();
    else parent.addEventListener('abort', () => ac.abort(), { once: true });
    return ac.signal;
  }

  private async each(hosts: string[], fn: (h: string) => Promise<PushOutcome>): Promise<PushOutcome[]> {
    const out = new Array<PushOutcome>(hosts.length);
    let next = 0;
    const worker = async () => {
      while (next < hosts.length) {
        const i = next++;
        out[i] = await fn(hosts[i]!);
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.d.concurrency ?? 32, hosts.length) }, worker));
    return out;
  }

  private failed(host: string, e: unknown): PushOutcome {
    const code = e instanceof AirlockError ? e.code : 'INTERNAL';
    const state: HostPolicyState = UNREACHABLE.has(code) ? 'unreachable' : 'pending';
    return { host, state, deliveredVersion: null, enforcingVersion: null, error: `${code}: ${message(e)}`, wrote: { key: false, policy: false }, replacedForeign: false };
  }

  private async pushOne(r: Remote, host: string, policy: StoredPolicy, publicKeyPem: string, repin: boolean): Promise<PushOutcome> {
    const before = await readHostFiles(r);
    const wrote = { key: false, policy: false };
    // The pinned key: written when missing; a different one is a refusal unless this push re-pins it by name.
    const keyDiffers = before.key !== null && !samePem(before.key, publicKeyPem);
    if (keyDiffers && !repin) {
      let theirs = 'unreadable';
      try {
        theirs = keyFingerprint(before.key!.toString('utf8'));
      } catch {
        /* not a key */
      }
      return this.judge(host, before, policy, publicKeyPem, wrote, false, `the host pins another policy signing key (${theirs}) than this console's: nothing was written; re-pin it explicitly (policy push --repin ${host}) if that is intended`);
    }
    // A newer policy signed with this console's own key: the console's database is older than what it issued (a restored backup?). Never go back.
    if (before.policy && !keyDiffers && sha256(before.policy) !== policy.sha256 && verifies(publicKeyPem, before.policy, before.sig)) {
      const theirs = claimedVersion(before.policy);
      if (theirs !== null && theirs > policy.version) {
        return this.judge(host, before, policy, publicKeyPem, wrote, false, `the host holds policy v${theirs}, signed by this console's key and newer than its v${policy.version} (was the console's database restored from a backup?): nothing was written`);
      }
    }
    const replacedForeign = before.policy !== null && !verifies(publicKeyPem, before.policy, before.sig);
    const current = before.policy !== null && sha256(before.policy) === policy.sha256 && verifies(publicKeyPem, before.policy, before.sig) && !keyDiffers && before.key !== null;
    if (!current) {
      const writeKey = before.key === null || keyDiffers;
      const stdin = `${writeKey ? Buffer.from(publicKeyPem).toString('base64') : '-'}\n${policy.signature}\n${policy.body}`;
      const res = await r.sh(WRITE_SCRIPT, { stdin });
      if (res.code !== 0) {
        const why = sanitizeHostText(res.stderr.trim().split('\n').pop() ?? '', 200);
        return { host, state: 'pending', deliveredVersion: null, enforcingVersion: null, error: `writing the policy failed (exit ${res.code ?? res.signal ?? '?'}${why ? `: ${why}` : ''})`, wrote, replacedForeign: false };
      }
      wrote.key = writeKey;
      wrote.policy = true;
    }
    // Read back (and, with a running gate, until it reports this version or a refusal, or GATE_WAIT_MS).
    let after = await readHostFiles(r);
    const deadline = Date.now() + (this.d.gateWaitMs ?? GATE_WAIT_MS);
    const sleep = this.d.sleep ?? ((ms: number) => new Promise((res) => setTimeout(res, ms)));
    while (after.gateRunning && Date.now() < deadline) {
      const st = parseGateStatus(after.status);
      if (st && (st.policySha256 === policy.sha256 || (st.lastRejected && st.lastRejected.version === policy.version))) break;
      await sleep(100);
      after = await readHostFiles(r);
    }
    return this.judge(host, after, policy, publicKeyPem, wrote, replacedForeign);
  }

  /** The state a host is in, from what it holds. */
  private judge(host: string, f: HostFiles, policy: StoredPolicy | null, publicKeyPem: string | null, wrote: PushOutcome['wrote'], replacedForeign: boolean, refusal?: string): PushOutcome {
    const st = parseGateStatus(f.status);
    const enforcing = st?.policyVersion ?? null;
    const base = { host, enforcingVersion: enforcing, wrote, replacedForeign };
    const heldSha = f.policy ? sha256(f.policy) : null;
    const heldVersion = heldSha ? (heldSha === policy?.sha256 ? policy.version : this.d.issuedVersionOf(heldSha)) : null;
    if (refusal) return { ...base, state: 'rejected', deliveredVersion: heldVersion, error: refusal };
    if (!policy || !publicKeyPem) return { ...base, state: 'pending', deliveredVersion: heldVersion, error: null };
    if (!f.key || !samePem(f.key, publicKeyPem)) return { ...base, state: 'rejected', deliveredVersion: heldVersion, error: f.key ? 'the host pins another policy signing key than this console’s' : 'the host has no pinned policy signing key' };
    if (!f.policy) return { ...base, state: 'pending', deliveredVersion: null, error: 'no policy on the host yet' };
    if (heldSha !== policy.sha256) {
      if (heldVersion === null) return { ...base, state: 'rejected', deliveredVersion: null, error: `policy.json on the host (sha256 ${heldSha!.slice(0, 16)}…) is not a policy this console issued (tampered, or written by someone else)` };
      const row = this.row(host);
      const replayed = row?.delivered_version != null && heldVersion < row.delivered_version;
      return {
        ...base,
        state: replayed ? 'rejected' : 'pending',
        deliveredVersion: heldVersion,
        error: replayed ? `the host holds policy v${heldVersion}, older than the v${row!.delivered_version} delivered to it (replayed)` : `the host holds v${heldVersion}, not the current v${policy.version}`,
      };
    }
    if (!verifies(publicKeyPem, f.policy, f.sig)) return { ...base, state: 'rejected', deliveredVersion: policy.version, error: 'policy.json.sig on the host is not the signature of its policy.json' };
    if (st?.lastRejected && st.lastRejected.version === policy.version && st.policySha256 !== policy.sha256) {
      return { ...base, state: 'rejected', deliveredVersion: policy.version, error: `the gate refused v${policy.version} (${st.lastRejected.reason}, ${st.lastRejected.at})` };
    }
    if (f.gateRunning && st?.policySha256 !== policy.sha256) {
      return { ...base, state: 'pending', deliveredVersion: policy.version, error: st ? `delivered; the gate still enforces ${enforcing === null ? 'no policy' : `v${enforcing}`}` : 'delivered; the gate has not reported a status' };
    }
    return { ...base, state: 'ok', deliveredVersion: policy.version, error: null };
  }

  private row(host: string): DeliveryRow | undefined {
    return this.d.db.prepare('SELECT d.* FROM access_deliveries d JOIN hosts h ON h.id = d.host_id WHERE h.name = ?').get(host) as DeliveryRow | undefined;
  }

  /** One row per host: its state, since when (kept while the state stays the same), the last delivered version. */
  private record(host: string, o: PushOutcome, policy: StoredPolicy): void {
    const id = (this.d.db.prepare('SELECT id FROM hosts WHERE name = ?').get(host) as { id: number } | undefined)?.id;
    if (id === undefined) return;
    const at = this.d.now().toISOString();
    const prev = this.row(host);
    const since = prev && prev.state === o.state ? prev.since : at;
    const delivered = o.state === 'ok' || (o.deliveredVersion === policy.version && o.state !== 'rejected') ? policy.version : (prev?.delivered_version ?? null);
    const deliveredSha = delivered === policy.version ? policy.sha256 : (prev?.delivered_sha256 ?? null);
    this.d.db
      .prepare(
        `INSERT INTO access_deliveries (host_id, state, delivered_version, delivered_sha256, enforcing_version, since, last_error, checked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (host_id) DO UPDATE SET state = excluded.state, delivered_version = excluded.delivered_version, delivered_sha256 = excluded.delivered_sha256,
           enforcing_version = excluded.enforcing_version, since = excluded.since, last_error = excluded.last_error, checked_at = excluded.checked_at`,
      )
      .run(id, o.state, delivered, deliveredSha, o.enforcingVersion, since, o.error, at);
  }

  /** Every enrolled host's recorded state (pending, never checked, for a host with no record yet). */
  states(hosts: Array<{ host: string; enclave: string; phi: boolean }>): HostPolicy[] {
    const rows = new Map(
      (this.d.db.prepare('SELECT h.name AS host, d.* FROM access_deliveries d JOIN hosts h ON h.id = d.host_id').all() as Array<DeliveryRow & { host: string }>).map((r) => [r.host, r]),
    );
    return hosts.map((h) => {
      const r = rows.get(h.host);
      return {
        host: h.host,
        enclave: h.enclave,
        phi: h.phi,
        state: r?.state ?? 'pending',
        deliveredVersion: r?.delivered_version ?? null,
        enforcingVersion: r?.enforcing_version ?? null,
        since: r?.since ?? null,
        lastError: r?.last_error ?? (r ? null : 'not pushed yet'),
        checkedAt: r?.checked_at ?? null,
      };
    });
  }
}

/** "policy v42 on 19/20 hosts; gpu-07 unreachable since 2026-12-08T10:42:00.000Z". */
export function summarize(version: number | null, hosts: HostPolicy[]): string {
  if (version === null) return 'no policy issued yet';
  const ok = hosts.filter((h) => h.state === 'ok').length;
  const rest = hosts
    .filter((h) => h.state !== 'ok')
    .slice(0, 5)
    .map((h) => `${h.host} ${h.state}${h.since ? ` since ${h.since}` : ''}`);
  const more = hosts.length - ok > 5 ? `; and ${hosts.length - ok - 5} more` : '';
  return `policy v${version} on ${ok}/${hosts.length} hosts${rest.length ? `; ${rest.join('; ')}` : ''}${more}`;
}
