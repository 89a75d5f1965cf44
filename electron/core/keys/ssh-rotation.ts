import type { SshRotation, SshRotationStepNames } from '../../../shared/contract/keys';
import { AirlockError } from '../../../shared/domain/errors';
import type { Db } from '../db/db';
import { JobJournal, type JobTables, type TargetStatus } from '../jobs/journal';
import type { SshAuth, SshConnection } from '../ssh/connection';
import { fingerprintOfLine } from '../ssh/fingerprint';
import { shCommand, shellQuote } from '../ssh/quote';
import { sanitizeHostText } from '../ssh/sanitize';
import type { KeyRegistry } from './registry';

/**
 * Rotation of Airlock's own SSH identity across the fleet, as a job on the crash-safe journal
 * (jobs/journal.ts), so that no crash, cut link or kill can leave a host that accepts neither the
 * old key nor the new one (docs/keys.md "SSH identity rotation").
 *
 * The new key is staged in the vault beside the current one (registry `mintNextSsh`). Each host
 * then goes through three steps, each recorded before it starts and after it ends:
 *   add    — the new key's line is appended to the login user's ~/.ssh/authorized_keys (logged in
 *            with the old key; idempotent; the file replaced atomically, mode and owner kept);
 *   verify — a NEW connection authenticated with the new key only (no agent) must log in and see
 *            the line;
 *   remove — the old key's line is removed (logged in with the new key; idempotent; refused on the
 *            host itself when the new key's line is not there).
 * `remove` runs on no host until every host has verified the new key (a barrier), so a host that
 * is unreachable keeps every other host accepting the old key too, and Airlock's current key goes
 * on working everywhere meanwhile. Only when every host has removed the old key is the new key
 * promoted: it becomes current and the old key is deleted from the vault, in one transaction.
 * Until then the old key stays, and the hosts not done are the rotation's pending hosts.
 *
 * A crash (the console killed at any point) leaves the rotation running with a dead owner: the
 * next read sweeps it to interrupted, and a resume claims it and starts each host at its first
 * step not done. Every step is safe to repeat, whatever the host did before the crash.
 */

export const SSH_ROTATION_TABLES: JobTables = { jobs: 'ssh_rotations', targets: 'ssh_rotation_hosts', steps: 'ssh_rotation_steps', jobRef: 'rotation_id', targetRef: 'host' };
export const ROTATION_STEPS: typeof SshRotationStepNames = ['add', 'verify', 'remove'];
type StepName = (typeof ROTATION_STEPS)[number];

/** Host output is untrusted: read this much at most, and only the one marker line we expect. */
const MAX_OUTPUT = 4096;
const MARKER = 'AIRLOCK-ROTATE';

/** Where the test-only kill hook is read from: see {@link killHookFromEnv}. */
export const KILL_AT_ENV = 'AIRLOCK_TEST_KILL_AT';

/**
 * TEST-ONLY crash hook. With `AIRLOCK_TEST_KILL_AT=<n>` set, the process kills itself (SIGKILL: no
 * cleanup, no finally) at the n-th step boundary it crosses (0-based, counted in this process):
 * after the rotation is recorded, after each step is recorded as started, after each step's
 * change on the host (not yet recorded), after each step is recorded done, before and after the
 * promotion. The kill test (test/integration/keys-ssh-rotation.test.ts) kills a console at every
 * one of them. Unset (every real run), it returns undefined and nothing is checked.
 */
export function killHookFromEnv(env: NodeJS.ProcessEnv, kill: () => void = () => process.kill(process.pid, 'SIGKILL')): ((label: string) => void) | undefined {
  const raw = env[KILL_AT_ENV];
  if (raw === undefined || raw === '') return undefined;
  const at = Number(raw);
  if (!Number.isSafeInteger(at) || at < 0) throw new Error(`${KILL_AT_ENV} must be a step boundary index (0, 1, 2…), not ${JSON.stringify(raw.slice(0, 20))}`);
  let n = 0;
  return () => {
    if (n++ === at) kill();
  };
}

export interface SshRotationDeps {
  db: Db;
  now: () => Date;
  random: (n: number) => Buffer;
  registry: Pick<KeyRegistry, 'publicKey' | 'unseal' | 'mintNextSsh' | 'unsealNextSsh' | 'promoteNextSsh' | 'hasNextSsh'>;
  /** The enrolled hosts, and fresh connections to them with their pinned host keys (hosts/service.ts). */
  hosts: {
    list(): Array<{ name: string }>;
    open(name: string, auth: SshAuth, signal: AbortSignal): Promise<SshConnection>;
  };
  /** A selector (names, `all`, `label:x`) → enrolled hosts with pinned keys (provision/engine.ts). */
  resolveHosts(selector: string[]): Array<{ name: string }>;
  /** Bounds each command on a host. */
  execTimeoutMs?: number;
  /** Called at every step boundary: the test-only kill hook ({@link killHookFromEnv}). */
  boundary?: ((label: string) => void) | undefined;
  /** The journal's owner id (tests); this process by default. */
  owner?: string;
}

interface RotationRow {
  id: string;
  actor: string;
  old_public: string;
  old_fingerprint: string;
  new_public: string;
  new_fingerprint: string;
  promoted_at: string | null;
  status: SshRotation['status'];
  started_at: string;
  finished_at: string | null;
  attempts: number;
}

/** The step failed on the host: the host is pending, the message says why. */
class StepFailed extends Error {}

export class SshRotations {
  readonly journal: JobJournal;

  constructor(private readonly d: SshRotationDeps) {
    this.journal = new JobJournal({
      db: d.db,
      now: d.now,
      tables: SSH_ROTATION_TABLES,
      doneSteps: new Set(['done']),
      interruptedMessage: 'Airlock stopped during this step; resume the rotation to finish it.',
      ...(d.owner ? { owner: d.owner } : {}),
    });
  }

  /** Rotations whose console died are interrupted (at start-up and before reads). */
  sweep(): string[] {
    return this.journal.sweep();
  }

  /**
   * Starts a rotation on the selected hosts and runs it as far as it goes. The selection must name
   * every enrolled host: Airlock has one SSH identity, and a host left out would lose it when the
   * old key is deleted. Refused while another rotation is unfinished (resume that one).
   */
  async start(vaultKey: Buffer, actor: string, selector: string[], signal: AbortSignal): Promise<SshRotation> {
    this.sweep();
    const open = this.unfinished();
    if (open) throw new AirlockError('CONFLICT', `SSH identity rotation ${open} is not finished; resume it first (airlock keys resume-ssh-rotation ${open}), then start another if you still need one.`);
    const chosen = this.d.resolveHosts(selector).map((h) => h.name);
    const missing = this.d.hosts
      .list()
      .map((h) => h.name)
      .filter((n) => !chosen.includes(n));
    if (missing.length) {
      throw new AirlockError('INVALID_INPUT', `Airlock's SSH identity is the same for every host: rotate it on all of them (not selected: ${missing.join(', ')}), or remove those hosts first.`);
    }
    const oldPublic = this.d.registry.publicKey('ssh.identity');
    const oldFp = oldPublic ? fingerprintOfLine(oldPublic)?.fingerprint : undefined;
    const oldKey = this.d.registry.unseal(vaultKey, 'ssh.identity');
    if (!oldPublic || !oldFp || !oldKey) throw new AirlockError('KEY_UNAVAILABLE', 'Airlock has no SSH identity to rotate; finish first-run setup first.');
    oldKey.fill(0);
    const id = `rot-${this.d.random(8).toString('hex')}`;
    const comment = oldPublic.split(' ').slice(2).join(' ') || 'airlock';
    this.d.db.transaction(() => {
      const next = this.d.registry.mintNextSsh(vaultKey, id, { comment });
      this.journal.create(
        id,
        { actor, old_public: oldPublic, old_fingerprint: oldFp, new_public: next.publicKey, new_fingerprint: next.fingerprint },
        [...chosen].sort().map((h) => ({ target: h, steps: ROTATION_STEPS.map((step) => ({ step })) })),
      );
    })();
    this.boundary('created');
    await this.run(vaultKey, id, signal);
    return this.get(id);
  }

  /** Resumes a rotation that is not running, from each host's first step not done. */
  async resume(vaultKey: Buffer, id: string, signal: AbortSignal): Promise<SshRotation> {
    this.sweep();
    const j = this.journal.job(id);
    if (!j) throw new AirlockError('NOT_FOUND', `No SSH identity rotation ${id}.`);
    if (j.status === 'succeeded') return this.get(id);
    if (!this.journal.claim(id)) throw new AirlockError('CONFLICT', `SSH identity rotation ${id} is running in another console process; wait for it to finish.`);
    await this.run(vaultKey, id, signal);
    return this.get(id);
  }

  /** A rotation with each host's steps, and which hosts are pending. */
  /** The newest `limit` rotations (running ones included: a rotation is recorded before its first step). */
  list(limit: number): SshRotation[] {
    const ids = this.d.db.prepare('SELECT id FROM ssh_rotations ORDER BY started_at DESC, id DESC LIMIT ?').pluck().all(limit) as string[];
    return ids.map((id) => this.get(id));
  }

  get(id: string): SshRotation {
    this.sweep();
    const r = this.row(id);
    const hosts = this.d.db.prepare('SELECT * FROM ssh_rotation_hosts WHERE rotation_id = ? ORDER BY host').all(id) as Array<{
      host: string;
      status: TargetStatus;
      message: string | null;
    }>;
    const out = hosts.map((h) => {
      const steps = (this.d.db.prepare('SELECT * FROM ssh_rotation_steps WHERE rotation_id = ? AND host = ? ORDER BY idx').all(id, h.host) as Array<{
        step: StepName;
        status: SshRotation['hosts'][number]['steps'][number]['status'];
        message: string | null;
        started_at: string | null;
        finished_at: string | null;
      }>).map((s) => ({ step: s.step, status: s.status, message: s.message, startedAt: s.started_at, finishedAt: s.finished_at }));
      const next = steps.find((s) => s.status !== 'done')?.step ?? null;
      return { host: h.host, status: h.status, next, pending: h.status !== 'succeeded' && h.status !== 'cancelled', message: h.message, steps };
    });
    return {
      id: r.id,
      status: r.status,
      actor: r.actor,
      oldFingerprint: r.old_fingerprint,
      newFingerprint: r.new_fingerprint,
      promoted: r.promoted_at !== null,
      promotedAt: r.promoted_at,
      startedAt: r.started_at,
      finishedAt: r.finished_at,
      attempts: r.attempts,
      pendingHosts: out.filter((h) => h.pending).map((h) => h.host),
      hosts: out,
    };
  }

  /** The id of a rotation not promoted and not cancelled (there is at most one), or null. */
  unfinished(): string | null {
    const r = this.d.db.prepare(`SELECT id FROM ssh_rotations WHERE promoted_at IS NULL AND status != 'cancelled' ORDER BY started_at LIMIT 1`).get() as { id: string } | undefined;
    return r?.id ?? null;
  }

  private row(id: string): RotationRow {
    const r = this.d.db.prepare('SELECT * FROM ssh_rotations WHERE id = ?').get(id) as RotationRow | undefined;
    if (!r) throw new AirlockError('NOT_FOUND', `No SSH identity rotation ${id}.`);
    return r;
  }

  private boundary(label: string) {
    this.d.boundary?.(label);
  }

  private nowIso() {
    return this.d.now().toISOString();
  }

  /** The claimed rotation, run as far as it goes; it ends succeeded (promoted) or failed (hosts pending). Released in any case. */
  private async run(vaultKey: Buffer, id: string, signal: AbortSignal): Promise<void> {
    let oldKey: Buffer | null = null;
    let newKey: Buffer | null = null;
    try {
      const r = this.row(id);
      if (r.promoted_at !== null) {
        this.journal.finish(id, 'succeeded');
        return;
      }
      if (this.d.registry.publicKey('ssh.identity') !== r.old_public) {
        throw new AirlockError('INTERNAL', `Airlock's current SSH identity is not the one rotation ${id} retires; the rotation was left as it is.`);
      }
      oldKey = this.d.registry.unseal(vaultKey, 'ssh.identity');
      newKey = this.d.registry.unsealNextSsh(vaultKey, id);
      if (!oldKey || !newKey) throw new AirlockError('KEY_UNAVAILABLE', `Rotation ${id} cannot go on: its keys are not both in the vault.`);
      const keys = { oldKey: oldKey.toString('utf8'), newKey: newKey.toString('utf8'), oldPublic: r.old_public, newPublic: r.new_public };
      this.followInventory(id);

      // Phase 1, every host: add, verify. Phase 2 only if every host verified: remove.
      const todo = () => this.journal.resumePoints(id).filter((p) => this.targetStatus(id, p.target) !== 'cancelled');
      for (const p of todo()) {
        if (p.idx > 1) continue;
        this.startHost(id, p.target);
        await this.steps(id, p.target, p.idx, 1, keys, signal);
      }
      // A failed step is not done, so a host that failed add or verify is still before `remove`.
      const verified = todo().every((p) => p.idx >= 2);
      if (verified) {
        for (const p of todo()) {
          this.startHost(id, p.target);
          if (await this.steps(id, p.target, p.idx, 2, keys, signal)) this.journal.finishTarget(id, p.target, 'succeeded', null);
        }
      } else {
        for (const p of todo()) {
          if (this.targetStatus(id, p.target) === 'running') {
            this.journal.finishTarget(id, p.target, 'failed', 'Waiting for the other hosts to accept the new key; this host still accepts the old one too. Resume the rotation once they are reachable.');
          }
        }
      }
      if (todo().length === 0) {
        this.boundary('promote:start');
        this.d.db.transaction(() => {
          this.d.registry.promoteNextSsh(vaultKey, id, r.new_public);
          this.d.db.prepare('UPDATE ssh_rotations SET promoted_at = ? WHERE id = ?').run(this.nowIso(), id);
        })();
        this.boundary('promote:recorded');
        this.journal.finish(id, 'succeeded');
      } else this.journal.finish(id, 'failed');
    } catch (e) {
      if (this.journal.job(id)?.status === 'running') this.journal.finish(id, 'failed');
      throw e;
    } finally {
      oldKey?.fill(0);
      newKey?.fill(0);
    }
  }

  /**
   * Hosts enrolled since the rotation started join it (they accept the old key and must learn the
   * new one before it is deleted); hosts removed since no longer need a key (cancelled).
   */
  private followInventory(id: string) {
    const enrolled = new Set(this.d.hosts.list().map((h) => h.name));
    const inJob = new Set(this.journal.targets(id));
    this.d.db.transaction(() => {
      for (const h of enrolled) {
        if (inJob.has(h)) continue;
        this.d.db.prepare(`INSERT INTO ssh_rotation_hosts (rotation_id, host, status) VALUES (?, ?, 'pending')`).run(id, h);
        ROTATION_STEPS.forEach((step, idx) => this.d.db.prepare(`INSERT INTO ssh_rotation_steps (rotation_id, host, idx, step, status) VALUES (?, ?, ?, ?, 'pending')`).run(id, h, idx, step));
      }
      for (const h of inJob) {
        if (!enrolled.has(h) && this.targetStatus(id, h) !== 'succeeded') this.journal.finishTarget(id, h, 'cancelled', 'No longer enrolled: this host needs no key of Airlock.');
      }
    })();
  }

  private targetStatus(id: string, host: string): TargetStatus {
    return (this.d.db.prepare('SELECT status FROM ssh_rotation_hosts WHERE rotation_id = ? AND host = ?').get(id, host) as { status: TargetStatus }).status;
  }

  private startHost(id: string, host: string) {
    this.d.db
      .prepare(`UPDATE ssh_rotation_hosts SET status = 'running', message = NULL, started_at = COALESCE(started_at, ?), finished_at = NULL WHERE rotation_id = ? AND host = ?`)
      .run(this.nowIso(), id, host);
  }

  private writeStep(id: string, host: string, idx: number, status: string, message: string | null, at: 'started_at' | 'finished_at') {
    this.d.db.prepare(`UPDATE ssh_rotation_steps SET status = ?, message = ?, ${at} = ? WHERE rotation_id = ? AND host = ? AND idx = ?`).run(status, message, this.nowIso(), id, host, idx);
  }

  /** Runs a host's steps `from`…`to`, each recorded before and after. False (the host failed, pending) at the first that fails. */
  private async steps(id: string, host: string, from: number, to: number, keys: StepKeys, signal: AbortSignal): Promise<boolean> {
    for (let idx = from; idx <= to; idx++) {
      const step = ROTATION_STEPS[idx]!;
      this.writeStep(id, host, idx, 'running', null, 'started_at');
      this.boundary(`${host}:${step}:started`);
      let message: string;
      try {
        message = await this.act(host, step, keys, signal);
      } catch (e) {
        const why = e instanceof StepFailed || e instanceof AirlockError ? e.message : 'the step failed unexpectedly';
        this.writeStep(id, host, idx, 'failed', why, 'finished_at');
        this.journal.finishTarget(id, host, 'failed', `${step} failed: ${why} The host still accepts ${idx < 2 ? 'the old key' : 'the new key (and maybe the old one)'}; resume the rotation once it is fixed.`);
        return false;
      }
      this.boundary(`${host}:${step}:acted`);
      this.writeStep(id, host, idx, 'done', message, 'finished_at');
      this.boundary(`${host}:${step}:recorded`);
    }
    return true;
  }

  /** One step on one host, over a connection of its own (closed after). */
  private async act(host: string, step: StepName, k: StepKeys, signal: AbortSignal): Promise<string> {
    // add logs in with the old key (the new one is not there yet); verify and remove with the new one only.
    const auth: SshAuth = { privateKey: step === 'add' ? k.oldKey : k.newKey, agent: null };
    const conn = await this.d.hosts.open(host, auth, signal);
    try {
      const script = step === 'add' ? addScript(k.newPublic) : step === 'verify' ? verifyScript(k.newPublic) : removeScript(k.oldPublic, k.newPublic);
      const r = await conn.exec(shCommand(script), { timeoutMs: this.d.execTimeoutMs ?? 30_000, signal, maxOutputBytes: MAX_OUTPUT });
      return parseOutcome(step, r);
    } finally {
      conn.close();
    }
  }
}

interface StepKeys {
  oldKey: string;
  newKey: string;
  oldPublic: string;
  newPublic: string;
}

/** The `type base64` of an authorized_keys line we made (our own lines: strictly checked anyway). */
export function keyBlob(line: string): string {
  const f = line.split(' ');
  if (f.length < 2 || !/^ssh-ed25519$/.test(f[0]!) || !/^[A-Za-z0-9+/]+={0,2}$/.test(f[1]!)) throw new AirlockError('INTERNAL', 'Not an SSH public key line of Airlock.');
  return f[1]!;
}

// Shell fragments shared by the scripts. `has KEY FILE`: some field of some line is the key blob.
const PRELUDE = [
  'set -u',
  'umask 077',
  'f="$HOME/.ssh/authorized_keys"',
  `if [ -L "$f" ]; then echo "${MARKER} symlink"; exit 4; fi`,
  'has() { [ -f "$2" ] && awk -v k="$1" \'{ for (i = 1; i <= NF; i++) if ($i == k) found = 1 } END { exit !found }\' "$2"; }',
  'rm -f "$f".airlock-rotate.* 2>/dev/null',
  'tmp="$f.airlock-rotate.$$"',
  // The replacement is written beside the file, flushed, then renamed over it (atomic on POSIX).
  'commit() { sync 2>/dev/null; mv -f "$tmp" "$f" || { rm -f "$tmp"; exit 3; }; }',
];

/** Appends the new key's line unless it is there (any options, any comment): idempotent. */
export function addScript(newPublic: string): string {
  return [
    ...PRELUDE,
    `new=${shellQuote(keyBlob(newPublic))}`,
    `line=${shellQuote(newPublic)}`,
    'mkdir -p "$HOME/.ssh" || exit 3',
    `if has "$new" "$f"; then echo "${MARKER} present"; exit 0; fi`,
    'if [ -f "$f" ]; then',
    '  cp -p "$f" "$tmp" || { rm -f "$tmp"; exit 3; }',
    '  if [ -s "$tmp" ] && [ "$(tail -c 1 "$tmp" | wc -l)" -eq 0 ]; then printf "\\n" >> "$tmp" || exit 3; fi',
    'else',
    '  : > "$tmp" && chmod 600 "$tmp" || exit 3',
    'fi',
    'printf "%s\\n" "$line" >> "$tmp" || { rm -f "$tmp"; exit 3; }',
    'commit',
    `echo "${MARKER} added"`,
  ].join('\n');
}

/** Run over a connection that logged in with the new key only: the line must be there too. */
export function verifyScript(newPublic: string): string {
  return [...PRELUDE, `new=${shellQuote(keyBlob(newPublic))}`, `if has "$new" "$f"; then echo "${MARKER} verified"; exit 0; fi`, `echo "${MARKER} new-missing"`, 'exit 5'].join('\n');
}

/** Removes every line of the old key, never unless the new key's line is there: idempotent. */
export function removeScript(oldPublic: string, newPublic: string): string {
  return [
    ...PRELUDE,
    `old=${shellQuote(keyBlob(oldPublic))}`,
    `new=${shellQuote(keyBlob(newPublic))}`,
    `if ! has "$new" "$f"; then echo "${MARKER} new-missing"; exit 5; fi`,
    `if ! has "$old" "$f"; then echo "${MARKER} absent"; exit 0; fi`,
    'cp -p "$f" "$tmp" || { rm -f "$tmp"; exit 3; }',
    'awk -v k="$old" \'{ drop = 0; for (i = 1; i <= NF; i++) if ($i == k) drop = 1 } !drop\' "$f" > "$tmp" || { rm -f "$tmp"; exit 3; }',
    'commit',
    `echo "${MARKER} removed"`,
  ].join('\n');
}

const EXPECTED: Record<StepName, Record<string, string>> = {
  add: { added: 'the new key was added to authorized_keys', present: 'the new key was already in authorized_keys' },
  verify: { verified: 'a new login with the new key alone succeeded' },
  remove: { removed: 'the old key was removed from authorized_keys', absent: 'the old key was already gone from authorized_keys' },
};
const REFUSALS: Record<string, string> = {
  symlink: 'the login user’s ~/.ssh/authorized_keys is a symbolic link; Airlock does not replace it.',
  'new-missing': 'the new key is not in the login user’s ~/.ssh/authorized_keys (is AuthorizedKeysFile elsewhere?).',
};

/** The one marker line a step prints, checked strictly; anything else fails the step. */
export function parseOutcome(step: StepName, r: { code: number | null; stdout: string; stderr: string; truncated: boolean }): string {
  const out = r.stdout.trim();
  const m = r.truncated ? null : /^AIRLOCK-ROTATE ([a-z-]+)$/.exec(out);
  const word = m?.[1];
  if (r.code === 0 && word && Object.hasOwn(EXPECTED[step], word)) return EXPECTED[step][word]!;
  if (word && Object.hasOwn(REFUSALS, word)) throw new StepFailed(`The host refused: ${REFUSALS[word]}`);
  const err = sanitizeHostText(r.stderr, 300);
  throw new StepFailed(`The host's answer was not understood (exit ${r.code ?? 'none'})${err ? `: ${err}` : ''}.`);
}
