import type { SshAuth } from '../../ssh/connection';

/** Who armed the retry: what its audit events name, and the credentials it reaches hosts with (getters: they stop working when the session ends). */
export interface RetryCaller {
  actor: string;
  principal: string | null;
  roles: string[];
  sessionRef: string | null;
  shell: string;
  auth: () => SshAuth;
}

/** How often pending and unreachable hosts are retried, by default. */
export const DEFAULT_POLICY_RETRY_MS = 60_000;

/**
 * Retries the current policy on hosts that do not have it (pending or unreachable: a host back
 * after a power cut gets it without anyone pushing). Armed by an administrator's or officer's
 * access call with that session's SSH credentials, as getters: once the session ends (or the
 * console locks, `disarm`) a tick does nothing, so a timer never acts on credentials no one signed
 * in with. Rejected hosts are not retried: they need a person (a re-pin, a look at a tampered
 * file). One run at a time; the timer is unref'd.
 */
export class PolicyRetry {
  private armed: RetryCaller | null = null;
  private timer: ReturnType<typeof setInterval> | null = null;
  private running: Promise<void> | null = null;

  constructor(private readonly d: { intervalMs: number; run: (caller: RetryCaller, auth: SshAuth) => Promise<void> }) {}

  start(): void {
    if (this.d.intervalMs <= 0 || this.timer) return;
    this.timer = setInterval(() => void this.tick(), this.d.intervalMs);
    this.timer.unref?.();
  }

  arm(caller: RetryCaller): void {
    this.armed = caller;
  }

  disarm(): void {
    this.armed = null;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.armed = null;
  }

  /** One retry now (the timer's tick; tests call it). Resolves when done; a run already going is awaited instead. */
  async tick(): Promise<void> {
    if (this.running) return this.running;
    const c = this.armed;
    if (!c) return;
    let auth: SshAuth;
    try {
      auth = c.auth();
    } catch {
      // The session that armed it is gone.
      if (this.armed === c) this.armed = null;
      return;
    }
    this.running = this.d.run(c, auth).catch(() => {});
    try {
      await this.running;
    } finally {
      this.running = null;
    }
  }
}
