import * as x509 from '@peculiar/x509';
import type { CertRenewal, CertRenewalStepNames } from '../../../shared/contract/keys';
import { AirlockError } from '../../../shared/domain/errors';
import type { Db } from '../db/db';
import { JobJournal, type JobTables, type StepAt, type TargetStatus } from '../jobs/journal';
import { runJob } from '../jobs/run';
import { sanitizeHostText } from '../ssh/sanitize';
import { HOST_TLS, hostPublicKeyFromCsr, type CaCredentials, type CaOps, type RenewalOutcome } from './ca-ops';
import { csrScript, installScript, keygenScript, parseMarker, RENEWAL_STAGE, retireScript, verifyScript } from './cert-renewal-scripts';
import type { CertStore, StoredCrl } from './cert-store';

/**
 * Renewal of host TLS certificates as a job on the crash-safe journal (jobs/journal.ts), so that
 * no crash, cut link or kill leaves a host with a key that does not match its certificate, or the
 * store not knowing which certificate a host serves (docs/keys-ca.md "Renewal as a journaled state
 * machine").
 *
 * Each host goes through seven steps, each recorded before it starts and after it ends:
 *   keygen  — a new P-256 key made ON THE HOST beside the current one (`host.key.next`); kept if an
 *             earlier run made it. The private key never leaves the host.
 *   csr     — the host prints a CSR of it; read strictly (untrusted output: one PEM request, P-256,
 *             self-signature valid, not the current key); its public key goes on the host's row.
 *   issue   — the certificate for that key, recorded in the store as issued for this renewal (not
 *             current) in ONE transaction with the row's `new_serial`: a certificate a host may get
 *             is always on record (revocable), and a resume never issues a second one.
 *   install — certificate, chain and CRL staged on the host, then the pair switch of
 *             cert-renewal-scripts.ts: a complete pair directory, `live` switched by one rename.
 *   verify  — over SSH: host.key and host.crt come from one pair directory, the key matches the
 *             certificate, the certificate chains to the host's CA files (`openssl verify
 *             -crl_check`), and it is the new certificate's serial.
 *   promote — one transaction: the new certificate current, the old one revoked as superseded.
 *   retire  — a CRL of the issuer that lists the old certificate (signed once), sent to every host
 *             that holds one of its certificates; then the old pair and staged files deleted from
 *             the host.
 * Until `install` the host serves its old pair, which the store names current; from `install` to
 * `promote` the host serves the new pair and the store still names the old certificate current
 * (both are valid: neither is revoked until `promote`, after `verify` proved what the host serves).
 * A crash at any point leaves the job running with a dead owner: the next read sweeps it to
 * interrupted and a resume claims it and carries each host on from its first step not done.
 * Resuming is always the safe direction (nothing needs undoing: the old pair keeps working until
 * the switch, and after it the new one does), so there is no rollback. Hosts are independent: an
 * unreachable one stays pending with its old certificate and is retried by the next renewal run
 * (`keys:renewCertificates`, the schedule) or `keys:resumeCertRenewal`.
 */

export const CERT_RENEWAL_TABLES: JobTables = { jobs: 'cert_renewals', targets: 'cert_renewal_hosts', steps: 'cert_renewal_steps', jobRef: 'renewal_id', targetRef: 'host' };
export const CERT_RENEWAL_STEPS: typeof CertRenewalStepNames = ['keygen', 'csr', 'issue', 'install', 'verify', 'promote', 'retire'];
type StepName = (typeof CERT_RENEWAL_STEPS)[number];
const INSTALL_IDX = CERT_RENEWAL_STEPS.indexOf('install');
const PROMOTE_IDX = CERT_RENEWAL_STEPS.indexOf('promote');

/** Hosts renewed at once by default (each makes a key and runs openssl; the console only waits). */
export const DEFAULT_RENEWAL_CONCURRENCY = 4;
/** A CSR of a P-256 key is a few hundred bytes; a script's marker line far less. */
const MAX_CSR_OUTPUT = 4097;
const MAX_MARKER_OUTPUT = 4096;

export interface CertRenewalDeps {
  db: Db;
  now: () => Date;
  random: (n: number) => Buffer;
  ops: CaOps;
  certs: CertStore;
  /** Whether the key hierarchy is sealed (the issuing CA key opens only when it is not). */
  sealed: () => boolean;
  /** Where each host keeps its TLS files (/etc/airlock/tls; tests of the state machine give each host a directory of its own). */
  tlsDir?: (host: string) => string;
  /** Called at every step boundary: the test-only kill hook (ssh-rotation.ts `killHookFromEnv`). */
  boundary?: ((label: string) => void) | undefined;
  /** The journal's owner id (tests); this process by default. */
  owner?: string;
}

interface HostRow {
  renewal_id: string;
  host: string;
  status: TargetStatus;
  message: string | null;
  old_serial: string | null;
  csr_spki: string | null;
  new_serial: string | null;
  promoted_at: string | null;
}

/** The step failed: the host is pending, the message says why. */
class StepFailed extends Error {}

/** What the host is left with when a step fails there: every answer is a matching pair. */
function keeps(idx: number): string {
  if (idx < INSTALL_IDX) return 'The host keeps serving its old certificate, which stays current.';
  if (idx === INSTALL_IDX) return 'The host serves its old pair, or the new one if the switch took effect before the failure: a matching pair either way.';
  if (idx < PROMOTE_IDX) return 'The host serves the new pair; the store keeps the old certificate current (it is not revoked) until the new one is verified.';
  if (idx === PROMOTE_IDX) return 'The host serves the new pair.';
  return 'The new certificate is current; the old pair stays on the host until the renewal retires it.';
}

export class CertRenewals {
  readonly journal: JobJournal;
  /** CRL numbers must grow one at a time: hosts renewed at once sign their issuer's CRL one after another. */
  private crlLock: Promise<unknown> = Promise.resolve();

  constructor(private readonly d: CertRenewalDeps) {
    this.journal = new JobJournal({
      db: d.db,
      now: d.now,
      tables: CERT_RENEWAL_TABLES,
      doneSteps: new Set(['done']),
      interruptedMessage: 'Airlock stopped during this step; resume the renewal to finish it.',
      ...(d.owner ? { owner: d.owner } : {}),
    });
  }

  private dirOf(host: string): string {
    return this.d.tlsDir?.(host) ?? HOST_TLS.dir;
  }

  /** Renewals whose console died are interrupted (at start-up and before reads). */
  sweep(): string[] {
    return this.journal.sweep();
  }

  private requireUnsealed(what: string): void {
    if (this.d.sealed()) throw new AirlockError('KEY_UNAVAILABLE', `${what} needs the issuing CA's key, and the key hierarchy is sealed: the officers must unseal it first (an unseal ceremony, or --share FILE with this command on the CLI).`);
  }

  /** Hosts in a renewal not finished on them (not succeeded, not cancelled), with that renewal. */
  busyHosts(): Map<string, string> {
    const rows = this.d.db.prepare(`SELECT renewal_id, host FROM cert_renewal_hosts WHERE status NOT IN ('succeeded', 'cancelled') ORDER BY rowid`).all() as Array<{ renewal_id: string; host: string }>;
    return new Map(rows.map((r) => [r.host, r.renewal_id]));
  }

  /** Renewals with a host still pending, oldest first. */
  unfinished(): string[] {
    return this.d.db
      .prepare(`SELECT id FROM cert_renewals r WHERE EXISTS (SELECT 1 FROM cert_renewal_hosts h WHERE h.renewal_id = r.id AND h.status NOT IN ('succeeded', 'cancelled')) ORDER BY started_at, id`)
      .pluck()
      .all() as string[];
  }

  /**
   * Starts a renewal of every host certificate due within `windowDays` whose host is in no
   * unfinished renewal, and runs it as far as it goes. Null when nothing is due.
   */
  async start(cred: CaCredentials, actor: string, windowDays: number, opts: { concurrency?: number } = {}): Promise<CertRenewal | null> {
    this.requireUnsealed('Renewing host certificates');
    this.sweep();
    const busy = this.busyHosts();
    const due = new Map<string, string>();
    for (const c of this.d.ops.due(windowDays)) if (c.host !== null && !busy.has(c.host) && !due.has(c.host)) due.set(c.host, c.serial);
    if (!due.size) return null;
    const id = `crn-${this.d.random(8).toString('hex')}`;
    const hosts = [...due.keys()].sort();
    this.d.db.transaction(() => {
      this.journal.create(
        id,
        { actor, window_days: windowDays, concurrency: opts.concurrency ?? DEFAULT_RENEWAL_CONCURRENCY },
        hosts.map((h) => ({ target: h, steps: CERT_RENEWAL_STEPS.map((step) => ({ step })) })),
      );
      for (const h of hosts) this.d.db.prepare('UPDATE cert_renewal_hosts SET old_serial = ? WHERE renewal_id = ? AND host = ?').run(due.get(h)!, id, h);
    })();
    this.boundary('created');
    await this.run(cred, id);
    return this.get(id);
  }

  /** Resumes a renewal that is not running, each host from its first step not done. */
  async resume(cred: CaCredentials, id: string): Promise<CertRenewal> {
    this.sweep();
    const j = this.journal.job(id);
    if (!j) throw new AirlockError('NOT_FOUND', `No certificate renewal ${id}.`);
    if (j.status === 'succeeded') return this.get(id);
    this.requireUnsealed(`Resuming certificate renewal ${id}`);
    if (!this.journal.claim(id)) throw new AirlockError('CONFLICT', `Certificate renewal ${id} is running in another console process; wait for it to finish.`);
    await this.run(cred, id);
    return this.get(id);
  }

  /**
   * One renewal run, as `keys:renewCertificates` and the schedule do it: every unfinished renewal
   * not running elsewhere is resumed (its pending hosts retried), then a new one is started for
   * what is due and in none, then CRLs still pending are sent. `failed` lists the hosts left
   * pending, with the reason their step gave.
   */
  async renewDue(cred: CaCredentials, actor: string, windowDays: number): Promise<RenewalOutcome> {
    this.sweep();
    const touched: CertRenewal[] = [];
    const promotedBefore = new Set<string>();
    for (const id of this.unfinished()) {
      if (this.journal.job(id)?.status === 'running') continue;
      for (const h of this.get(id).hosts) if (h.promoted) promotedBefore.add(`${id}/${h.host}`);
      this.requireUnsealed('Renewing host certificates');
      try {
        touched.push(await this.resume(cred, id));
      } catch (e) {
        // Claimed by another console process meanwhile: it carries that one on.
        if (!(e instanceof AirlockError && e.code === 'CONFLICT')) throw e;
      }
    }
    const started = await this.start(cred, actor, windowDays);
    if (started) touched.push(started);
    const out: RenewalOutcome = { renewed: [], failed: [], crls: [], renewals: touched };
    for (const r of touched) {
      for (const h of r.hosts) {
        if (h.promoted && h.newSerial && !promotedBefore.has(`${r.id}/${h.host}`)) out.renewed.push({ host: h.host, oldSerial: h.oldSerial, newSerial: h.newSerial });
        if (h.pending) {
          const failedStep = h.steps.find((s) => s.status === 'failed' || s.status === 'interrupted');
          out.failed.push({ host: h.host, serial: h.oldSerial, message: failedStep?.message ?? h.message ?? 'pending' });
        }
      }
    }
    out.crls.push(...(await this.d.ops.retryPending(cred)));
    return out;
  }

  /** The newest `limit` renewals (running ones included: a renewal is recorded before its first step). */
  list(limit: number): CertRenewal[] {
    const ids = this.d.db.prepare('SELECT id FROM cert_renewals ORDER BY started_at DESC, id DESC LIMIT ?').pluck().all(limit) as string[];
    return ids.map((id) => this.get(id));
  }

  /** A renewal with each host's steps, and which hosts are pending. */
  get(id: string): CertRenewal {
    this.sweep();
    const r = this.d.db.prepare('SELECT * FROM cert_renewals WHERE id = ?').get(id) as
      | { id: string; actor: string; window_days: number; status: CertRenewal['status']; started_at: string; finished_at: string | null; attempts: number }
      | undefined;
    if (!r) throw new AirlockError('NOT_FOUND', `No certificate renewal ${id}.`);
    const hosts = (this.d.db.prepare('SELECT * FROM cert_renewal_hosts WHERE renewal_id = ? ORDER BY host').all(id) as HostRow[]).map((h) => {
      const steps = (this.d.db.prepare('SELECT * FROM cert_renewal_steps WHERE renewal_id = ? AND host = ? ORDER BY idx').all(id, h.host) as Array<{
        step: StepName;
        status: CertRenewal['hosts'][number]['steps'][number]['status'];
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
        oldSerial: h.old_serial ?? '',
        newSerial: h.new_serial,
        serving: steps[INSTALL_IDX]?.status === 'done' ? ('new' as const) : ('old' as const),
        promoted: h.promoted_at !== null,
        steps,
      };
    });
    return {
      id: r.id,
      status: r.status,
      actor: r.actor,
      windowDays: r.window_days,
      startedAt: r.started_at,
      finishedAt: r.finished_at,
      attempts: r.attempts,
      pendingHosts: hosts.filter((h) => h.pending).map((h) => h.host),
      hosts,
    };
  }

  private hostRow(id: string, host: string): HostRow {
    return this.d.db.prepare('SELECT * FROM cert_renewal_hosts WHERE renewal_id = ? AND host = ?').get(id, host) as HostRow;
  }

  private boundary(label: string) {
    this.d.boundary?.(label);
  }

  private nowIso() {
    return this.d.now().toISOString();
  }

  /** The claimed job, its hosts carried on at most `concurrency` at once; settled and released in any case. */
  private async run(cred: CaCredentials, id: string): Promise<void> {
    const row = this.d.db.prepare('SELECT concurrency FROM cert_renewals WHERE id = ?').get(id) as { concurrency: number };
    const todo = this.journal.resumePoints(id).filter((p) => this.hostRow(id, p.target).status !== 'cancelled');
    await runJob(this.journal, id, todo, { resume: (at) => this.carry(cred, id, at) }, { concurrency: row.concurrency, aborted: () => cred.signal.aborted });
  }

  private writeStep(id: string, host: string, idx: number, status: string, message: string | null, at: 'started_at' | 'finished_at') {
    this.d.db.prepare(`UPDATE cert_renewal_steps SET status = ?, message = ?, ${at} = ? WHERE renewal_id = ? AND host = ? AND idx = ?`).run(status, message, this.nowIso(), id, host, idx);
  }

  /** One host from `at` to its end, each step recorded before and after; at the first failure the host is pending. */
  private async carry(cred: CaCredentials, id: string, at: StepAt): Promise<void> {
    const host = at.target;
    this.d.db
      .prepare(`UPDATE cert_renewal_hosts SET status = 'running', message = NULL, started_at = COALESCE(started_at, ?), finished_at = NULL WHERE renewal_id = ? AND host = ?`)
      .run(this.nowIso(), id, host);
    for (let idx = at.idx; idx < CERT_RENEWAL_STEPS.length; idx++) {
      const step = CERT_RENEWAL_STEPS[idx]!;
      this.writeStep(id, host, idx, 'running', null, 'started_at');
      this.boundary(`${host}:${step}:started`);
      let message: string;
      try {
        message = await this.act(cred, id, host, step);
      } catch (e) {
        const why = sanitizeHostText(e instanceof StepFailed || e instanceof AirlockError ? e.message : `the step failed unexpectedly (${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}).`, 600);
        this.writeStep(id, host, idx, 'failed', why, 'finished_at');
        this.journal.finishTarget(id, host, 'failed', `${step} failed: ${why} ${keeps(idx)} The renewal resumes it once it is fixed.`);
        return;
      }
      this.boundary(`${host}:${step}:acted`);
      this.writeStep(id, host, idx, 'done', message, 'finished_at');
      this.boundary(`${host}:${step}:recorded`);
    }
    this.journal.finishTarget(id, host, 'succeeded', null);
  }

  private async act(cred: CaCredentials, id: string, host: string, step: StepName): Promise<string> {
    const r = this.hostRow(id, host);
    const dir = this.dirOf(host);
    const old = r.old_serial ? this.d.certs.get(r.old_serial) : null;
    if (!old) throw new AirlockError('INTERNAL', `The renewal of ${host} names no certificate on record to replace; it cannot go on.`);
    switch (step) {
      case 'keygen':
        return this.d.ops.onHost(host, cred, async (x) => parseMarker(await x.sh(keygenScript(dir), { maxOutputBytes: MAX_MARKER_OUTPUT }), ['made', 'kept']).message);
      case 'csr': {
        const out = await this.d.ops.onHost(host, cred, (x) => x.sh(csrScript(dir), { maxOutputBytes: MAX_CSR_OUTPUT }));
        if (out.code !== 0) parseMarker(out, []);
        const spki = await hostPublicKeyFromCsr(out.stdout);
        const oldSpki = Buffer.from(new x509.X509Certificate(old.certPem).publicKey.rawData);
        if (spki.equals(oldSpki)) throw new StepFailed(`The host's request is for the key of the certificate being replaced (${old.serial}); a renewal needs a new key.`);
        this.d.db.prepare('UPDATE cert_renewal_hosts SET csr_spki = ? WHERE renewal_id = ? AND host = ?').run(spki.toString('base64'), id, host);
        return 'the request of the new key was read and checked (P-256, signed by its own key)';
      }
      case 'issue': {
        if (r.new_serial) return `certificate ${r.new_serial} was already issued for the new key`;
        if (!r.csr_spki) throw new AirlockError('INTERNAL', `The renewal of ${host} has no checked request on record; run it again from csr.`);
        const issuing = this.d.ops.issuing();
        const certPem = await this.d.ops.signHostCertificate(cred.vaultKey, host, Buffer.from(r.csr_spki, 'base64'), issuing);
        // The certificate and the row's serial in one transaction: never an issued certificate the renewal does not know.
        const rec = this.d.db.transaction(() => {
          const c = this.d.certs.record({ certPem, issuerSerial: issuing.serial, host, keyRef: null, renewalId: id });
          this.d.db.prepare('UPDATE cert_renewal_hosts SET new_serial = ? WHERE renewal_id = ? AND host = ?').run(c.serial, id, host);
          return c;
        })();
        return `certificate ${rec.serial} issued (on record, not yet current)`;
      }
      case 'install': {
        const next = this.newCert(r);
        const issuer = this.d.certs.get(next.issuerSerial);
        if (!issuer) throw new AirlockError('INTERNAL', `The issuer ${next.issuerSerial} of ${next.serial} is not on record.`);
        const chain = this.d.ops.chainPem(issuer);
        const crl = await this.withCrlLock(() => this.d.ops.currentCrl(cred.vaultKey, issuer.serial));
        return this.d.ops.onHost(host, cred, async (x) => {
          await x.writeFile(`${dir}/${RENEWAL_STAGE.crt}`, next.certPem, '0644');
          await x.writeFile(`${dir}/${RENEWAL_STAGE.chain}`, chain, '0644');
          await x.writeFile(`${dir}/${RENEWAL_STAGE.crl}`, crl.crlPem, '0644');
          return parseMarker(await x.sh(installScript(next.serial, { dir }), { maxOutputBytes: MAX_MARKER_OUTPUT }), ['installed']).message;
        });
      }
      case 'verify': {
        const next = this.newCert(r);
        const v = await this.d.ops.onHost(host, cred, async (x) => parseMarker(await x.sh(verifyScript(dir), { maxOutputBytes: MAX_MARKER_OUTPUT }), ['verified']));
        if (v.serial !== next.serial) throw new StepFailed(`The host serves certificate ${v.serial}, not the new one (${next.serial}).`);
        return v.message;
      }
      case 'promote': {
        const next = this.newCert(r);
        return this.d.db.transaction(() => {
          const p = this.d.certs.promote(next.serial, old.serial);
          this.d.db.prepare('UPDATE cert_renewal_hosts SET promoted_at = COALESCE(promoted_at, ?) WHERE renewal_id = ? AND host = ?').run(this.nowIso(), id, host);
          return `${p.next.serial} is the host's current certificate; ${p.old.serial} revoked (${p.old.revokeReason})`;
        })();
      }
      case 'retire': {
        const next = this.newCert(r);
        // Signed and sent under one lock: hosts renewed at once never have a newer CRL overwritten by an older one.
        const { crl, pub } = await this.withCrlLock(async () => {
          const c = await this.crlListing(cred.vaultKey, old.issuerSerial, old.serial);
          return { crl: c, pub: await this.d.ops.sendCrl(cred, c, this.d.ops.holders(old.issuerSerial)) };
        });
        const msg = await this.d.ops.onHost(host, cred, async (x) => parseMarker(await x.sh(retireScript(next.serial, dir), { maxOutputBytes: MAX_MARKER_OUTPUT }), ['retired']).message);
        const pending = pub.pending.map((p) => p.host);
        return `CRL ${crl.crlNumber} lists ${old.serial}; sent to ${pub.published.join(', ') || 'no host'}${pending.length ? ` (pending: ${pending.join(', ')})` : ''}; ${msg}`;
      }
    }
  }

  private newCert(r: HostRow) {
    const c = r.new_serial ? this.d.certs.get(r.new_serial) : null;
    if (!c) throw new AirlockError('INTERNAL', `The renewal of ${r.host} has no issued certificate on record; run it again from issue.`);
    return c;
  }

  /** The issuer's newest CRL if it lists `serial`; else a new one, signed now (it lists every revoked certificate). */
  private async crlListing(vaultKey: Buffer, issuerSerial: string, serial: string): Promise<StoredCrl> {
    const latest = this.d.certs.latestCrl(issuerSerial);
    if (latest && !this.d.ops.crlStale(latest)) {
      const listed = new x509.X509Crl(latest.crlPem).entries.some((e) => e.serialNumber.toLowerCase() === serial);
      if (listed) return latest;
    }
    return this.d.ops.signCrl(vaultKey, issuerSerial);
  }

  private withCrlLock<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.crlLock.then(fn, fn);
    this.crlLock = run.catch(() => undefined);
    return run;
  }
}
