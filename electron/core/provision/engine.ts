import crypto from 'node:crypto';
import fs from 'node:fs';
import { setMaxListeners } from 'node:events';
import type { Host } from '../../../shared/contract/hosts';
import type { Change, HostRun, Playbook, Run, StepRecord, StepStatus } from '../../../shared/contract/provision';
import { AirlockError } from '../../../shared/domain/errors';
import type { AuditInput, AuditTrail } from '../audit/audit';
import type { Db } from '../db/db';
import type { HostsService } from '../hosts/service';
import type { SshAuth, SshConnection } from '../ssh/connection';
import { sanitizeHostLines } from '../ssh/sanitize';
import type { Attestations } from '../attest/attest';
import { checkOverrides, playbookDigest, stepParams, type Playbooks } from './playbooks';
import { Remote, StepFailure } from './remote';
import { TABLE as EGRESS_TABLE } from './steps/egress';
import { STEPS } from './steps/index';
import type { StepContext } from './steps/types';
import type { OfflineStore } from '../store/store';

const OUTPUT_CAP = 64 * 1024;
const FLUSH_MS = 400;

export interface Caller {
  actor: string;
  /** The acting account's identity (users.uid), recorded with each step event. */
  principal?: string | null;
  roles: string[];
  /** What the audit trail records for the session and shell (as the dispatcher does). */
  sessionRef: string | null;
  shell: string;
  vaultKey: Buffer;
  auth: SshAuth;
  signal: AbortSignal;
  emit: (event: string, payload: unknown) => void;
}

export interface ProvisionerDeps {
  db: Db;
  hosts: HostsService;
  store: OfflineStore;
  playbooks: Playbooks;
  attestations: Attestations;
  audit: AuditTrail;
  now: () => Date;
  timeoutMs: number;
  concurrency: number;
}

interface RunRow {
  id: string;
  kind: Run['kind'];
  playbook: string;
  playbook_version: string;
  playbook_digest: string;
  playbook_body: string;
  params: string;
  actor: string;
  status: Run['status'];
  started_at: string;
  finished_at: string | null;
  attempts: number;
  owner: string | null;
}
interface StepRow {
  run_id: string;
  host: string;
  idx: number;
  step_id: string;
  type: string;
  title: string;
  status: StepStatus;
  phase: StepRecord['phase'];
  changes: string;
  output: string;
  exit_code: number | null;
  started_at: string | null;
  finished_at: string | null;
  duration_ms: number | null;
  message: string | null;
  error_code: string | null;
  transfer: string | null;
  facts: string | null;
}

/** This process, recognisably: a pid can be reused, a pid with its start time cannot. */
function processStart(pid: number): string {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? '?';
  } catch {
    return '?';
  }
}
function ownerAlive(owner: string | null, mine: string): boolean {
  if (!owner) return false;
  if (owner === mine) return true;
  const [pidS, start] = owner.split(':');
  const pid = Number(pidS);
  if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) return false; // an earlier core of this very process
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  return start === '?' || processStart(pid) === start;
}

const DONE: ReadonlySet<StepStatus> = new Set(['ok', 'changed']);

/**
 * Plan, apply, resume and drift. A run is recorded durably as it goes: every step's status change
 * is committed before the next thing happens, output is flushed every few hundred ms and at the
 * step's end, so if Airlock or the host dies the record shows exactly which steps finished.
 * Hosts run in parallel (bounded pool); steps run in order per host; a host stops at its first
 * failure while the others carry on.
 */
export class Provisioner {
  private readonly owner = `${process.pid}:${processStart(process.pid)}:${crypto.randomBytes(4).toString('hex')}`;

  constructor(private readonly deps: ProvisionerDeps) {
    this.sweep();
  }

  /** Runs whose process is gone are interrupted: say so in the record (at start-up and before reads). */
  sweep(): void {
    const running = this.deps.db.prepare(`SELECT id, owner FROM provision_runs WHERE status = 'running'`).all() as Array<{ id: string; owner: string | null }>;
    for (const r of running) {
      if (ownerAlive(r.owner, this.owner)) continue;
      const now = this.nowIso();
      const why = 'Airlock stopped while this ran; resume re-checks it first';
      this.deps.db.transaction(() => {
        this.deps.db.prepare(`UPDATE provision_steps SET status = 'interrupted', message = ?, finished_at = ? WHERE run_id = ? AND status = 'running'`).run(why, now, r.id);
        this.deps.db.prepare(`UPDATE provision_hosts SET status = 'interrupted', message = ?, finished_at = ? WHERE run_id = ? AND status IN ('running', 'pending')`).run(why, now, r.id);
        this.deps.db.prepare(`UPDATE provision_runs SET status = 'interrupted', finished_at = ?, owner = NULL WHERE id = ?`).run(now, r.id);
      })();
    }
  }

  private nowIso() {
    return this.deps.now().toISOString();
  }

  /** Resolve a selector: names, `all`, `label:x`. Only hosts with a pinned key qualify. */
  resolveHosts(selector: string[]): Host[] {
    const all = this.deps.hosts.list();
    const out = new Map<string, Host>();
    for (const s of selector) {
      let picked: Host[];
      if (s === 'all') picked = all;
      else if (s.startsWith('label:')) {
        picked = all.filter((h) => h.labels.includes(s.slice(6)));
        if (picked.length === 0) throw new AirlockError('NOT_FOUND', `No host carries the label "${s.slice(6)}".`);
      } else {
        const h = all.find((x) => x.name === s);
        if (!h) throw new AirlockError('NOT_FOUND', `No host named "${s}".`);
        picked = [h];
      }
      for (const h of picked) out.set(h.name, h);
    }
    const hosts = [...out.values()];
    if (hosts.length === 0) throw new AirlockError('NOT_FOUND', 'The selector matches no host.');
    const unpinned = hosts.filter((h) => !h.fingerprint);
    if (unpinned.length) throw new AirlockError('HOST_KEY_UNCONFIRMED', `Confirm the host key of ${unpinned.map((h) => h.name).join(', ')} first.`);
    return hosts;
  }

  async plan(c: Caller, input: { playbook: string; hosts: string[]; params: Record<string, Record<string, unknown>>; concurrency?: number }): Promise<Run> {
    return this.start(c, 'plan', input);
  }

  async apply(c: Caller, input: { playbook: string; hosts: string[]; params: Record<string, Record<string, unknown>>; concurrency?: number }): Promise<Run> {
    return this.start(c, 'apply', input);
  }

  private async start(c: Caller, kind: 'plan' | 'apply', input: { playbook: string; hosts: string[]; params: Record<string, Record<string, unknown>>; concurrency?: number }) {
    const pb = this.deps.playbooks.get(input.playbook).playbook;
    checkOverrides(pb, input.params);
    const hosts = this.resolveHosts(input.hosts);
    const id = `run-${crypto.randomBytes(8).toString('hex')}`;
    const now = this.nowIso();
    const db = this.deps.db;
    db.transaction(() => {
      db.prepare(
        `INSERT INTO provision_runs (id, kind, playbook, playbook_version, playbook_digest, playbook_body, params, actor, status, started_at, owner)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'running', ?, ?)`,
      ).run(id, kind, pb.name, pb.version, playbookDigest(pb), JSON.stringify(pb), JSON.stringify(input.params), c.actor, now, this.owner);
      for (const h of hosts) {
        db.prepare(`INSERT INTO provision_hosts (run_id, host, status) VALUES (?, ?, 'pending')`).run(id, h.name);
        pb.steps.forEach((s, idx) => {
          db.prepare(`INSERT INTO provision_steps (run_id, host, idx, step_id, type, title, status) VALUES (?, ?, ?, ?, ?, ?, 'pending')`).run(
            id,
            h.name,
            idx,
            s.id,
            s.type,
            s.title ?? STEPS.get(s.type)!.title,
          );
        });
      }
    })();
    await this.execute(c, id, kind, pb, input.params, hosts.map((h) => ({ host: h, from: 0 })), input.concurrency);
    return this.get(id);
  }

  async resume(c: Caller, runId: string, concurrency?: number): Promise<Run> {
    this.sweep();
    const row = this.row(runId);
    if (row.kind !== 'apply') throw new AirlockError('CONFLICT', `Run ${runId} is a ${row.kind}: only an apply can be resumed (plan again instead).`);
    if (row.status === 'running') throw new AirlockError('CONFLICT', `Run ${runId} is still running.`);
    if (row.status === 'succeeded') throw new AirlockError('CONFLICT', `Run ${runId} already succeeded: apply again to re-check.`);
    const pb = JSON.parse(row.playbook_body) as Playbook;
    const overrides = JSON.parse(row.params) as Record<string, Record<string, unknown>>;
    const hostRows = this.deps.db.prepare(`SELECT host, status FROM provision_hosts WHERE run_id = ? ORDER BY host`).all(runId) as Array<{ host: string; status: string }>;
    const todo: Array<{ host: Host; from: number }> = [];
    for (const h of hostRows) {
      if (h.status === 'succeeded') continue;
      const steps = this.steps(runId, h.host);
      const from = steps.findIndex((s) => !DONE.has(s.status));
      todo.push({ host: this.deps.hosts.get(h.host), from: from < 0 ? steps.length : from });
    }
    // Claim the run (one resumer at a time).
    const claimed = this.deps.db
      .prepare(`UPDATE provision_runs SET status = 'running', owner = ?, attempts = attempts + 1, finished_at = NULL WHERE id = ? AND status != 'running'`)
      .run(this.owner, runId);
    if (claimed.changes !== 1) throw new AirlockError('CONFLICT', `Run ${runId} is being resumed by someone else.`);
    await this.execute(c, runId, 'apply', pb, overrides, todo, concurrency);
    return this.get(runId);
  }

  /** The common loop: a bounded pool of hosts, steps in order per host. */
  private async execute(
    c: Caller,
    runId: string,
    kind: 'plan' | 'apply',
    pb: Playbook,
    overrides: Record<string, Record<string, unknown>>,
    todo: Array<{ host: Host; from: number }>,
    concurrency?: number,
  ) {
    setMaxListeners(0, c.signal);
    const limit = Math.max(1, Math.min(concurrency ?? this.deps.concurrency, todo.length || 1));
    let next = 0;
    const worker = async () => {
      while (next < todo.length) {
        const t = todo[next++]!;
        try {
          await this.runHost(c, runId, kind, pb, overrides, t.host, t.from);
        } catch (e) {
          // runHost records its own failures; anything reaching here is a bug or the audit trail refusing.
          this.finishHost(runId, t.host.name, 'failed', e instanceof Error ? e.message : String(e), c);
        }
      }
    };
    try {
      await Promise.all(Array.from({ length: limit }, worker));
    } finally {
      const hosts = this.deps.db.prepare(`SELECT status FROM provision_hosts WHERE run_id = ?`).all(runId) as Array<{ status: string }>;
      const status: Run['status'] = hosts.every((h) => h.status === 'succeeded')
        ? 'succeeded'
        : c.signal.aborted && hosts.some((h) => h.status === 'cancelled')
          ? 'cancelled'
          : 'failed';
      this.deps.db.prepare(`UPDATE provision_runs SET status = ?, finished_at = ?, owner = NULL WHERE id = ?`).run(status, this.nowIso(), runId);
    }
  }

  private async runHost(c: Caller, runId: string, kind: 'plan' | 'apply', pb: Playbook, overrides: Record<string, Record<string, unknown>>, host: Host, from: number) {
    const db = this.deps.db;
    db.prepare(`UPDATE provision_hosts SET status = 'running', message = NULL, started_at = COALESCE(started_at, ?), finished_at = NULL WHERE run_id = ? AND host = ?`).run(
      this.nowIso(),
      runId,
      host.name,
    );
    this.emitHost(c, runId, host.name);
    if (c.signal.aborted) return this.finishHost(runId, host.name, 'cancelled', 'cancelled before it started', c);

    const extras: SshConnection[] = [];
    let conn: SshConnection;
    try {
      conn = await this.deps.hosts.lease(host.name, c.auth, c.signal);
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      const first = from < pb.steps.length ? from : null;
      if (first !== null) this.stepFinal(runId, host.name, first, c.signal.aborted ? 'cancelled' : 'failed', { message: msg, errorCode: (e as AirlockError).code ?? 'SSH_ERROR' }, c);
      return this.finishHost(runId, host.name, c.signal.aborted ? 'cancelled' : 'failed', msg, c);
    }
    const remote = new Remote(conn, host.user === 'root', c.signal, this.deps.timeoutMs);
    let failed: { status: 'failed' | 'cancelled'; message: string } | null = null;
    try {
      for (let idx = from; idx < pb.steps.length; idx++) {
        const decl = pb.steps[idx]!;
        const impl = STEPS.get(decl.type)!;
        const params = stepParams(pb, decl.id, overrides);
        const rec = new StepLog(this, c, runId, host.name, idx);
        const ctx = this.context(c, host, remote, { log: (t) => rec.log(t), transfer: (p) => rec.transfer(p), extras });
        const started = Date.now();
        rec.begin();
        try {
          if (c.signal.aborted) throw new AirlockError('CANCELLED', 'Cancelled.');
          const found = await impl.check(ctx, params);
          rec.changes(found.changes);
          if (kind === 'plan') {
            const st: StepStatus = found.state === 'ok' ? 'ok' : found.state === 'change' ? 'would-change' : 'failed';
            rec.finish(st, { message: found.message ?? null, durationMs: Date.now() - started });
            this.auditStep(c, runId, host.name, decl.id, decl.type, 'outcome', st === 'failed' ? 'error' : 'ok', { status: st, changes: found.changes.length });
            continue; // a plan shows every step, even after one that would fail
          }
          if (found.state === 'fail') throw new StepFailure(found.message ?? 'the check failed', null, '', 'CHECK_FAILED');
          if (found.state === 'change') {
            // Fail-closed: the change is on record before it is made.
            this.auditStep(c, runId, host.name, decl.id, decl.type, 'request', 'pending', { changes: found.changes.map((x) => `${x.kind}:${x.target}`).slice(0, 50) });
            rec.phase('apply');
            await impl.apply(ctx, params, found);
          }
          rec.phase('verify');
          const v = await impl.verify(ctx, params);
          rec.facts(v.facts);
          if (!v.ok) throw new StepFailure(v.message ?? 'verify failed', null, '', 'VERIFY_FAILED');
          const st: StepStatus = found.state === 'change' ? 'changed' : 'ok';
          rec.finish(st, { message: v.message ?? null, durationMs: Date.now() - started });
          this.auditStep(c, runId, host.name, decl.id, decl.type, 'outcome', 'ok', { status: st, durationMs: Date.now() - started });
        } catch (e) {
          const aborted = c.signal.aborted;
          const info = failureInfo(e);
          if (info.output) rec.log(info.output);
          rec.finish(aborted ? 'cancelled' : 'failed', { message: info.message, errorCode: aborted ? 'CANCELLED' : info.code, exitCode: info.exitCode, durationMs: Date.now() - started });
          this.auditStep(c, runId, host.name, decl.id, decl.type, 'outcome', 'error', { status: aborted ? 'cancelled' : 'failed', message: info.message.slice(0, 500) }, aborted ? 'CANCELLED' : info.code);
          if (e instanceof AirlockError && e.code === 'AUDIT_UNAVAILABLE') throw e;
          // A plan shows every step: a check that could not run is reported and the next one is tried,
          // unless the run was cancelled or the connection is gone.
          if (kind === 'plan' && !aborted && !conn.closed) continue;
          failed = { status: aborted ? 'cancelled' : 'failed', message: `${decl.id}: ${info.message}` };
          break;
        }
      }
    } finally {
      for (const x of extras) x.close();
    }
    if (failed) {
      // Later steps stay 'pending': they never ran (a resume starts at the failed one).
      conn.close();
      return this.finishHost(runId, host.name, failed.status, failed.message, c);
    }
    if (kind === 'plan') {
      conn.close();
      const steps = this.steps(runId, host.name);
      const bad = steps.filter((s) => s.status === 'failed');
      return this.finishHost(runId, host.name, bad.length ? 'failed' : 'succeeded', bad.length ? `${bad.map((s) => s.stepId).join(', ')}: check failed` : null, c);
    }
    let attId: string;
    try {
      attId = this.attest(c, runId, pb, host, conn.fingerprint);
    } finally {
      conn.close();
    }
    this.deps.db.prepare(`UPDATE provision_hosts SET attestation_id = ? WHERE run_id = ? AND host = ?`).run(attId, runId, host.name);
    this.finishHost(runId, host.name, 'succeeded', null, c);
  }

  /** Sign the as-built attestation from what every step's verify proved in this run. */
  private attest(c: Caller, runId: string, pb: Playbook, host: Host, fingerprint: string): string {
    const steps = this.steps(runId, host.name);
    const rows = this.deps.db.prepare(`SELECT step_id, type, facts FROM provision_steps WHERE run_id = ? AND host = ? ORDER BY idx`).all(runId, host.name) as Array<{
      step_id: string;
      type: string;
      facts: string | null;
    }>;
    if (steps.some((s) => !DONE.has(s.status))) throw new AirlockError('INTERNAL', 'Attestation requested before every step succeeded.');
    const id = `att-${crypto.randomBytes(8).toString('hex')}`;
    const signed = this.deps.attestations.create(
      {
        format: 'airlock.attestation/v1',
        id,
        host: { name: host.name, address: host.address, port: host.port, hostKey: { fingerprint, type: host.keyType } },
        playbook: { name: pb.name, version: pb.version, digest: playbookDigest(pb) },
        run: runId,
        operator: c.actor,
        createdAt: this.nowIso(),
        facts: Object.fromEntries(rows.map((r) => [r.step_id, { type: r.type, facts: r.facts === null ? null : JSON.parse(r.facts) }])),
      },
      c.vaultKey,
    );
    this.auditStep(c, runId, host.name, 'attestation', 'attestation', 'outcome', 'ok', { attestation: id, keyFingerprint: signed.signature.keyFingerprint });
    return id;
  }

  /**
   * Drift: for each host, run the verify of every step of the playbook its last attestation came
   * from (read-only), and compare what is proven now with what was attested.
   */
  async drift(c: Caller, selector: string[]) {
    const hosts = this.resolveHosts(selector);
    const out = [];
    for (const host of hosts) {
      const att = this.deps.attestations.latest(host.name);
      if (!att) {
        out.push({ host: host.name, attestationId: null, drifted: false, items: [], error: 'no attestation yet: apply a playbook first' });
        continue;
      }
      const run = this.row(att.attestation.run);
      const pb = JSON.parse(run.playbook_body) as Playbook;
      const overrides = JSON.parse(run.params) as Record<string, Record<string, unknown>>;
      let conn: SshConnection | null = null;
      try {
        conn = await this.deps.hosts.lease(host.name, c.auth, c.signal);
        const remote = new Remote(conn, host.user === 'root', c.signal, this.deps.timeoutMs);
        const items: Array<{ stepId: string; path: string; attested: unknown; now: unknown }> = [];
        if (conn.fingerprint !== att.attestation.host.hostKey.fingerprint) {
          items.push({ stepId: 'host', path: 'hostKey.fingerprint', attested: att.attestation.host.hostKey.fingerprint, now: conn.fingerprint });
        }
        // Drift only reads: no log, no transfers, no extra connections.
        const ctx = this.context(c, host, remote, { log: () => {}, transfer: () => {}, extras: null });
        for (const decl of pb.steps) {
          const impl = STEPS.get(decl.type)!;
          let now: unknown;
          try {
            now = (await impl.verify(ctx, stepParams(pb, decl.id, overrides))).facts;
          } catch (e) {
            now = { error: failureInfo(e).message };
          }
          const was = att.attestation.facts[decl.id]?.facts ?? null;
          for (const d of diffJson(was, now, '')) items.push({ stepId: decl.id, ...d });
        }
        out.push({ host: host.name, attestationId: att.attestation.id, drifted: items.length > 0, items, error: null });
        this.auditStep(c, att.attestation.run, host.name, 'drift', 'drift', 'outcome', 'ok', { attestation: att.attestation.id, drifted: items.length });
      } catch (e) {
        out.push({ host: host.name, attestationId: att.attestation.id, drifted: false, items: [], error: failureInfo(e).message });
      } finally {
        conn?.close();
      }
    }
    return out;
  }

  /** Remove Airlock's egress table from a host (the two-person rule guards the channel). */
  async disableEgress(c: Caller, name: string): Promise<{ host: string; removed: boolean }> {
    const host = this.resolveHosts([name])[0]!;
    const conn = await this.deps.hosts.lease(host.name, c.auth, c.signal);
    try {
      const remote = new Remote(conn, host.user === 'root', c.signal, this.deps.timeoutMs);
      const r = await remote.must(
        `if nft list table inet ${EGRESS_TABLE} >/dev/null 2>&1; then nft delete table inet ${EGRESS_TABLE} && echo removed; fi; rm -f /etc/airlock/egress.nft /var/lib/airlock/egress/applied.sha256`,
        'removing the egress lockdown',
      );
      return { host: host.name, removed: r.stdout.includes('removed') };
    } finally {
      conn.close();
    }
  }

  /** What a step sees of its host. `extras` collects extra connections for the caller to close (null: none allowed). */
  private context(
    c: Caller,
    host: Host,
    remote: Remote,
    io: { log: StepContext['log']; transfer: StepContext['transfer']; extras: SshConnection[] | null },
  ): StepContext {
    return {
      host: { name: host.name, address: host.address, port: host.port, user: host.user, fingerprint: host.fingerprint! },
      remote,
      store: this.deps.store,
      signal: c.signal,
      timeoutMs: this.deps.timeoutMs,
      log: io.log,
      transfer: io.transfer,
      extraConnections: async (n) => {
        const out: SshConnection[] = [];
        for (let i = 0; i < n && io.extras; i++) {
          const x = await this.deps.hosts.open(host.name, c.auth, c.signal);
          io.extras.push(x);
          out.push(x);
        }
        return out;
      },
      freshConnection: (timeoutMs) => this.deps.hosts.open(host.name, c.auth, c.signal, timeoutMs),
    };
  }

  // ---- records ----

  row(runId: string): RunRow {
    const r = this.deps.db.prepare('SELECT * FROM provision_runs WHERE id = ?').get(runId) as RunRow | undefined;
    if (!r) throw new AirlockError('NOT_FOUND', `No run ${runId}.`);
    return r;
  }

  steps(runId: string, host: string): StepRecord[] {
    return (this.deps.db.prepare('SELECT * FROM provision_steps WHERE run_id = ? AND host = ? ORDER BY idx').all(runId, host) as StepRow[]).map(toStep);
  }

  step(runId: string, host: string, idx: number): StepRecord {
    return toStep(this.deps.db.prepare('SELECT * FROM provision_steps WHERE run_id = ? AND host = ? AND idx = ?').get(runId, host, idx) as StepRow);
  }

  get(runId: string): Run {
    this.sweep();
    const r = this.row(runId);
    const hosts = this.deps.db.prepare('SELECT * FROM provision_hosts WHERE run_id = ? ORDER BY host').all(runId) as Array<{
      host: string;
      status: HostRun['status'];
      message: string | null;
      started_at: string | null;
      finished_at: string | null;
      attestation_id: string | null;
    }>;
    return {
      ...runFields(r),
      hosts: hosts.map((h) => ({
        host: h.host,
        status: h.status,
        message: h.message,
        startedAt: h.started_at,
        finishedAt: h.finished_at,
        attestationId: h.attestation_id,
        steps: this.steps(runId, h.host),
      })),
    };
  }

  list(limit: number) {
    this.sweep();
    const rows = this.deps.db
      .prepare(
        `SELECT r.*, COUNT(h.host) AS host_count, COALESCE(SUM(h.status IN ('failed', 'cancelled', 'interrupted')), 0) AS failed_hosts
         FROM provision_runs r LEFT JOIN provision_hosts h ON h.run_id = r.id
         GROUP BY r.id ORDER BY r.started_at DESC, r.rowid DESC LIMIT ?`,
      )
      .all(limit) as Array<RunRow & { host_count: number; failed_hosts: number }>;
    return rows.map((r) => ({ ...runFields(r), hostCount: r.host_count, failedHosts: r.failed_hosts }));
  }

  // ---- writes used by StepLog ----

  writeStep(runId: string, host: string, idx: number, set: Partial<Record<keyof StepRow, unknown>>) {
    const keys = Object.keys(set);
    if (keys.length === 0) return;
    this.deps.db
      .prepare(`UPDATE provision_steps SET ${keys.map((k) => `${k} = ?`).join(', ')} WHERE run_id = ? AND host = ? AND idx = ?`)
      .run(...keys.map((k) => set[k as keyof StepRow] as never), runId, host, idx);
  }

  private stepFinal(runId: string, host: string, idx: number, status: StepStatus, info: { message: string; errorCode: string }, c: Caller) {
    const now = this.nowIso();
    this.writeStep(runId, host, idx, { status, message: info.message, error_code: info.errorCode, started_at: now, finished_at: now, duration_ms: 0 });
    this.emitStep(c, runId, host, idx, null);
  }

  private finishHost(runId: string, host: string, status: HostRun['status'], message: string | null, c: Caller) {
    this.deps.db.prepare(`UPDATE provision_hosts SET status = ?, message = ?, finished_at = ? WHERE run_id = ? AND host = ?`).run(status, message, this.nowIso(), runId, host);
    this.emitHost(c, runId, host);
  }

  emitStep(c: Caller, runId: string, host: string, idx: number, output: string | null) {
    const hs = this.deps.db.prepare('SELECT status FROM provision_hosts WHERE run_id = ? AND host = ?').get(runId, host) as { status: HostRun['status'] };
    safeEmit(c, { runId, host, step: this.step(runId, host, idx), hostStatus: hs.status, output });
  }

  private emitHost(c: Caller, runId: string, host: string) {
    const hs = this.deps.db.prepare('SELECT status FROM provision_hosts WHERE run_id = ? AND host = ?').get(runId, host) as { status: HostRun['status'] };
    safeEmit(c, { runId, host, step: null, hostStatus: hs.status, output: null });
  }

  private auditStep(
    c: Caller,
    runId: string,
    host: string,
    stepId: string,
    type: string,
    phase: AuditInput['phase'],
    outcome: AuditInput['outcome'],
    detail: Record<string, unknown>,
    errorCode: string | null = null,
  ) {
    this.deps.audit.append({
      actor: c.actor,
      principal: c.principal ?? null,
      roles: c.roles,
      session: c.sessionRef,
      shell: c.shell,
      channel: 'provision:step',
      phase,
      target: `${host}/${stepId}`,
      params: { run: runId, host, step: stepId, type, ...detail },
      outcome,
      errorCode,
    });
  }
}

function safeEmit(c: Caller, payload: unknown) {
  try {
    c.emit('provision:progress', payload);
  } catch {
    // a client that went away does not stop the run
  }
}

/** One step's live record: phase changes are committed at once; output and transfer progress are batched. */
class StepLog {
  private out = '';
  private pending = '';
  private timer: NodeJS.Timeout | null = null;
  private xfer: { sent: number; done: number; total: number } | null = null;
  private startedAt = '';

  constructor(
    private readonly p: Provisioner,
    private readonly c: Caller,
    private readonly runId: string,
    private readonly host: string,
    private readonly idx: number,
  ) {
    const prev = p.step(runId, host, idx);
    // A resumed step keeps what it printed before, marked.
    this.out = prev.output ? `${prev.output}\n--- resumed: re-checking ---\n` : '';
  }

  begin() {
    this.startedAt = new Date().toISOString();
    this.p.writeStep(this.runId, this.host, this.idx, {
      status: 'running',
      phase: 'check',
      started_at: this.startedAt,
      finished_at: null,
      duration_ms: null,
      message: null,
      error_code: null,
      exit_code: null,
      output: this.out,
    });
    this.p.emitStep(this.c, this.runId, this.host, this.idx, null);
  }

  phase(phase: 'apply' | 'verify') {
    this.flush();
    this.p.writeStep(this.runId, this.host, this.idx, { phase });
    this.p.emitStep(this.c, this.runId, this.host, this.idx, null);
  }

  changes(ch: Change[]) {
    this.p.writeStep(this.runId, this.host, this.idx, { changes: JSON.stringify(ch) });
  }

  facts(f: unknown) {
    this.p.writeStep(this.runId, this.host, this.idx, { facts: JSON.stringify(f ?? null) });
  }

  log(text: string) {
    const clean = sanitizeHostLines(text, OUTPUT_CAP);
    if (!clean) return;
    const add = clean.endsWith('\n') ? clean : `${clean}\n`;
    this.out = (this.out + add).slice(-OUTPUT_CAP);
    this.pending += add;
    this.schedule();
  }

  transfer(x: { sent: number; done: number; total: number }) {
    this.xfer = x;
    this.schedule();
  }

  private schedule() {
    if (!this.timer) this.timer = setTimeout(() => this.flush(), FLUSH_MS);
  }

  private flush() {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (!this.pending && !this.xfer) return;
    this.p.writeStep(this.runId, this.host, this.idx, { output: this.out, ...(this.xfer ? { transfer: JSON.stringify(this.xfer) } : {}) });
    const chunk = this.pending || null;
    this.pending = '';
    this.p.emitStep(this.c, this.runId, this.host, this.idx, chunk);
  }

  finish(status: StepStatus, info: { message?: string | null; errorCode?: string | null; exitCode?: number | null; durationMs: number }) {
    this.flush();
    this.p.writeStep(this.runId, this.host, this.idx, {
      status,
      message: info.message ? sanitizeHostLines(info.message, 4000) : null,
      error_code: info.errorCode ?? null,
      exit_code: info.exitCode ?? null,
      finished_at: new Date().toISOString(),
      duration_ms: info.durationMs,
      output: this.out,
    });
    this.p.emitStep(this.c, this.runId, this.host, this.idx, null);
  }
}

function failureInfo(e: unknown): { message: string; code: string; exitCode: number | null; output: string } {
  if (e instanceof StepFailure) return { message: e.message, code: e.code, exitCode: e.exitCode, output: e.output };
  if (e instanceof AirlockError) return { message: e.message, code: e.code, exitCode: null, output: '' };
  const err = e as NodeJS.ErrnoException & { code?: unknown };
  return { message: err?.message ?? String(e), code: typeof err?.code === 'string' ? err.code : 'STEP_FAILED', exitCode: null, output: '' };
}

/** A run's own fields, as the contract names them. */
function runFields(r: RunRow): Omit<Run, 'hosts'> {
  return {
    id: r.id,
    kind: r.kind,
    playbook: r.playbook,
    playbookVersion: r.playbook_version,
    playbookDigest: r.playbook_digest,
    actor: r.actor,
    status: r.status,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    attempts: r.attempts,
  };
}

function toStep(r: StepRow): StepRecord {
  return {
    idx: r.idx,
    stepId: r.step_id,
    type: r.type,
    title: r.title,
    status: r.status,
    phase: r.phase,
    changes: JSON.parse(r.changes) as Change[],
    output: r.output,
    exitCode: r.exit_code,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    durationMs: r.duration_ms,
    message: r.message,
    errorCode: r.error_code,
    transfer: r.transfer ? (JSON.parse(r.transfer) as StepRecord['transfer']) : null,
  };
}

/** Paths where two JSON values differ (objects by key, arrays by index). */
export function diffJson(a: unknown, b: unknown, path: string): Array<{ path: string; attested: unknown; now: unknown }> {
  if (a === b) return [];
  const isObj = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null;
  if (Array.isArray(a) && Array.isArray(b)) {
    const out = [];
    for (let i = 0; i < Math.max(a.length, b.length); i++) out.push(...diffJson(a[i], b[i], `${path}[${i}]`));
    return out;
  }
  if (isObj(a) && isObj(b) && !Array.isArray(a) && !Array.isArray(b)) {
    const out = [];
    for (const k of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()) out.push(...diffJson(a[k], b[k], path ? `${path}.${k}` : k));
    return out;
  }
  return [{ path: path || '(all)', attested: a ?? null, now: b ?? null }];
}
