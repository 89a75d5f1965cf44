import type { Ceremony, CeremonyKind, CeremonyRole, CeremonyStep, KeyDomain, KeyStatus } from '../../../shared/contract/keys';
import type { TranscriptBody } from './transcript';
import { AirlockError } from '../../../shared/domain/errors';
import type { Db } from '../db/db';
import { ownerAlive, ownerId } from '../jobs/owner';
import { SCRIPT_VERSION, scriptFor, type ScriptStep } from './scripts';

/** What the ceremonies need of the key service (keys/service.ts). */
export interface CeremonyKeys {
  status(): KeyStatus;
  genesis(o: { threshold: number; officers: { name: string; passphrase?: string }[]; nonce: string }, vaultKey: Buffer): Promise<{ hierarchyId: string; rootKcv: string; shares: IssuedShare[] }>;
  beginUnseal(nonce: string): { nonce: string };
  addShare(armored: string, o: { passphrase?: string; by?: string }): Promise<{ collected: number; threshold: number; done: boolean; contributors: string[] }>;
  cancelUnseal(): void;
  verifyShares(shares: { share: string; passphrase?: string }[]): Promise<{ shares: { index: number | null; officer: string | null; ok: boolean; problem: string | null }[]; combines: boolean | null }>;
  /** `vaultKey`: the acting user's; a console KEK rotation wraps its new version under it (sign-ins open Airlock's own keys with it). */
  rotateKek(domain: KeyDomain, vaultKey: Buffer): Promise<{ domain: KeyDomain; version: number; rewrapped: number }>;
  reshare(o: { threshold: number; officers: { name: string; passphrase?: string }[]; nonce: string }): Promise<{ shares: IssuedShare[] }>;
  rotateRoot(o: { threshold: number; officers: { name: string; passphrase?: string }[]; nonce: string }): Promise<{ rootKcv: string; shares: IssuedShare[] }>;
}

export interface IssuedShare {
  index: number;
  officer: string;
  armored: string;
  sealing: 'none' | 'passphrase';
  fingerprint: string;
}

export interface KeyFingerprints {
  rootKcv: string | null;
  keks: { domain: KeyDomain; version: number; kcv: string }[];
  certificates: { serial: string; kind: string; sha256: string }[];
}

interface Row {
  id: string;
  kind: CeremonyKind;
  nonce: string;
  script_version: string;
  status: Ceremony['status'];
  owner: string | null;
  administrator: string;
  participants: string;
  steps: string;
  params: string;
  before_state: string | null;
  after_state: string | null;
  contributors: string;
  started_at: string;
  finished_at: string | null;
  message: string | null;
  transcript: string | null;
}

interface StoredStep extends CeremonyStep {
  officer?: string;
  auto?: ScriptStep['auto'];
}

const AIRLOCK = 'Airlock';

function keyFingerprints(s: KeyStatus, certificates: KeyFingerprints['certificates']): KeyFingerprints {
  return { rootKcv: s.rootKcv, keks: s.domains.flatMap((d) => d.versions.map((v) => ({ domain: d.domain, version: v.version, kcv: v.kcv }))), certificates };
}

/**
 * Key ceremonies: each is a script of numbered steps (keys/scripts.ts) with its participants
 * (the administrator — the signed-in account that opened it —, officers, witnesses), a fresh
 * nonce, and a durable record of who acknowledged which step when. The key operation of a
 * ceremony runs only once every step before it is acknowledged, in order; its last step, when
 * acknowledged, closes the ceremony and signs its transcript. Shares issued by a ceremony are held
 * in memory only, until the ceremony ends, and handed to an officer only after that officer has
 * acknowledged their own step (checked the fingerprint). A console that stops during a ceremony
 * leaves it `failed` at the next start ({@link sweep}); nothing of it is resumed with secrets.
 *
 * Roles, step-up, the two-person rule and the audit event of every call are the dispatcher's.
 */
export class Ceremonies {
  /** Shares issued by an open ceremony, by ceremony then officer; never on disk. */
  private readonly pending = new Map<string, Map<string, IssuedShare>>();
  private readonly owner: string;

  constructor(
    private readonly d: {
      db: Db;
      keys: CeremonyKeys;
      random: (n: number) => Buffer;
      now: () => Date;
      /** Signs a completed ceremony's transcript body with the bundle-signing key (in the vault: any signed-in session opens it); returns the file's text. */
      sign(body: TranscriptBody, vaultKey: Buffer): Promise<string>;
      /** The CA's certificates, for the before/after fingerprints of a transcript. */
      certificates(): KeyFingerprints['certificates'];
      /** This console process (tests give another one). */
      owner?: string;
    },
  ) {
    this.owner = d.owner ?? ownerId();
  }

  /**
   * A ceremony left open by a console process that is gone can never finish (its shares and
   * unseal progress were in its memory): marked failed. Run at start-up and before a new one
   * begins; a ceremony open in another live process (the desktop app while a CLI runs) is left alone.
   */
  sweep(): number {
    const open = this.d.db.prepare("SELECT id, owner FROM key_ceremonies WHERE status = 'open'").all() as { id: string; owner: string | null }[];
    let n = 0;
    for (const r of open) {
      if (ownerAlive(r.owner, this.owner)) continue;
      this.finish(r.id, 'failed', 'The console stopped during the ceremony; nothing it held in memory survived. Begin it again.');
      n++;
    }
    return n;
  }

  list(limit = 100): Ceremony[] {
    const rows = this.d.db.prepare('SELECT * FROM key_ceremonies ORDER BY started_at DESC, rowid DESC LIMIT ?').all(limit) as Row[];
    return rows.map((r) => this.view(r));
  }

  get(id: string): Ceremony {
    return this.view(this.row(id));
  }

  begin(i: { kind: CeremonyKind; officers: string[]; witnesses: string[]; threshold?: number; domain?: KeyDomain }, administrator: string): Ceremony {
    this.sweep();
    const open = this.d.db.prepare("SELECT id, kind FROM key_ceremonies WHERE status = 'open'").get() as { id: string; kind: string } | undefined;
    if (open) throw new AirlockError('CONFLICT', `Ceremony ${open.id} (${open.kind}) is still open: finish or cancel it first; a room runs one script at a time.`);
    const st = this.d.keys.status();
    const params = this.checkBegin(i, st);
    const names = [administrator, ...i.officers, ...i.witnesses].map((n) => n.toLowerCase());
    if (new Set(names).size !== names.length) throw new AirlockError('INVALID_INPUT', 'Every participant must have a distinct name (the administrator, each officer and each witness are different people).');
    const steps: StoredStep[] = scriptFor(i.kind, { officers: i.officers, witnesses: i.witnesses, ...params }).map((s, k) => ({
      n: k + 1,
      title: s.title,
      by: s.by,
      automatic: !!s.auto,
      acknowledgedBy: null,
      recordedBy: null,
      at: null,
      ...(s.officer ? { officer: s.officer } : {}),
      ...(s.auto ? { auto: s.auto } : {}),
    }));
    const id = `cer-${this.d.random(8).toString('hex')}`;
    const nonce = this.d.random(16).toString('hex');
    const participants = [
      { name: administrator, role: 'administrator' as const },
      ...i.officers.map((name) => ({ name, role: 'officer' as const })),
      ...i.witnesses.map((name) => ({ name, role: 'witness' as const })),
    ];
    this.d.db
      .prepare(
        `INSERT INTO key_ceremonies (id, kind, nonce, script_version, status, owner, administrator, participants, steps, params, before_state, started_at)
         VALUES (?, ?, ?, ?, 'open', ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(id, i.kind, nonce, SCRIPT_VERSION, this.owner, administrator, JSON.stringify(participants), JSON.stringify(steps), JSON.stringify(params), JSON.stringify(keyFingerprints(st, this.d.certificates())), this.d.now().toISOString());
    if (i.kind === 'unseal') this.d.keys.beginUnseal(nonce);
    return this.get(id);
  }

  private checkBegin(i: { kind: CeremonyKind; officers: string[]; witnesses: string[]; threshold?: number; domain?: KeyDomain }, st: KeyStatus): Ceremony['params'] {
    const issuing = i.kind === 'genesis' || i.kind === 'reshare' || i.kind === 'rotate-root';
    if (i.kind === 'genesis' && st.initialised) throw new AirlockError('CONFLICT', 'The key hierarchy already exists: genesis happens once. Use reshare or rotate-root to change who holds the root.');
    if (i.kind !== 'genesis' && !st.initialised) throw new AirlockError('KEY_UNAVAILABLE', 'There is no key hierarchy yet: run the genesis ceremony first.');
    if (i.kind === 'unseal' && !st.sealed) throw new AirlockError('CONFLICT', 'The key hierarchy is already unsealed.');
    if ((i.kind === 'rotate-kek' || i.kind === 'reshare' || i.kind === 'rotate-root') && st.sealed)
      throw new AirlockError('KEY_UNAVAILABLE', `This ceremony needs the root key: the hierarchy is sealed. Unseal it first (${st.threshold ?? 'the threshold'} officers' shares).`);
    if (i.kind === 'rotate-kek' && !i.domain) throw new AirlockError('INVALID_INPUT', 'Name the domain whose KEK to rotate (models, datasets, host-secrets or console).');
    if (i.kind !== 'rotate-kek' && i.domain) throw new AirlockError('INVALID_INPUT', 'Only a KEK rotation takes a domain.');
    if (issuing) {
      if (i.officers.length < 2) throw new AirlockError('INVALID_INPUT', 'Name at least two officers to hold shares of the root key.');
      if (i.threshold === undefined) throw new AirlockError('INVALID_INPUT', 'Give the threshold: how many officers must come together to unseal.');
      if (i.threshold > i.officers.length) throw new AirlockError('INVALID_INPUT', `A threshold of ${i.threshold} needs at least ${i.threshold} officers; ${i.officers.length} are named.`);
      if (i.witnesses.length < 1) throw new AirlockError('INVALID_INPUT', 'A ceremony that creates or moves the root key needs at least one witness.');
      return { threshold: i.threshold, count: i.officers.length };
    }
    if (i.threshold !== undefined || i.officers.length) throw new AirlockError('INVALID_INPUT', 'Officers and a threshold are chosen by genesis, reshare and rotate-root only.');
    return { ...(st.threshold !== null ? { threshold: st.threshold } : {}), ...(st.count !== null ? { count: st.count } : {}), ...(i.domain ? { domain: i.domain } : {}) };
  }

  /**
   * Records that `by` acknowledged step `n`. The step must be the next one (every earlier step
   * done), a person's step (not Airlock's), and `by` must hold the step's role in this ceremony.
   * The last step closes the ceremony and signs its transcript.
   */
  async acknowledge(id: string, n: number, by: string, recordedBy: string, vaultKey: Buffer): Promise<Ceremony> {
    const r = this.openRow(id);
    const steps = JSON.parse(r.steps) as StoredStep[];
    const step = steps.find((s) => s.n === n);
    if (!step) throw new AirlockError('NOT_FOUND', `Ceremony ${id} has no step ${n}.`);
    const next = steps.find((s) => s.at === null);
    if (step.at !== null) throw new AirlockError('CONFLICT', `Step ${n} was already acknowledged by ${step.acknowledgedBy}.`);
    if (next && next.n !== n) throw new AirlockError('CONFLICT', `Step ${next.n} comes first: "${next.title}".`);
    if (step.automatic) throw new AirlockError('CONFLICT', `Step ${n} is Airlock's own (${step.title}); it runs when its operation is called.`);
    const participants = JSON.parse(r.participants) as { name: string; role: CeremonyRole }[];
    const who = participants.find((p) => p.name.toLowerCase() === by.toLowerCase());
    if (!who || who.role !== step.by) throw new AirlockError('FORBIDDEN', `Step ${n} is for ${step.officer ?? `the ${step.by}`}; ${by} is ${who ? `the ${who.role}` : 'not a participant of this ceremony'}.`);
    if (step.officer && step.officer.toLowerCase() !== by.toLowerCase()) throw new AirlockError('FORBIDDEN', `Step ${n} is ${step.officer}'s own: only ${step.officer} acknowledges it.`);
    Object.assign(step, { acknowledgedBy: who.name, recordedBy, at: this.d.now().toISOString() });
    this.saveSteps(id, steps);
    if (steps.every((s) => s.at !== null)) return this.complete(id, vaultKey);
    return this.get(id);
  }

  /** Any console process may cancel (the one running it may be stuck); only the owner holds unseal progress to forget. */
  cancel(id: string, reason: string): Ceremony {
    const r = this.row(id);
    if (r.status !== 'open') throw new AirlockError('CONFLICT', `Ceremony ${id} is already ${r.status}.`);
    if (r.kind === 'unseal' && r.owner === this.owner) this.d.keys.cancelUnseal();
    this.pending.delete(id);
    this.finish(id, 'cancelled', `Cancelled: ${reason}`);
    return this.get(id);
  }

  // ---- the key operations, each the automatic step of its ceremony ----

  async genesis(id: string, passphrases: Record<string, string>, vaultKey: Buffer) {
    const { steps, params, participants, nonce } = this.readyFor(id, 'genesis');
    const out = await this.issue(id, steps, () => this.d.keys.genesis({ threshold: params.threshold!, officers: this.officersWith(participants, passphrases), nonce }, vaultKey));
    return { hierarchyId: out.hierarchyId, rootKcv: out.rootKcv, shares: out.shares.map(hideArmor), ceremony: this.get(id) };
  }

  async reshare(id: string, passphrases: Record<string, string>) {
    const { steps, params, participants, nonce } = this.readyFor(id, 'reshare');
    const out = await this.issue(id, steps, () => this.d.keys.reshare({ threshold: params.threshold!, officers: this.officersWith(participants, passphrases), nonce }));
    return { shares: out.shares.map(hideArmor), ceremony: this.get(id) };
  }

  async rotateRoot(id: string, passphrases: Record<string, string>) {
    const { steps, params, participants, nonce } = this.readyFor(id, 'rotate-root');
    const out = await this.issue(id, steps, () => this.d.keys.rotateRoot({ threshold: params.threshold!, officers: this.officersWith(participants, passphrases), nonce }));
    return { rootKcv: out.rootKcv, shares: out.shares.map(hideArmor), ceremony: this.get(id) };
  }

  /** An officer's share, once that officer acknowledged their own step; shown again on request until the ceremony ends. */
  issueShare(id: string, officer: string): IssuedShare {
    const r = this.openRow(id);
    const steps = JSON.parse(r.steps) as StoredStep[];
    const step = steps.find((s) => s.officer?.toLowerCase() === officer.toLowerCase());
    if (!step) throw new AirlockError('NOT_FOUND', `${officer} holds no share in ceremony ${id}.`);
    const share = this.pending.get(id)?.get(step.officer!);
    if (!share) throw new AirlockError('CONFLICT', 'No shares have been made in this ceremony yet: its key operation comes first.');
    if (step.at === null) throw new AirlockError('CONFLICT', `${step.officer} must first check the fingerprint ${share.fingerprint} and acknowledge step ${step.n}.`);
    return share;
  }

  async addShare(id: string, share: string, passphrase: string | undefined) {
    const { steps, nonce } = this.readyFor(id, 'unseal');
    // The shares collected belong to this ceremony's nonce: one left over from another is dropped.
    this.d.keys.beginUnseal(nonce);
    const p = await this.d.keys.addShare(share, { ...(passphrase !== undefined ? { passphrase } : {}) });
    this.setContributors(id, p.contributors);
    if (p.done) this.autoDone(id, steps);
    return { ...p, ceremony: this.get(id) };
  }

  async verifyShares(id: string, shares: { share: string; passphrase?: string }[]) {
    const { steps } = this.readyFor(id, 'verify-shares');
    const report = await this.d.keys.verifyShares(shares);
    this.setContributors(id, [...new Set(report.shares.filter((s) => s.ok && s.officer).map((s) => s.officer!))]);
    this.d.db.prepare('UPDATE key_ceremonies SET message = ? WHERE id = ?').run(verifyMessage(report), id);
    this.autoDone(id, steps);
    return { report, ceremony: this.get(id) };
  }

  async rotateKek(id: string, vaultKey: Buffer) {
    const { steps, params } = this.readyFor(id, 'rotate-kek');
    const out = await this.d.keys.rotateKek(params.domain!, vaultKey);
    this.d.db.prepare('UPDATE key_ceremonies SET message = ? WHERE id = ?').run(`${out.domain} KEK is now version ${out.version}; ${out.rewrapped} data keys rewrapped.`, id);
    this.autoDone(id, steps);
    return { ...out, ceremony: this.get(id) };
  }

  transcript(id: string): string {
    const r = this.row(id);
    if (!r.transcript) throw new AirlockError('NOT_FOUND', `Ceremony ${id} has no transcript: ${r.status === 'open' ? 'it is still open' : `it was ${r.status}`}.`);
    return r.transcript;
  }

  // ---- internals ----

  private async issue<T extends { shares: IssuedShare[] }>(id: string, steps: StoredStep[], run: () => Promise<T>): Promise<T> {
    const out = await run();
    this.pending.set(id, new Map(out.shares.map((s) => [s.officer, s])));
    this.setContributors(id, out.shares.map((s) => s.officer));
    this.autoDone(id, steps);
    return out;
  }

  private officersWith(participants: { name: string; role: CeremonyRole }[], passphrases: Record<string, string>) {
    const officers = participants.filter((p) => p.role === 'officer').map((p) => p.name);
    for (const k of Object.keys(passphrases)) if (!officers.includes(k)) throw new AirlockError('INVALID_INPUT', `A passphrase was given for ${k}, who is not an officer of this ceremony.`);
    return officers.map((name) => (passphrases[name] !== undefined ? { name, passphrase: passphrases[name] } : { name }));
  }

  /** The ceremony is open, of this kind, every step before its key operation is acknowledged and the operation has not run. */
  private readyFor(id: string, kind: CeremonyKind) {
    const r = this.openRow(id);
    if (r.kind !== kind) throw new AirlockError('CONFLICT', `Ceremony ${id} is a ${r.kind} ceremony, not ${kind}.`);
    const steps = JSON.parse(r.steps) as StoredStep[];
    const auto = steps.find((s) => s.automatic)!;
    if (auto.at !== null) throw new AirlockError('CONFLICT', `Step ${auto.n} of ceremony ${id} has already been done.`);
    const before = steps.find((s) => s.n < auto.n && s.at === null);
    if (before) throw new AirlockError('CONFLICT', `Step ${before.n} must be acknowledged first (by ${before.officer ?? `the ${before.by}`}): "${before.title}".`);
    return { steps, nonce: r.nonce, params: JSON.parse(r.params) as Ceremony['params'], participants: JSON.parse(r.participants) as { name: string; role: CeremonyRole }[] };
  }

  private autoDone(id: string, steps: StoredStep[]) {
    const auto = steps.find((s) => s.automatic)!;
    Object.assign(auto, { acknowledgedBy: AIRLOCK, recordedBy: null, at: this.d.now().toISOString() });
    this.saveSteps(id, steps);
  }

  private async complete(id: string, vaultKey: Buffer): Promise<Ceremony> {
    const finishedAt = this.d.now().toISOString();
    const st = this.d.keys.status();
    const after = keyFingerprints(st, this.d.certificates());
    this.d.db.prepare('UPDATE key_ceremonies SET after_state = ? WHERE id = ?').run(JSON.stringify(after), id);
    const r = this.row(id);
    const params = JSON.parse(r.params) as Ceremony['params'];
    const named = JSON.parse(r.participants) as { name: string; role: CeremonyRole }[];
    // Officers who gave a share to an unseal or a verify-shares are participants of it too.
    const contributors = JSON.parse(r.contributors) as string[];
    const participants = [...named, ...contributors.filter((c) => !named.some((p) => p.name === c)).map((name) => ({ name, role: 'officer' as const }))];
    const sealing = new Map(st.officers.map((o) => [o.name, o]));
    const body: TranscriptBody = {
      format: 'airlock.ceremony-transcript/v1',
      scriptVersion: r.script_version,
      ceremony: r.kind,
      nonce: r.nonce,
      hierarchyId: st.hierarchyId ?? 'none',
      participants: participants.map((p) => {
        const fp = p.role === 'officer' ? sealing.get(p.name)?.fingerprint : null;
        return fp ? { ...p, sealingKeyFingerprint: fp } : p;
      }),
      ...(params.threshold !== undefined && params.count !== undefined ? { quorum: { threshold: params.threshold, shares: params.count } } : {}),
      // Airlock's own step is recorded as done at the administrator's call.
      steps: (JSON.parse(r.steps) as StoredStep[]).map((s) => ({ n: s.n, title: s.automatic ? `${s.title} (done by Airlock)` : s.title, acknowledgedBy: s.automatic ? r.administrator : s.acknowledgedBy!, at: s.at! })),
      contributors: contributors.map((name) => ({ name, shareIndex: sealing.get(name)?.index ?? 0 })).filter((c) => c.shareIndex > 0),
      before: r.before_state ? (JSON.parse(r.before_state) as KeyFingerprints) : { rootKcv: null, keks: [], certificates: [] },
      after,
      startedAt: r.started_at,
      finishedAt,
      outcome: 'completed',
    };
    const transcript = await this.d.sign(body, vaultKey);
    this.pending.delete(id);
    this.d.db.prepare("UPDATE key_ceremonies SET status = 'completed', finished_at = ?, transcript = ? WHERE id = ?").run(finishedAt, transcript, id);
    return this.get(id);
  }

  private finish(id: string, status: 'cancelled' | 'failed', message: string) {
    this.d.db.prepare('UPDATE key_ceremonies SET status = ?, finished_at = ?, message = ? WHERE id = ?').run(status, this.d.now().toISOString(), message, id);
  }

  private setContributors(id: string, names: string[]) {
    this.d.db.prepare('UPDATE key_ceremonies SET contributors = ? WHERE id = ?').run(JSON.stringify(names), id);
  }

  private saveSteps(id: string, steps: StoredStep[]) {
    this.d.db.prepare('UPDATE key_ceremonies SET steps = ? WHERE id = ?').run(JSON.stringify(steps), id);
  }

  private openRow(id: string): Row {
    const r = this.row(id);
    if (r.status !== 'open') throw new AirlockError('CONFLICT', `Ceremony ${id} is ${r.status}${r.message ? ` (${r.message})` : ''}; begin a new one.`);
    if (r.owner !== this.owner) throw new AirlockError('CONFLICT', `Ceremony ${id} is being run by another console process (its state is in that process's memory): continue it there, or cancel it there.`);
    return r;
  }

  private row(id: string): Row {
    const r = this.d.db.prepare('SELECT * FROM key_ceremonies WHERE id = ?').get(id) as Row | undefined;
    if (!r) throw new AirlockError('NOT_FOUND', `No ceremony ${id}.`);
    return r;
  }

  private view(r: Row): Ceremony {
    const steps = (JSON.parse(r.steps) as StoredStep[]).map((s) => ({ n: s.n, title: s.title, by: s.by, automatic: s.automatic, acknowledgedBy: s.acknowledgedBy, recordedBy: s.recordedBy, at: s.at }));
    return {
      id: r.id,
      kind: r.kind,
      nonce: r.nonce,
      scriptVersion: r.script_version,
      status: r.status,
      administrator: r.administrator,
      participants: JSON.parse(r.participants),
      steps,
      params: JSON.parse(r.params),
      startedAt: r.started_at,
      finishedAt: r.finished_at,
      message: r.message,
      hasTranscript: r.transcript !== null,
      // The fingerprints of the shares this open ceremony made (held in this process only), never the shares.
      ...(r.status === 'open' && this.pending.get(r.id)?.size ? { shares: [...this.pending.get(r.id)!.values()].map(hideArmor).sort((a, b) => a.index - b.index) } : {}),
    };
  }
}

/** The shares a key operation made, as its caller sees them: the armor only through {@link Ceremonies.issueShare}. */
const hideArmor = (s: IssuedShare) => ({ index: s.index, officer: s.officer, sealing: s.sealing, fingerprint: s.fingerprint });

function verifyMessage(r: { shares: { ok: boolean }[]; combines: boolean | null }): string {
  const ok = r.shares.filter((s) => s.ok).length;
  const set = r.combines === null ? 'too few valid shares to try the set' : r.combines ? 'the set opens the root' : 'the set does NOT open the root';
  return `${ok} of ${r.shares.length} shares valid; ${set}.`;
}
