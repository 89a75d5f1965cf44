import type { Host } from '../../../shared/contract/hosts';
import type { ModelsRekey, ModelsRekeyStepNames } from '../../../shared/contract/keys';
import { AirlockError } from '../../../shared/domain/errors';
import type { Db } from '../db/db';
import { JobJournal, type JobTables, type StepAt, type TargetStatus } from '../jobs/journal';
import { runJob } from '../jobs/run';
import type { HostsService } from '../hosts/service';
import type { SshAuth, SshConnection } from '../ssh/connection';
import { sanitizeHostText } from '../ssh/sanitize';
import { fscryptKeyIdentifier, type HostExec } from './fscrypt';
import { rekeyStep, type RekeyInput, type RekeyStep, type RekeyStepResult } from './fscrypt-rekey';
import { DEFAULT_MODELS_DIR } from './models-handlers';
import { inventoryModels } from './models-rekey-inventory';
import type { KeyService } from './service';

/**
 * Re-keying GPU hosts' models directories as a console operation on the crash-safe job journal
 * (jobs/journal.ts), so that no crash, cut link or kill loses a key or a model file
 * (docs/keys-fscrypt.md "Re-keying from the console").
 *
 * Each host goes through seven steps, each recorded before it starts and after it ends:
 *   stage   — a new 64-byte `models` data key for the host (wrapped by the newest `models` KEK
 *             version) and its id on the host's journal row, in ONE transaction, before anything
 *             is sent to the host: the new key exists durably before any copy depends on it;
 *   prepare, copy, verify, swap, cleanup — the five idempotent host steps of fscrypt-rekey.ts
 *             (`prepare` also lists the old directory's SHA-256s, checked against the model
 *             manifests, for `verify`);
 *   promote — one transaction: `models_keys` names the new key, the old data key is deleted.
 * The old key stays in the database (and `models_keys` names it) until promote, after `cleanup`
 * removed it from the host; the new key is in the database before `prepare`. So at no moment is
 * the only copy of a key somewhere a crash can lose, and fscrypt-rekey.ts keeps the same promise
 * for the model files.
 *
 * Hosts are independent (no barrier, unlike the SSH identity): one that is unreachable or fails
 * stays pending — before `swap` its directory is still the old one under the old key, readable —
 * and a resume carries it on from its first step not done. A crash leaves the job running with a
 * dead owner: the next read sweeps it to interrupted and a resume claims it. Every step is safe to
 * repeat whatever the host did before the crash (the host steps say so of themselves; stage and
 * promote check what is already recorded).
 */

export const MODELS_REKEY_TABLES: JobTables = { jobs: 'models_rekeys', targets: 'models_rekey_hosts', steps: 'models_rekey_steps', jobRef: 'rekey_id', targetRef: 'host' };
export const MODELS_REKEY_STEPS: typeof ModelsRekeyStepNames = ['stage', 'prepare', 'copy', 'verify', 'swap', 'cleanup', 'promote'];
type StepName = (typeof MODELS_REKEY_STEPS)[number];
const SWAP_IDX = MODELS_REKEY_STEPS.indexOf('swap');

/** Hosts re-keyed at once by default (each copies its own disk; the console only waits). */
export const DEFAULT_REKEY_CONCURRENCY = 4;
/** Ids tried for a host's new key (`models.<host>.<n>`) before giving up. */
const MAX_KEY_GENERATIONS = 1000;

/** The host side, injectable so the state machine can be tested where no fscrypt kernel is (unit tests). */
export interface RekeyHostOps {
  step(conn: HostExec, step: RekeyStep, input: RekeyInput, opts: { sudo: boolean; signal: AbortSignal; timeoutMs?: number }): Promise<RekeyStepResult>;
  inventory(conn: HostExec, dir: string, opts: { sudo: boolean; signal: AbortSignal; timeoutMs?: number }): Promise<Record<string, string>>;
}
export const REAL_HOST_OPS: RekeyHostOps = {
  step: (conn, step, input, opts) => rekeyStep(conn, step, input, opts),
  inventory: (conn, dir, opts) => inventoryModels(conn, dir, opts),
};

export interface ModelsRekeyDeps {
  db: Db;
  now: () => Date;
  random: (n: number) => Buffer;
  keys: Pick<KeyService, 'putDataKey' | 'openDataKey' | 'deleteDataKey' | 'status'>;
  hosts: Pick<HostsService, 'get' | 'list' | 'lease'>;
  hostOps?: RekeyHostOps;
  /** Per host command (each step's own default when omitted). */
  timeoutMs?: number;
  /** Called at every step boundary: the test-only kill hook (ssh-rotation.ts `killHookFromEnv`). */
  boundary?: ((label: string) => void) | undefined;
  /** The journal's owner id (tests); this process by default. */
  owner?: string;
}

interface HostRow {
  rekey_id: string;
  host: string;
  status: TargetStatus;
  message: string | null;
  dir: string | null;
  old_key_id: string | null;
  old_identifier: string | null;
  new_key_id: string | null;
  new_identifier: string | null;
  expected: string | null;
  promoted_at: string | null;
}

interface ModelsKeyRow {
  host: string;
  key_id: string;
  identifier: string;
  dir: string;
  protected_at: string | null;
}

/** The step failed: the host is pending, the message says why. */
class StepFailed extends Error {}

/** KEY_UNAVAILABLE unless the hierarchy exists and is unsealed (every step but promote opens keys). */
function requireUnsealed(keys: ModelsRekeyDeps['keys'], what: string): void {
  const s = keys.status();
  if (!s.initialised) throw new AirlockError('KEY_UNAVAILABLE', `${what} needs the key hierarchy, and there is none yet: run the genesis ceremony first (keys genesis).`);
  if (s.sealed) throw new AirlockError('KEY_UNAVAILABLE', `${what} needs the key hierarchy unsealed, and it is sealed: the officers must unseal it first (an unseal ceremony, or --share FILE with this command on the CLI).`);
}

export class ModelsRekeys {
  readonly journal: JobJournal;
  private readonly ops: RekeyHostOps;

  constructor(private readonly d: ModelsRekeyDeps) {
    this.ops = d.hostOps ?? REAL_HOST_OPS;
    this.journal = new JobJournal({
      db: d.db,
      now: d.now,
      tables: MODELS_REKEY_TABLES,
      doneSteps: new Set(['done']),
      interruptedMessage: 'Airlock stopped during this step; resume the re-key to finish it.',
      ...(d.owner ? { owner: d.owner } : {}),
    });
  }

  /** Re-keys whose console died are interrupted (at start-up and before reads). */
  sweep(): string[] {
    return this.journal.sweep();
  }

  /**
   * Starts a re-key of the selected hosts (names, `label:L`, `all` = every protected host) and runs
   * it as far as it goes. Each must be protected (keys:protectModels) and in no unfinished re-key.
   */
  async start(actor: string, selector: readonly string[], auth: SshAuth, signal: AbortSignal, opts: { concurrency?: number } = {}): Promise<ModelsRekey> {
    requireUnsealed(this.d.keys, 'Re-keying models directories');
    this.sweep();
    const chosen = this.resolve(selector);
    const busy = this.d.db
      .prepare(`SELECT rekey_id, host FROM models_rekey_hosts WHERE status NOT IN ('succeeded', 'cancelled') AND host IN (${chosen.map(() => '?').join(',')}) ORDER BY host`)
      .all(...chosen.map((c) => c.host)) as Array<{ rekey_id: string; host: string }>;
    if (busy.length) {
      const b = busy[0]!;
      throw new AirlockError('CONFLICT', `${b.host} is in models re-key ${b.rekey_id}, which is not finished; resume it first (airlock keys resume-models-rekey ${b.rekey_id}).`);
    }
    const concurrency = opts.concurrency ?? DEFAULT_REKEY_CONCURRENCY;
    const id = `mrk-${this.d.random(8).toString('hex')}`;
    this.d.db.transaction(() => {
      this.journal.create(
        id,
        { actor, concurrency },
        chosen.map((c) => ({ target: c.host, steps: MODELS_REKEY_STEPS.map((step) => ({ step })) })),
      );
      for (const c of chosen) {
        this.d.db.prepare('UPDATE models_rekey_hosts SET dir = ?, old_key_id = ?, old_identifier = ? WHERE rekey_id = ? AND host = ?').run(c.dir, c.key_id, c.identifier, id, c.host);
      }
    })();
    this.boundary('created');
    await this.run(id, auth, signal);
    return this.get(id);
  }

  /** Resumes a re-key that is not running, each host from its first step not done. */
  async resume(id: string, auth: SshAuth, signal: AbortSignal): Promise<ModelsRekey> {
    this.sweep();
    const j = this.journal.job(id);
    if (!j) throw new AirlockError('NOT_FOUND', `No models re-key ${id}.`);
    if (j.status === 'succeeded') return this.get(id);
    requireUnsealed(this.d.keys, `Resuming models re-key ${id}`);
    if (!this.journal.claim(id)) throw new AirlockError('CONFLICT', `Models re-key ${id} is running in another console process; wait for it to finish.`);
    await this.run(id, auth, signal);
    return this.get(id);
  }

  /** A re-key with each host's steps, and which hosts are pending. */
  get(id: string): ModelsRekey {
    this.sweep();
    const r = this.d.db.prepare('SELECT * FROM models_rekeys WHERE id = ?').get(id) as
      | { id: string; actor: string; concurrency: number; status: ModelsRekey['status']; started_at: string; finished_at: string | null; attempts: number }
      | undefined;
    if (!r) throw new AirlockError('NOT_FOUND', `No models re-key ${id}.`);
    const hosts = (this.d.db.prepare('SELECT * FROM models_rekey_hosts WHERE rekey_id = ? ORDER BY host').all(id) as HostRow[]).map((h) => {
      const steps = (this.d.db.prepare('SELECT * FROM models_rekey_steps WHERE rekey_id = ? AND host = ? ORDER BY idx').all(id, h.host) as Array<{
        step: StepName;
        status: ModelsRekey['hosts'][number]['steps'][number]['status'];
        message: string | null;
        started_at: string | null;
        finished_at: string | null;
      }>).map((s) => ({ step: s.step, status: s.status, message: s.message, startedAt: s.started_at, finishedAt: s.finished_at }));
      return {
        host: h.host,
        status: h.status,
        next: steps.find((s) => s.status !== 'done')?.step ?? null,
        pending: h.status !== 'succeeded' && h.status !== 'cancelled',
        message: h.message,
        dir: h.dir,
        oldKeyId: h.old_key_id,
        newKeyId: h.new_key_id,
        current: steps[SWAP_IDX]?.status === 'done' ? ('new' as const) : ('old' as const),
        steps,
      };
    });
    return {
      id: r.id,
      status: r.status,
      actor: r.actor,
      concurrency: r.concurrency,
      startedAt: r.started_at,
      finishedAt: r.finished_at,
      attempts: r.attempts,
      pendingHosts: hosts.filter((h) => h.pending).map((h) => h.host),
      hosts,
    };
  }

  /**
   * The `models` KEK versions that wrap a key a host pending in a re-key still needs (its old key,
   * its staged new one): what KeyService.setMinDecryptionVersion('models', v, { stillNeeded })
   * must not be raised past.
   */
  stillNeeded(): number[] {
    const rows = this.d.db
      .prepare(
        `SELECT DISTINCT dk.version AS v FROM models_rekey_hosts h JOIN data_keys dk ON dk.domain = 'models' AND (dk.id = h.old_key_id OR dk.id = h.new_key_id)
         WHERE h.status NOT IN ('succeeded', 'cancelled') ORDER BY v`,
      )
      .all() as Array<{ v: number }>;
    return rows.map((r) => r.v);
  }

  /** For a host in an unfinished re-key, the staged key (the scan's unlock needs it once the host is swapped). */
  stagedKey(host: string): { keyId: string; identifier: string } | null {
    const r = this.d.db
      .prepare(`SELECT new_key_id, new_identifier FROM models_rekey_hosts WHERE host = ? AND status NOT IN ('succeeded', 'cancelled') AND new_key_id IS NOT NULL ORDER BY rowid DESC LIMIT 1`)
      .get(host) as { new_key_id: string; new_identifier: string } | undefined;
    return r ? { keyId: r.new_key_id, identifier: r.new_identifier } : null;
  }

  private resolve(selector: readonly string[]): ModelsKeyRow[] {
    const all = this.d.hosts.list();
    const picked = new Map<string, Host>();
    for (const s of selector) {
      if (s === 'all') {
        for (const h of all) if (this.modelsKey(h.name)?.protected_at) picked.set(h.name, h);
      } else if (s.startsWith('label:')) {
        const l = all.filter((h) => h.labels.includes(s.slice(6)));
        if (!l.length) throw new AirlockError('NOT_FOUND', `No host carries the label "${s.slice(6)}".`);
        for (const h of l) picked.set(h.name, h);
      } else picked.set(s, this.d.hosts.get(s));
    }
    if (!picked.size) throw new AirlockError('NOT_FOUND', 'No host to re-key: no models directory is protected yet (keys protect-models HOST).');
    return [...picked.keys()].sort().map((name) => {
      const rec = this.modelsKey(name);
      if (!rec?.protected_at) throw new AirlockError('INVALID_INPUT', `${name}'s models directory is not protected by Airlock, so it has no key to replace: protect it first (keys protect-models ${name}).`);
      return rec;
    });
  }

  private modelsKey(host: string): ModelsKeyRow | undefined {
    return this.d.db.prepare('SELECT host, key_id, identifier, dir, protected_at FROM models_keys WHERE host = ?').get(host) as ModelsKeyRow | undefined;
  }

  private hostRow(id: string, host: string): HostRow {
    return this.d.db.prepare('SELECT * FROM models_rekey_hosts WHERE rekey_id = ? AND host = ?').get(id, host) as HostRow;
  }

  private boundary(label: string) {
    this.d.boundary?.(label);
  }

  private nowIso() {
    return this.d.now().toISOString();
  }

  /** The claimed job, its hosts carried on at most `concurrency` at once; settled and released in any case. */
  private async run(id: string, auth: SshAuth, signal: AbortSignal): Promise<void> {
    const row = this.d.db.prepare('SELECT concurrency FROM models_rekeys WHERE id = ?').get(id) as { concurrency: number };
    const todo = this.journal.resumePoints(id).filter((p) => this.hostRow(id, p.target).status !== 'cancelled');
    await runJob(this.journal, id, todo, { resume: (at) => this.carry(id, at, auth, signal) }, { concurrency: row.concurrency, aborted: () => signal.aborted });
  }

  private writeStep(id: string, host: string, idx: number, status: string, message: string | null, at: 'started_at' | 'finished_at') {
    this.d.db.prepare(`UPDATE models_rekey_steps SET status = ?, message = ?, ${at} = ? WHERE rekey_id = ? AND host = ? AND idx = ?`).run(status, message, this.nowIso(), id, host, idx);
  }

  /** One host from `at` to its end, each step recorded before and after; at the first failure the host is pending. */
  private async carry(id: string, at: StepAt, auth: SshAuth, signal: AbortSignal): Promise<void> {
    const host = at.target;
    this.d.db
      .prepare(`UPDATE models_rekey_hosts SET status = 'running', message = NULL, started_at = COALESCE(started_at, ?), finished_at = NULL WHERE rekey_id = ? AND host = ?`)
      .run(this.nowIso(), id, host);
    for (let idx = at.idx; idx < MODELS_REKEY_STEPS.length; idx++) {
      const step = MODELS_REKEY_STEPS[idx]!;
      this.writeStep(id, host, idx, 'running', null, 'started_at');
      this.boundary(`${host}:${step}:started`);
      let message: string;
      try {
        message = await this.act(id, host, step, auth, signal);
      } catch (e) {
        const why = e instanceof StepFailed || e instanceof AirlockError ? sanitizeHostText(e.message, 600) : 'the step failed unexpectedly.';
        this.writeStep(id, host, idx, 'failed', why, 'finished_at');
        const keeps =
          idx < SWAP_IDX
            ? 'The host keeps its old key: its models directory is the old one, unchanged and readable.'
            : idx === SWAP_IDX
              ? 'The host is under its old key, or under the new one if the swap took effect before the failure; Airlock keeps both keys until the re-key is done.'
              : 'The host is already under the new key (the old one stays in Airlock until the re-key is promoted).';
        this.journal.finishTarget(id, host, 'failed', `${step} failed: ${why} ${keeps} Resume the re-key once it is fixed.`);
        return;
      }
      this.boundary(`${host}:${step}:acted`);
      this.writeStep(id, host, idx, 'done', message, 'finished_at');
      this.boundary(`${host}:${step}:recorded`);
    }
    this.journal.finishTarget(id, host, 'succeeded', null);
  }

  private async act(id: string, host: string, step: StepName, auth: SshAuth, signal: AbortSignal): Promise<string> {
    if (step === 'stage') return this.stage(id, host);
    if (step === 'promote') return this.promote(id, host);
    const r = this.hostRow(id, host);
    if (!r.dir || !r.old_key_id || !r.new_key_id) throw new AirlockError('INTERNAL', `The re-key of ${host} has no staged key on record; it cannot go on.`);
    if (step === 'verify' && !r.expected) throw new AirlockError('INTERNAL', `The re-key of ${host} has no file list from prepare; run it again from prepare.`);
    const h = this.d.hosts.get(host);
    const opts = { sudo: h.user !== 'root', signal, ...(this.d.timeoutMs ? { timeoutMs: this.d.timeoutMs } : {}) };
    const oldKey = this.d.keys.openDataKey('models', r.old_key_id);
    let newKey: Buffer | null = null;
    let conn: SshConnection | null = null;
    try {
      newKey = this.d.keys.openDataKey('models', r.new_key_id);
      conn = await this.d.hosts.lease(host, auth, signal);
      const input: RekeyInput = { dir: r.dir, oldKey, newKey, ...(step === 'verify' ? { expected: JSON.parse(r.expected!) as Record<string, string> } : {}) };
      const out = await this.ops.step(conn, step, input, opts);
      if (step === 'swap' && out.where !== 'swapped') throw new StepFailed(`${r.dir} on ${host} does not point at the new directory after the swap.`);
      if (step === 'prepare') {
        // The old directory's files as they are now (the old key is in the kernel again): what verify checks.
        const expected = out.where === 'old' ? await this.ops.inventory(conn, r.dir, opts) : null;
        if (expected) this.d.db.prepare('UPDATE models_rekey_hosts SET expected = ? WHERE rekey_id = ? AND host = ?').run(JSON.stringify(expected), id, host);
        else if (!r.expected) throw new AirlockError('INTERNAL', `${r.dir} on ${host} already points at the new directory, but the re-key has no file list from before; it cannot verify.`);
        return `both keys in the kernel, the new directory ready${expected ? `; ${Object.keys(expected).length} file(s) listed` : ' (already swapped)'}`;
      }
      return describe(out);
    } finally {
      conn?.close();
      oldKey.fill(0);
      newKey?.fill(0);
    }
  }

  /** The new key and its id on the host's row, one transaction; already staged: nothing to do. */
  private stage(id: string, host: string): string {
    return this.d.db.transaction((): string => {
      const r = this.hostRow(id, host);
      const cur = this.modelsKey(host);
      if (!cur || cur.key_id !== r.old_key_id) throw new AirlockError('CONFLICT', `${host}'s models key is no longer ${r.old_key_id ?? 'the one this re-key started from'}; start a new re-key.`);
      if (r.new_key_id) return `new key ${r.new_key_id} already staged`;
      for (let n = 1; n <= MAX_KEY_GENERATIONS; n++) {
        const keyId = `models.${host}.${n}`;
        let version: number;
        try {
          version = this.d.keys.putDataKey('models', keyId, { bytes: 64 }).version;
        } catch (e) {
          if (e instanceof AirlockError && e.code === 'CONFLICT') continue;
          throw e;
        }
        const key = this.d.keys.openDataKey('models', keyId);
        let identifier: string;
        try {
          identifier = fscryptKeyIdentifier(key);
        } finally {
          key.fill(0);
        }
        this.d.db.prepare('UPDATE models_rekey_hosts SET new_key_id = ?, new_identifier = ? WHERE rekey_id = ? AND host = ?').run(keyId, identifier, id, host);
        return `new key ${keyId} staged (models KEK version ${version})`;
      }
      throw new AirlockError('CONFLICT', `Every models key id for ${host} up to models.${host}.${MAX_KEY_GENERATIONS} is taken; delete unused models data keys first.`);
    })();
  }

  /** models_keys names the new key and the old one is deleted, one transaction; already promoted: nothing to do. */
  private promote(id: string, host: string): string {
    return this.d.db.transaction((): string => {
      const r = this.hostRow(id, host);
      const cur = this.modelsKey(host);
      if (cur && cur.key_id === r.new_key_id) return `already promoted: ${r.new_key_id} is the host's key`;
      if (!cur || cur.key_id !== r.old_key_id) throw new AirlockError('INTERNAL', `${host}'s models key is neither the old nor the new key of this re-key; nothing was changed.`);
      this.d.db.prepare('UPDATE models_keys SET key_id = ?, identifier = ? WHERE host = ?').run(r.new_key_id, r.new_identifier, host);
      try {
        this.d.keys.deleteDataKey('models', r.old_key_id!);
      } catch (e) {
        if (!(e instanceof AirlockError && e.code === 'NOT_FOUND')) throw e;
      }
      this.d.db.prepare('UPDATE models_rekey_hosts SET promoted_at = ? WHERE rekey_id = ? AND host = ?').run(this.nowIso(), id, host);
      return `${r.new_key_id} is the host's key; ${r.old_key_id} deleted`;
    })();
  }
}

function describe(o: RekeyStepResult): string {
  switch (o.step) {
    case 'copy':
      return o.where === 'swapped' ? 'already swapped' : `${o.copied ?? 0} file(s) copied, ${o.skipped ?? 0} already there`;
    case 'verify':
      return `${o.files ?? 0} file(s) match their SHA-256`;
    case 'swap':
      return 'the models directory points at the new directory';
    case 'cleanup':
      return `old directory deleted, old key ${o.removed === 'busy' ? 'removed (files still open keep it until closed)' : o.removed === 'absent' ? 'already out of the kernel' : 'removed from the kernel'}`;
    default:
      return o.step;
  }
}
