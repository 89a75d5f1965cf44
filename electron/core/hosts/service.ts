import { setMaxListeners } from 'node:events';
import type { Host, ImportOutcome, Inventory, ProbeResult, ScanOutcome } from '../../../shared/contract/hosts';
import { Inventory as InventorySchema } from '../../../shared/contract/hosts';
import { AirlockError } from '../../../shared/domain/errors';
import type { Db } from '../db/db';
import crypto from 'node:crypto';
import { connect, probeHostKey, type SshAuth, type SshConnection } from '../ssh/connection';
import { ConnectionPool } from '../ssh/pool';
import { hashedEntryMatches, keyTypeRank, parseKnownHosts } from '../ssh/known-hosts';
import { parseSshConfig } from '../ssh/ssh-config';
import { INVENTORY_COMMAND, parseInventory, sanitizeHostText } from './inventory';
import type { ModelsProbe } from '../keys/models-rekey-scan';

interface HostRow {
  id: number;
  name: string;
  address: string;
  port: number;
  user: string;
  fingerprint: string | null;
  key_type: string | null;
  added_at: string;
  status: Host['status'];
  last_error: string | null;
  last_seen_at: string | null;
  inventory: string | null;
  labels: string;
}

export interface HostsDeps {
  db: Db;
  now: () => Date;
  timeoutMs: number;
  concurrency: number;
  /** Idle ms a connection is kept for the next operation on its host (0: none kept). */
  poolIdleMs?: number;
}

/** A key an imported known_hosts holds for an address (from a hashed entry). */
interface ImportedKey {
  keyType: string;
  fingerprint: string;
  line: number;
}

interface RevokedRow {
  key_type: string;
  fingerprint: string;
  source_line: number;
  hosts: string;
}

/** The host inventory: enrolment with pinned keys, imports, concurrent scans. */
export class HostsService {
  /** Connections kept between operations (scan → plan → apply); see ConnectionPool. */
  readonly pool: ConnectionPool;

  /** The models state of protected hosts in a scan (keys/models-rekey-scan.ts); set by the keys area, built after this service. */
  private modelsProbe: ModelsProbe | null = null;

  constructor(private readonly deps: HostsDeps) {
    this.pool = new ConnectionPool({ idleMs: deps.poolIdleMs ?? 30_000 });
  }

  /**
   * Scans also report (and, unsealed, unlock) the models directory of each host Airlock protected.
   * Late-bound because the keys area that owns the keys is composed after the hosts service.
   */
  setModelsProbe(probe: ModelsProbe | null): void {
    this.modelsProbe = probe;
  }

  /** Close every kept connection (at exit). */
  close(): void {
    this.pool.drain();
  }

  list(): Host[] {
    return (this.deps.db.prepare('SELECT * FROM hosts ORDER BY name').all() as HostRow[]).map(toHost);
  }

  get(name: string): Host {
    return toHost(this.row(name));
  }

  async probe(address: string, port: number, signal: AbortSignal): Promise<ProbeResult> {
    const imported = this.importedKeysFor(address, port);
    const opts = { timeoutMs: this.deps.timeoutMs, signal };
    let key: { fingerprint: string; keyType: string };
    try {
      // Ask for the type an imported key has, so the comparison is with that key.
      key = await probeHostKey(address, port, { ...opts, keyType: imported[0]?.keyType ?? null });
    } catch (e) {
      const code = e instanceof AirlockError ? e.code : null;
      if (!imported.length || code === 'CANCELLED' || code === 'TIMEOUT' || code === 'HOST_UNREACHABLE') throw e;
      // The host has no key of that type: show what it does present (it will not match).
      key = await probeHostKey(address, port, opts);
    }
    const knownHosts = this.revokedKey(key.fingerprint)
      ? 'revoked'
      : imported.length === 0
        ? 'none'
        : imported.some((k) => k.fingerprint === key.fingerprint)
          ? 'match'
          : 'differs';
    const pinned = this.deps.db
      .prepare('SELECT name, fingerprint FROM hosts WHERE address = ? AND port = ? AND fingerprint IS NOT NULL')
      .get(address, port) as { name: string; fingerprint: string } | undefined;
    return {
      address,
      port,
      fingerprint: key.fingerprint,
      keyType: key.keyType,
      pinned: pinned ? { host: pinned.name, fingerprint: pinned.fingerprint } : null,
      knownHosts,
    };
  }

  /**
   * Enrol: the operator confirmed `fingerprint` (from a probe or out of band), or gave none and an
   * imported known_hosts holds a key for the address. We read the host's key once more and pin
   * only if it is that one. A revoked key is never pinned.
   */
  async add(
    input: { name: string; address: string; port: number; user: string; fingerprint?: string | undefined },
    signal: AbortSignal,
  ): Promise<Host> {
    this.assertFree(input.name, input.address, input.port);
    const key = await this.keyToPin(input.address, input.port, input.fingerprint, signal);
    this.assertFree(input.name, input.address, input.port);
    this.deps.db
      .prepare(
        `INSERT INTO hosts (name, address, port, user, fingerprint, key_type, added_at, status)
         VALUES (?, ?, ?, ?, ?, ?, ?, 'unknown')`,
      )
      .run(input.name, input.address, input.port, input.user, key.fingerprint, key.keyType, this.nowIso());
    return this.get(input.name);
  }

  async confirm(name: string, fingerprint: string | undefined, signal: AbortSignal): Promise<Host> {
    const row = this.row(name);
    const key = await this.keyToPin(row.address, row.port, fingerprint, signal);
    this.deps.db
      .prepare(`UPDATE hosts SET fingerprint = ?, key_type = ?, status = 'unknown', last_error = NULL WHERE id = ?`)
      .run(key.fingerprint, key.keyType, row.id);
    this.pool.drain(poolPrefix(name));
    return this.get(name);
  }

  /**
   * Accept a changed host key. A person compared, side by side, the pinned key (`pinned`) and the
   * one the host presents (`fingerprint`, from hosts:probe) and checked the new one on the host.
   * We read the host's key once more and pin it only if it is still that one: a host that now
   * presents yet another key (an interceptor swapping keys between probe and confirmation) is
   * refused, as is a pin that changed meanwhile or a revoked key. The audit event's detail holds
   * the key before and after.
   */
  async repin(name: string, pinned: string, fingerprint: string, signal: AbortSignal, detail: (d: Record<string, unknown>) => void): Promise<Host> {
    const row = this.row(name);
    if (row.fingerprint === null) {
      throw new AirlockError('HOST_KEY_UNCONFIRMED', `${row.name} has no pinned key yet: confirm its key instead. Nothing was pinned.`);
    }
    if (row.fingerprint !== pinned) {
      throw new AirlockError('CONFLICT', `The pinned key of ${row.name} is now ${row.fingerprint}, not the ${pinned} you compared. Look at the host again. Nothing was pinned.`);
    }
    if (fingerprint === pinned) {
      throw new AirlockError('CONFLICT', `${fingerprint} is already the pinned key of ${row.name}: there is nothing to replace.`);
    }
    this.refuseRevoked(fingerprint, `${row.address}:${row.port}`);
    const key = await probeHostKey(row.address, row.port, { timeoutMs: this.deps.timeoutMs, signal, keyType: null });
    this.refuseRevoked(key.fingerprint, `${row.address}:${row.port}`);
    if (key.fingerprint !== fingerprint) {
      throw new AirlockError(
        'HOST_KEY_MISMATCH',
        `The host at ${row.address}:${row.port} now presents ${key.fingerprint}, not the ${fingerprint} you compared: it changed its key again, or someone is intercepting the connection. Nothing was pinned; the pinned key is still ${pinned}.`,
      );
    }
    const r = this.deps.db
      .prepare(`UPDATE hosts SET fingerprint = ?, key_type = ?, status = 'unknown', last_error = NULL WHERE id = ? AND fingerprint = ?`)
      .run(key.fingerprint, key.keyType, row.id, pinned);
    if (r.changes === 0) throw new AirlockError('CONFLICT', `The pinned key of ${row.name} changed while its key was read. Nothing was pinned.`);
    this.pool.drain(poolPrefix(name));
    detail({ before: { fingerprint: row.fingerprint, keyType: row.key_type }, after: { fingerprint: key.fingerprint, keyType: key.keyType } });
    return this.get(name);
  }

  /**
   * Change where and as whom Airlock connects. The pinned key stays: trust is in the key, not the
   * address, so the next connection (a scan) must present that same key at the new address:port,
   * and a host that presents another is "key-changed" and needs its key accepted (hosts:repin)
   * after a person compared both. A new address or port resets the status to unknown until then.
   */
  update(name: string, change: { address?: string | undefined; port?: number | undefined; user?: string | undefined }, detail: (d: Record<string, unknown>) => void): Host {
    const row = this.row(name);
    const address = change.address ?? row.address;
    const port = change.port ?? row.port;
    const user = change.user ?? row.user;
    const moved = address !== row.address || port !== row.port;
    if (moved) {
      const other = this.deps.db.prepare('SELECT name FROM hosts WHERE address = ? AND port = ? AND id != ?').get(address, port, row.id) as { name: string } | undefined;
      if (other) throw new AirlockError('CONFLICT', `${address}:${port} is already enrolled as "${other.name}".`);
    }
    if (!moved && user === row.user) return this.get(name);
    this.deps.db
      .prepare(
        moved
          ? `UPDATE hosts SET address = ?, port = ?, user = ?, status = CASE WHEN fingerprint IS NULL THEN 'unconfirmed' ELSE 'unknown' END, last_error = NULL WHERE id = ?`
          : 'UPDATE hosts SET address = ?, port = ?, user = ? WHERE id = ?',
      )
      .run(address, port, user, row.id);
    this.pool.drain(poolPrefix(name));
    detail({ before: { address: row.address, port: row.port, user: row.user }, after: { address, port, user } });
    return this.get(name);
  }

  /** Labels (enclave, role, rack…) select hosts for provisioning: `label:<x>`. */
  setLabels(name: string, labels: string[]): Host {
    const row = this.row(name);
    const clean = [...new Set(labels)].sort();
    this.deps.db.prepare('UPDATE hosts SET labels = ? WHERE id = ?').run(JSON.stringify(clean), row.id);
    return this.get(name);
  }

  remove(name: string): void {
    const r = this.deps.db.prepare('DELETE FROM hosts WHERE name = ?').run(name);
    if (r.changes === 0) throw new AirlockError('NOT_FOUND', `No host named "${name}".`);
    this.pool.drain(poolPrefix(name));
  }

  /**
   * A connection for one operation that mostly runs commands (scan, plan, apply, drift): kept in the
   * pool afterwards when it stayed clean, so the next operation on this host skips the handshake.
   * Operations that need a connection of their own (a terminal, a dead-man switch's proof that a
   * new login still works) use {@link HostsService.open}.
   */
  async lease(name: string, auth: SshAuth, signal: AbortSignal, timeoutMs = this.deps.timeoutMs, opts: { fresh?: boolean } = {}): Promise<SshConnection> {
    const row = this.row(name);
    if (!this.pool.enabled) return this.open(name, auth, signal, timeoutMs);
    // Also for a kept connection: a key revoked since it was opened is not used again.
    this.assertNotRevoked(row);
    const who = auth.privateKey !== undefined ? `key:${crypto.createHash('sha256').update(auth.privateKey).digest('hex')}` : `agent:${auth.agent ?? ''}`;
    const key = `${poolPrefix(row.name)}${row.address}\0${row.port}\0${row.user}\0${row.fingerprint ?? ''}\0${who}`;
    if (signal.aborted) throw new AirlockError('CANCELLED', `Connecting to ${row.name} was cancelled.`);
    return this.pool.lease(key, () => this.open(name, auth, signal, timeoutMs), opts);
  }

  /** Connect to an enrolled host with its pinned key. Errors are recorded on the host row. */
  async open(name: string, auth: SshAuth, signal: AbortSignal, timeoutMs = this.deps.timeoutMs): Promise<SshConnection> {
    const row = this.row(name);
    this.assertNotRevoked(row);
    try {
      return await connect(
        { address: row.address, port: row.port, user: row.user, fingerprint: row.fingerprint, keyType: row.key_type, hostName: row.name },
        auth,
        { timeoutMs, signal },
      );
    } catch (e) {
      this.recordFailure(row.id, e);
      throw e;
    }
  }

  /**
   * Scan with a bounded pool: at most `concurrency` connections at once, every host
   * bounded by its own timeout, so one dead host never holds up the rest.
   */
  async scan(names: string[] | undefined, auth: SshAuth, signal: AbortSignal, timeoutMs?: number): Promise<ScanOutcome[]> {
    const rows = names?.length ? names.map((n) => this.row(n)) : (this.deps.db.prepare('SELECT * FROM hosts ORDER BY name').all() as HostRow[]);
    const results: ScanOutcome[] = new Array(rows.length);
    // Every connection in the pool listens on the one cancel signal: that is expected, not a leak.
    setMaxListeners(Math.max(10, this.deps.concurrency * 2 + 10), signal);
    let next = 0;
    const worker = async () => {
      while (next < rows.length) {
        const i = next++;
        results[i] = await this.scanOne(rows[i]!, auth, signal, timeoutMs ?? this.deps.timeoutMs);
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.deps.concurrency, rows.length) }, worker));
    return results;
  }

  private async scanOne(row: HostRow, auth: SshAuth, signal: AbortSignal, timeoutMs: number): Promise<ScanOutcome> {
    const started = Date.now();
    let conn: SshConnection | null = null;
    try {
      if (signal.aborted) throw new AirlockError('CANCELLED', 'Scan cancelled.');
      // A scan is the health check: always a new connection (reachable now, with the pinned key now);
      // it is kept afterwards for the operation that usually follows.
      conn = await this.lease(row.name, auth, signal, timeoutMs, { fresh: true });
      const res = await conn.exec(INVENTORY_COMMAND, { timeoutMs, signal, maxOutputBytes: 1024 * 1024 });
      const inventory = parseInventory(res.stdout, this.deps.now());
      this.deps.db
        .prepare(`UPDATE hosts SET status = 'reachable', last_error = NULL, last_seen_at = ?, inventory = ? WHERE id = ?`)
        .run(this.nowIso(), JSON.stringify(inventory), row.id);
      const models = this.modelsProbe ? await this.modelsProbe(toHost(row), conn, signal) : undefined;
      return { name: row.name, ok: true, status: 'reachable', error: null, inventory, ms: Date.now() - started, ...(models ? { models } : {}) };
    } catch (e) {
      const err = e instanceof AirlockError ? e : new AirlockError('SSH_ERROR', sanitizeHostText(String((e as Error).message), 300));
      this.recordFailure(row.id, err);
      return {
        name: row.name,
        ok: false,
        status: statusFor(err.code),
        error: err.toJSON(),
        inventory: null,
        ms: Date.now() - started,
      };
    } finally {
      conn?.close();
    }
  }

  /**
   * Plain entries become hosts with their key pinned (the strongest type per address:port);
   * hashed entries are kept in known_host_keys, to be pinned when a host is added by an address
   * they match; `@revoked` keys are kept and refused for every host from then on.
   */
  importKnownHosts(text: string, user: string): ImportOutcome {
    const parsed = parseKnownHosts(text);
    const out: ImportOutcome = {
      added: [],
      skipped: parsed.skipped.map((s) => ({ line: s.line, entry: `line ${s.line}: ${s.entry}`, reason: s.reason })),
      kept: [],
      revoked: [],
    };
    // Prefer the strongest key type per endpoint: we will pin exactly one.
    const best = new Map<string, { host: string; port: number; keyType: string; fingerprint: string; line: number }>();
    for (const e of parsed.entries) {
      for (const host of e.hosts) {
        const k = `${host}:${e.port}`;
        const cur = best.get(k);
        if (!cur || keyTypeRank(e.keyType) < keyTypeRank(cur.keyType)) best.set(k, { host, port: e.port, keyType: e.keyType, fingerprint: e.fingerprint, line: e.line });
      }
    }
    const insert = this.deps.db.prepare(
      `INSERT INTO hosts (name, address, port, user, fingerprint, key_type, added_at, status) VALUES (?, ?, ?, ?, ?, ?, ?, 'unknown')`,
    );
    const keep = this.deps.db.prepare(
      `INSERT OR IGNORE INTO known_host_keys (marker, salt, hash, hosts, key_type, public_key, fingerprint, source_line, imported_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    const revokedNote = (fp: string) => {
      const r = this.revokedKey(fp);
      return r ? `the ${r.key_type} key ${fp} is revoked (@revoked, line ${r.source_line} of an imported known_hosts): not imported` : null;
    };
    const drain: string[] = [];
    this.deps.db.transaction(() => {
      const now = this.nowIso();
      // Revocations first: a key this same file revokes is not imported from it.
      for (const r of parsed.revoked) {
        keep.run('revoked', null, null, r.hosts, r.keyType, r.key, r.fingerprint, r.line, now);
        const pinned = (this.deps.db.prepare('SELECT name FROM hosts WHERE fingerprint = ? ORDER BY name').all(r.fingerprint) as Array<{ name: string }>).map((x) => x.name);
        drain.push(...pinned);
        out.revoked.push({ line: r.line, keyType: r.keyType, fingerprint: r.fingerprint, hosts: pinned });
      }
      // Kept even when revoked: enrolling that host by address is then refused naming the key.
      for (const h of parsed.hashed) {
        keep.run('hashed', h.salt, h.hash, `|1|${h.salt}|${h.hash}`, h.keyType, h.key, h.fingerprint, h.line, now);
        out.kept.push({ line: h.line, keyType: h.keyType, fingerprint: h.fingerprint });
      }
      for (const e of best.values()) {
        const name = hostNameFor(e.host, e.port);
        const reason = revokedNote(e.fingerprint) ?? this.conflict(name, e.host, e.port);
        if (reason || !name) {
          out.skipped.push({ line: e.line, entry: `line ${e.line}: ${e.host}`, reason: reason ?? 'not usable as a host name' });
          continue;
        }
        insert.run(name, e.host, e.port, user, e.fingerprint, e.keyType, now);
        out.added.push({ name, address: e.host, port: e.port, fingerprint: e.fingerprint });
      }
    })();
    for (const name of drain) this.pool.drain(poolPrefix(name));
    return out;
  }

  importSshConfig(text: string): ImportOutcome {
    const parsed = parseSshConfig(text);
    const out: ImportOutcome = {
      added: [],
      skipped: parsed.skipped.map((s) => ({ line: s.line > 0 ? s.line : null, entry: s.entry, reason: s.reason })),
      kept: [],
      revoked: [],
    };
    const insert = this.deps.db.prepare(
      `INSERT INTO hosts (name, address, port, user, fingerprint, key_type, added_at, status) VALUES (?, ?, ?, ?, NULL, NULL, ?, 'unconfirmed')`,
    );
    this.deps.db.transaction(() => {
      for (const e of parsed.entries) {
        const reason = this.conflict(e.alias, e.hostName, e.port);
        if (reason) {
          out.skipped.push({ line: e.line > 0 ? e.line : null, entry: e.alias, reason });
          continue;
        }
        insert.run(e.alias, e.hostName, e.port, e.user ?? 'root', this.nowIso());
        out.added.push({ name: e.alias, address: e.hostName, port: e.port, fingerprint: null });
      }
    })();
    return out;
  }

  /**
   * The key to pin for address:port: the one the operator confirmed, or with none given the
   * strongest imported key for it (ed25519, then ECDSA, then RSA); the host must present it now.
   * Fail-closed on revocation: a revoked key, given or imported for this address, refuses it all.
   */
  private async keyToPin(address: string, port: number, fingerprint: string | undefined, signal: AbortSignal) {
    const where = `${address}:${port}`;
    if (fingerprint !== undefined) {
      this.refuseRevoked(fingerprint, where);
      return this.confirmKey(address, port, fingerprint, signal, null, `the confirmed ${fingerprint}`);
    }
    const imported = this.importedKeysFor(address, port);
    if (imported.length === 0) {
      throw new AirlockError(
        'HOST_KEY_UNCONFIRMED',
        `No fingerprint was given and no imported known_hosts entry names ${where}. Probe the host, compare its key, and give its fingerprint. Nothing was pinned.`,
      );
    }
    for (const k of imported) this.refuseRevoked(k.fingerprint, where);
    const want = imported[0]!;
    const what = `the ${want.keyType} key ${want.fingerprint} of the imported known_hosts (line ${want.line})`;
    try {
      return await this.confirmKey(address, port, want.fingerprint, signal, want.keyType, what);
    } catch (e) {
      // Only that key type was offered: a host without such a key fails the key exchange.
      if (!(e instanceof AirlockError) || e.code !== 'SSH_ERROR') throw e;
      throw new AirlockError('HOST_KEY_MISMATCH', `The host at ${where} does not present ${what} (${e.message}). Nothing was pinned.`);
    }
  }

  private async confirmKey(address: string, port: number, fingerprint: string, signal: AbortSignal, keyType: string | null, what: string) {
    const key = await probeHostKey(address, port, { timeoutMs: this.deps.timeoutMs, signal, keyType });
    this.refuseRevoked(key.fingerprint, `${address}:${port}`);
    if (key.fingerprint !== fingerprint) {
      throw new AirlockError('HOST_KEY_MISMATCH', `The host at ${address}:${port} presents ${key.fingerprint}, not ${what}. Nothing was pinned.`);
    }
    return key;
  }

  /** Keys from imported hashed known_hosts entries that name address:port: strongest type first, then oldest import. */
  private importedKeysFor(address: string, port: number): ImportedKey[] {
    const rows = this.deps.db
      .prepare(`SELECT salt, hash, key_type, fingerprint, source_line FROM known_host_keys WHERE marker = 'hashed' ORDER BY id`)
      .all() as Array<{ salt: string; hash: string; key_type: string; fingerprint: string; source_line: number }>;
    const out: ImportedKey[] = [];
    for (const r of rows) {
      if (out.some((k) => k.fingerprint === r.fingerprint) || !hashedEntryMatches(r, address, port)) continue;
      out.push({ keyType: r.key_type, fingerprint: r.fingerprint, line: r.source_line });
    }
    return out.sort((a, b) => keyTypeRank(a.keyType) - keyTypeRank(b.keyType));
  }

  private revokedKey(fingerprint: string): RevokedRow | undefined {
    return this.deps.db
      .prepare(`SELECT key_type, fingerprint, source_line, hosts FROM known_host_keys WHERE marker = 'revoked' AND fingerprint = ? ORDER BY id LIMIT 1`)
      .get(fingerprint) as RevokedRow | undefined;
  }

  private refuseRevoked(fingerprint: string, where: string): void {
    const r = this.revokedKey(fingerprint);
    if (!r) return;
    throw new AirlockError(
      'HOST_KEY_REVOKED',
      `The ${r.key_type} key ${fingerprint} for ${where} is revoked (@revoked, line ${r.source_line} of an imported known_hosts). Nothing was pinned.`,
    );
  }

  /** A pinned key revoked since: no connection, nothing sent; the host needs its new key confirmed. */
  private assertNotRevoked(row: HostRow): void {
    const r = row.fingerprint ? this.revokedKey(row.fingerprint) : undefined;
    if (!r) return;
    const err = new AirlockError(
      'HOST_KEY_REVOKED',
      `The pinned ${r.key_type} key ${r.fingerprint} of ${row.name} (${row.address}:${row.port}) is revoked (@revoked, line ${r.source_line} of an imported known_hosts). ` +
        'Refusing to connect; nothing was sent. Confirm the host\'s new key to use it again.',
    );
    this.recordFailure(row.id, err);
    throw err;
  }

  private conflict(name: string, address: string, port: number): string | null {
    if (this.deps.db.prepare('SELECT 1 FROM hosts WHERE name = ?').get(name)) return `a host named "${name}" already exists`;
    const other = this.deps.db.prepare('SELECT name FROM hosts WHERE address = ? AND port = ?').get(address, port) as
      | { name: string }
      | undefined;
    if (other) return `${address}:${port} is already enrolled as "${other.name}"`;
    return null;
  }

  private assertFree(name: string, address: string, port: number): void {
    const reason = this.conflict(name, address, port);
    if (reason) throw new AirlockError('CONFLICT', reason[0]!.toUpperCase() + reason.slice(1) + '.');
  }

  private recordFailure(id: number, e: unknown): void {
    const err = e instanceof AirlockError ? e : new AirlockError('SSH_ERROR', String((e as Error)?.message ?? e));
    this.deps.db
      .prepare('UPDATE hosts SET status = ?, last_error = ? WHERE id = ?')
      .run(statusFor(err.code), `${err.code}: ${sanitizeHostText(err.message, 500)}`, id);
  }

  private row(name: string): HostRow {
    const row = this.deps.db.prepare('SELECT * FROM hosts WHERE name = ?').get(name) as HostRow | undefined;
    if (!row) throw new AirlockError('NOT_FOUND', `No host named "${name}".`);
    return row;
  }

  private nowIso(): string {
    return this.deps.now().toISOString();
  }
}

function statusFor(code: string): Host['status'] {
  switch (code) {
    case 'HOST_KEY_CHANGED':
    case 'HOST_KEY_REVOKED':
      return 'key-changed';
    case 'HOST_KEY_UNCONFIRMED':
      return 'unconfirmed';
    case 'SSH_AUTH_FAILED':
      return 'auth-failed';
    case 'HOST_UNREACHABLE':
    case 'TIMEOUT':
      return 'unreachable';
    case 'CANCELLED':
      return 'unknown';
    default:
      return 'error';
  }
}

/** A known_hosts entry has no alias: the address (and a non-default port) becomes the name. */
function hostNameFor(address: string, port: number): string {
  const base = address.replace(/[^A-Za-z0-9_.-]/g, '-').replace(/^[^A-Za-z0-9]+/, '');
  return (port === 22 ? base : `${base}-${port}`).slice(0, 64);
}

function toHost(r: HostRow): Host {
  let inventory: Inventory | null = null;
  if (r.inventory) {
    const p = InventorySchema.safeParse(JSON.parse(r.inventory));
    inventory = p.success ? p.data : null;
  }
  return {
    name: r.name,
    address: r.address,
    port: r.port,
    user: r.user,
    fingerprint: r.fingerprint,
    keyType: r.key_type,
    addedAt: r.added_at,
    status: r.status,
    lastError: r.last_error,
    lastSeenAt: r.last_seen_at,
    inventory,
    labels: parseLabels(r.labels),
  };
}

function parseLabels(s: string | undefined): string[] {
  try {
    const v = JSON.parse(s ?? '[]') as unknown;
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
  } catch {
    return [];
  }
}

/** Pool keys of a host start with its name (to drop them when it is removed or re-pinned). */
function poolPrefix(name: string): string {
  return `${name}\0`;
}
