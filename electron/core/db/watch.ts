import type { Db } from './db';

/** A summary of some state: equal strings mean nothing a client cares about changed. */
export interface Watched {
  state: string;
  /** When the state changes by time alone (an expiry), in ms since the epoch; looked at then even without a write. */
  dueAt?: number;
}

export interface DataWatchDeps {
  db: Db;
  now: () => Date;
  /** Reads the state (read-only, cheap: it runs after every call and on the timer). */
  read: () => Watched;
  /** Called with a new version each time the state is seen to have changed. */
  onChange: (version: number) => void;
  /** How often changes made by other processes (the CLI while `airlock serve` runs) are looked for. */
  intervalMs?: number;
  /**
   * Read on every tick, not only when SQLite's data_version moved: for state this process also
   * changes outside a dispatched call (data_version moves only for other connections' commits).
   */
  everyTick?: boolean;
}

/**
 * Notices when some state in the database changes, wherever the change came from, so that the core
 * pushes an event (`approvals:changed`, `audit:alarmChanged`) instead of every console polling.
 *
 * The state is read:
 * - right after each call this core dispatched (`poke`), for changes made here;
 * - on a timer, when SQLite's `data_version` moved — which happens only when another connection
 *   (another Airlock process on the same database) committed —, when the state's `dueAt` has come,
 *   or on every tick when `everyTick` is set.
 */
export class DataWatch {
  private state: string | null = null;
  private dueAt = Number.POSITIVE_INFINITY;
  private dataVersion: number | null = null;
  private version = 0;
  private poked = false;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly deps: DataWatchDeps) {}

  start(): void {
    this.state = this.read();
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
      if (!this.deps.everyTick && dv === this.dataVersion && this.deps.now().getTime() < this.dueAt) return;
      this.dataVersion = dv;
    } catch {
      return; // closing
    }
    this.check();
  }

  private check(): void {
    if (!this.timer) return;
    let s: string;
    try {
      s = this.read();
    } catch {
      return; // the database is closing (or unreadable now): looked at again on the next tick
    }
    if (s === this.state) return;
    this.state = s;
    this.deps.onChange(++this.version);
  }

  private read(): string {
    const w = this.deps.read();
    this.dueAt = w.dueAt ?? Number.POSITIVE_INFINITY;
    return w.state;
  }
}
