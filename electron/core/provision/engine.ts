import crypto from 'node:crypto';
import { setMaxListeners } from 'node:events';
import type { EventPayload } from '../../../shared/contract/index';
import type { Host } from '../../../shared/contract/hosts';
import type { HostRun, Playbook, Run, StepRecord, StepStatus } from '../../../shared/contract/provision';
import { AirlockError } from '../../../shared/domain/errors';
import type { AuditInput, AuditTrail } from '../audit/audit';
import type { Db } from '../db/db';
import type { HostsService } from '../hosts/service';
import { JobJournal, type StepAt } from '../jobs/journal';
import { runJob } from '../jobs/run';
import type { SshConnection } from '../ssh/connection';
import type { Attestations } from '../attest/attest';
import type { HostSecretKeys } from '../keys/host-secrets';
import { enforceDeployRules, type DeployedVersion, type DeployRuleDeps } from '../models/deploy-rules';
import type { Caller } from './caller';
import { drift } from './drift';
import { checkOverrides, playbookDigest, stepParams, type Playbooks } from './playbooks';
import { Remote, StepFailure } from './remote';
import { DONE, PROVISION_TABLES, RunRecords, type RunRow, type StepRow } from './runs';
import { failureInfo, StepLog } from './step-log';
import { disableEgress } from './steps/egress';
import { STEPS } from './steps/index';
import type { GatePolicyNow, StepContext } from './steps/types';
import type { OfflineStore } from '../store/store';

export type { Caller } from './caller';

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
  /** The key hierarchy the inference step seals its API key under (StepContext.hostSecrets); optional. */
  hostSecrets?: HostSecretKeys;
  /** The signed gate policy for the inference-gate step (StepContext.gatePolicy), with the caller's vault key. */
  gatePolicy?: (o: { issue: boolean; vaultKey: Buffer; actor: string }) => GatePolicyNow;
  /** What may be deployed where (models/deploy-rules.ts: the catalog's status and classification, enclaves); checked before a plan or apply starts. */
  deployRules?: DeployRuleDeps;
}

/** The step types that put a model version on a host, whose `model`/`version` the deployment rules check. */
const DEPLOYING_STEPS = new Set(['model-weights', 'inference-service']);

/**
 * Plan, apply, resume and drift. A run is a job of the job journal (core/jobs): recorded durably
 * as it goes, every step's status change committed before the next thing happens, output flushed
 * every few hundred ms and at the step's end (step-log.ts), so if Airlock or the host dies the
 * record shows exactly which steps finished. Hosts run in parallel (bounded pool); steps run in
 * order per host; a host stops at its first failure while the others carry on.
 */
export class Provisioner {
  private readonly journal: JobJournal;
  private readonly records: RunRecords;

  constructor(private readonly deps: ProvisionerDeps) {
    this.records = new RunRecords(deps.db);
    this.journal = new JobJournal({
      db: deps.db,
      now: deps.now,
      tables: PROVISION_TABLES,
      doneSteps: DONE,
      interruptedMessage: 'Airlock stopped while this ran; resume re-checks it first',
    });
    this.sweep();
  }

  /** Runs whose process is gone are interrupted: say so in the record (at start-up and before reads). */
  sweep(): void {
    this.journal.sweep();
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
    this.checkDeployments(pb, input.params, hosts);
    const id = `run-${crypto.randomBytes(8).toString('hex')}`;
    this.journal.create(
      id,
      {
        kind,
        playbook: pb.name,
        playbook_version: pb.version,
        playbook_digest: playbookDigest(pb),
        playbook_body: JSON.stringify(pb),
        params: JSON.stringify(input.params),
        actor: c.actor,
      },
      hosts.map((h) => ({ target: h.name, steps: pb.steps.map((s) => ({ step_id: s.id, type: s.type, title: s.title ?? STEPS.get(s.type)!.title })) })),
    );
    await this.execute(c, id, kind, pb, input.params, hosts, hosts.map((h) => ({ job: id, target: h.name, idx: 0, status: 'pending' })), input.concurrency);
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
    const todo = this.journal.resumePoints(runId);
    const hosts = todo.map((t) => this.deps.hosts.get(t.target));
    // A version revoked (or a host moved out of its enclave) since the run began stops its resume too.
    this.checkDeployments(pb, overrides, hosts);
    // Claim the run (one resumer at a time).
    if (!this.journal.claim(runId)) throw new AirlockError('CONFLICT', `Run ${runId} is being resumed by someone else.`);
    await this.execute(c, runId, 'apply', pb, overrides, hosts, todo, concurrency);
    return this.get(runId);
  }

  /** Refuses a run that would deploy a version where the deployment rules forbid it (nothing has started). */
  private checkDeployments(pb: Playbook, overrides: Record<string, Record<string, unknown>>, hosts: Host[]): void {
    if (!this.deps.deployRules) return;
    const deployed: DeployedVersion[] = [];
    for (const s of pb.steps) {
      if (!DEPLOYING_STEPS.has(s.type)) continue;
      const p = stepParams(pb, s.id, overrides) as { model: string; version: string };
      deployed.push({ step: s.id, model: p.model, version: p.version });
    }
    if (deployed.length) enforceDeployRules(this.deps.deployRules, hosts.map((h) => h.name), deployed);
  }

  /** The common loop (the journal's): a bounded pool of hosts, steps in order per host. */
  private async execute(
    c: Caller,
    runId: string,
    kind: 'plan' | 'apply',
    pb: Playbook,
    overrides: Record<string, Record<string, unknown>>,
    hosts: Host[],
    todo: StepAt[],
    concurrency?: number,
  ) {
    setMaxListeners(0, c.signal);
    const byName = new Map(hosts.map((h) => [h.name, h]));
    await runJob(
      this.journal,
      runId,
      todo,
      {
        resume: (at) => this.runHost(c, runId, kind, pb, overrides, byName.get(at.target)!, at.idx),
        // runHost records its own failures; anything reaching here is a bug or the audit trail refusing.
        failed: (at, e) => this.finishHost(runId, at.target, 'failed', e instanceof Error ? e.message : String(e), c),
      },
      { concurrency: concurrency ?? this.deps.concurrency, aborted: () => c.signal.aborted },
    );
  }

  private async runHost(c: Caller, runId: string, kind: 'plan' | 'apply', pb: Playbook, overrides: Record<string, Record<string, unknown>>, host: Host, from: number) {
    this.records.startHost(runId, host.name, this.nowIso());
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
    this.records.setAttestation(runId, host.name, attId);
    this.finishHost(runId, host.name, 'succeeded', null, c);
  }

  /** Sign the as-built attestation from what every step's verify proved in this run. */
  private attest(c: Caller, runId: string, pb: Playbook, host: Host, fingerprint: string): string {
    const steps = this.steps(runId, host.name);
    const rows = this.records.facts(runId, host.name);
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
   * from (read-only), and compare what is proven now with what was attested (drift.ts).
   */
  async drift(c: Caller, selector: string[]) {
    return drift(
      {
        hosts: this.deps.hosts,
        attestations: this.deps.attestations,
        timeoutMs: this.deps.timeoutMs,
        resolveHosts: (s) => this.resolveHosts(s),
        row: (id) => this.row(id),
        context: (cc, host, remote, io) => this.context(cc, host, remote, io),
        auditDrift: (cc, runId, host, detail) => this.auditStep(cc, runId, host, 'drift', 'drift', 'outcome', 'ok', detail),
      },
      c,
      selector,
    );
  }

  /** Remove Airlock's egress table from a host (the two-person rule guards the channel; steps/egress.ts). */
  async disableEgress(c: Caller, name: string): Promise<{ host: string; removed: boolean }> {
    const host = this.resolveHosts([name])[0]!;
    const conn = await this.deps.hosts.lease(host.name, c.auth, c.signal);
    try {
      const remote = new Remote(conn, host.user === 'root', c.signal, this.deps.timeoutMs);
      return { host: host.name, removed: await disableEgress(remote) };
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
      ...(this.deps.hostSecrets ? { hostSecrets: this.deps.hostSecrets } : {}),
      ...(this.deps.gatePolicy ? { gatePolicy: (o: { issue: boolean }) => this.deps.gatePolicy!({ ...o, vaultKey: c.vaultKey, actor: c.actor }) } : {}),
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

  // ---- records (runs.ts) ----

  row(runId: string): RunRow {
    return this.records.row(runId);
  }

  steps(runId: string, host: string): StepRecord[] {
    return this.records.steps(runId, host);
  }

  step(runId: string, host: string, idx: number): StepRecord {
    return this.records.step(runId, host, idx);
  }

  get(runId: string): Run {
    this.sweep();
    return this.records.get(runId);
  }

  list(limit: number) {
    this.sweep();
    return this.records.list(limit);
  }

  // ---- writes used by StepLog ----

  writeStep(runId: string, host: string, idx: number, set: Partial<Record<keyof StepRow, unknown>>) {
    this.records.writeStep(runId, host, idx, set);
  }

  private stepFinal(runId: string, host: string, idx: number, status: StepStatus, info: { message: string; errorCode: string }, c: Caller) {
    const now = this.nowIso();
    this.writeStep(runId, host, idx, { status, message: info.message, error_code: info.errorCode, started_at: now, finished_at: now, duration_ms: 0 });
    this.emitStep(c, runId, host, idx, null);
  }

  private finishHost(runId: string, host: string, status: HostRun['status'], message: string | null, c: Caller) {
    this.journal.finishTarget(runId, host, status, message);
    this.emitHost(c, runId, host);
  }

  emitStep(c: Caller, runId: string, host: string, idx: number, output: string | null) {
    safeEmit(c, { runId, host, step: this.step(runId, host, idx), hostStatus: this.records.hostStatus(runId, host), output });
  }

  private emitHost(c: Caller, runId: string, host: string) {
    safeEmit(c, { runId, host, step: null, hostStatus: this.records.hostStatus(runId, host), output: null });
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

function safeEmit(c: Caller, payload: EventPayload<'provision:progress'>) {
  try {
    c.emit('provision:progress', payload);
  } catch {
    // a client that went away does not stop the run
  }
}
