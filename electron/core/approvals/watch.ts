import type { Db } from '../db/db';

export interface ApprovalWatchDeps {
  db: Db;
  now: () => Date;
  /** Called with a new version each time the queue is seen to have changed. */
  onChange: (version: number) => void;
  /** How often changes made by other processes (the CLI while `airlock serve` runs) and expiries are looked for. */
  intervalMs?: number;
}

/**
 * Notices when the approval queue changes, wherever the change came from, so that the core can
 * push `approvals:changed` instead of every console polling `approvals:list` (and writing two audit
 * events per poll).
 *
 * The queue's state is summed up by a fingerprint: the highest request id, and the id and status
 * of every request still in play (executing, or pending or approved and not past `expires_at`).
 * Expiry is a time, not a write (approvals.ts records it lazily, at the next read), so a request
 * leaves the set when its time is up, and the later write of 'expired' changes nothing here.
 * Requests out of play never change again, so any filing, decision, cancellation, claim,
 * execution, failure or expiry changes the fingerprint, and nothing else does.
 *
 * It is computed (one indexed query, read-only):
 * - right after each call this core dispatched (`poke`), for changes made here;
 * - on a timer, when SQLite's `data_version` moved — which happens only when another connection
 *   (another Airlock process on the same database) committed — or when the next expiry is due.
 */
export class ApprovalWatch {
  private fingerprint: string | null = null;
  private nextExpiry = Number.POSITIVE_INFINITY;
  private dataVersion: number | null = null;
  private version = 0;
  private poked = false;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly deps: ApprovalWatchDeps) {}

  start(): void {
    this.fingerprint = this.read();
    this.dataVersion = this.deps.db.pragma('data_version', { simple: true }) as number;
    this.timer = setInterval(() => this.tick(), this.deps.intervalMs ?? 1000);
    // Never what keeps a CLI run or a test alive.
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** A call ran here: look once the current turn's work (possibly several calls) is done. */
  poke(): void {
    if (this.poked || !this.timer) return;
    this.poked = true;
    setImmediate(() => {
      this.poked = false;
      this.check();
    });
  }

  private tick(): void {
    try {
      const dv = this.deps.db.pragma('data_version', { simple: true }) as number;
      if (dv === this.dataVersion && this.deps.now().getTime() < this.nextExpiry) return;
      this.dataVersion = dv;
    } catch {
      return; // closing
    }
    this.check();
  }

  private check(): void {
    if (!this.timer) return;
    let fp: string;
    try {
      fp = this.read();
    } catch {
      return; // the database is closing; nobody is left to tell
    }
    if (fp === this.fingerprint) return;
    this.fingerprint = fp;
    this.deps.onChange(++this.version);
  }

  private read(): string {
    const now = this.deps.now().toISOString();
    const row = this.deps.db
      .prepare(
        `SELECT (SELECT COALESCE(MAX(id), 0) FROM approval_requests) AS top,
                (SELECT group_concat(id || ':' || status, ',')
                   FROM (SELECT id, status FROM approval_requests
                          WHERE status = 'executing' OR (status IN ('pending', 'approved') AND expires_at > @now) ORDER BY id)) AS open,
                (SELECT MIN(expires_at) FROM approval_requests WHERE status IN ('pending', 'approved') AND expires_at > @now) AS next`,
      )
      .get({ now }) as { top: number; open: string | null; next: string | null };
    this.nextExpiry = row.next ? Date.parse(row.next) : Number.POSITIVE_INFINITY;
    return `${row.top}|${row.open ?? ''}`;
  }
}
