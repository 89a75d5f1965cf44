import type { EventName, EventPayload } from '../../shared/contract/index';
import type { Result } from '../../shared/domain/errors';
import type { Flow, Transport } from './outbox';
import type { Role } from '../../shared/domain/roles';

export type ShellKind = 'electron' | 'browser' | 'cli';

/** Everything the core needs from the outside world, decided once by a shell. */
export interface CoreConfig {
  /** Where the database and nothing else lives. Created 0700 if missing. */
  dataDir: string;
  shell: ShellKind;
  /** Injected for tests: a fixed clock, a seeded random source. */
  clock?: () => Date;
  random?: (bytes: number) => Buffer;
  /** ssh-agent socket to authenticate with (defaults to none; shells pass SSH_AUTH_SOCK). */
  sshAgent?: string | null;
  /** Hosts scanned at once. */
  scanConcurrency?: number;
  /** Per SSH operation (connect, exec) unless a call says otherwise. */
  sshTimeoutMs?: number;
  /** Idle ms a clean SSH connection is kept for the next operation on its host (default 30 000; 0 keeps none). */
  sshPoolIdleMs?: number;
  /** How often the gate policy is retried on pending and unreachable hosts (models/access/retry.ts; default 60 000; 0: never). */
  policyRetryMs?: number;
  /** KDF cost; tests lower it, production keeps the defaults. */
  kdf?: { memoryKiB: number; iterations: number };
  /** Idle minutes before a session expires (the default; an admin may change it with settings:set). */
  sessionIdleMinutes?: number;
  /** Minutes a sign-in or session:stepUp counts for `stepUp` channels (the default; settings:set changes it). */
  stepUpMinutes?: number;
  /**
   * Roles that must use TOTP (default ['admin', 'officer']). Shells pass [] only for the lab/test
   * setting AIRLOCK_TOTP_POLICY=off (see `totpPolicyFromEnv`); the core never reads the environment.
   */
  requireTotpFor?: Role[];
  /** Sign-in lockout: after `threshold` failures, `baseSeconds` doubling per further failure up to `maxSeconds`. */
  lockout?: { threshold?: number; baseSeconds?: number; maxSeconds?: number };
  /** A signed audit checkpoint after this many events (default 1000)… */
  auditCheckpointEvery?: number;
  /** …or once the oldest event not yet covered by one is this many seconds old (default 300). */
  auditCheckpointSeconds?: number;
  /** audit:verify, and audit:list searches that scan bodies, run in worker threads from this many events on (default 20,000). */
  auditWorkerThreshold?: number;
  /** Syslog forwarder timings in ms (tests shorten them): backoffMinMs, backoffMaxMs, pollMs, graceMs, connectTimeoutMs, flushMs. */
  auditForwarding?: Partial<Record<'backoffMinMs' | 'backoffMaxMs' | 'pollMs' | 'graceMs' | 'connectTimeoutMs' | 'flushMs', number>>;
  /** Hosts provisioned at once by plan/apply (default 8). */
  provisionConcurrency?: number;
  /**
   * Directories removable media are mounted under: the offline store imports only from below these
   * (default /media, /mnt, /run/media; shells add AIRLOCK_MEDIA_ROOTS).
   */
  mediaRoots?: string[];
  /**
   * The signer of the registry tokens Airlock issues for its own pushes (models:publish) when the
   * registry asks for one; until the console keeps its own registry-token certificate, tests and
   * installations pass one here. Absent: a registry that challenges is refused with a clear error.
   */
  modelsRegistryTokens?: import('./models/handlers').RegistryTokens;
  version?: string;
}

/** A signed-in (or not yet) user as the dispatcher sees them. */
export interface SessionInfo {
  id: string;
  /** The signed-in account's identity (users.uid), never reused by a later account. */
  uid: string;
  user: string;
  roles: Role[];
  /** Set while the session may call only `whileRestricted` channels (forced password change, TOTP enrolment). */
  restriction?: 'password-change' | 'totp-enrolment' | null;
}

/**
 * One client of the core: an Electron window, a browser tab's cookie, one CLI run.
 * The shell keeps it; the renderer never sees the session id.
 */
export interface ClientContext {
  readonly id: string;
  readonly shell: ShellKind;
  /** Where the client connects from, for audit ("127.0.0.1", "electron:window-1", "cli:pid 123"). */
  readonly source: string;
  session: SessionInfo | null;
  /**
   * Push an event (terminal bytes, progress) to this client only. Checked against the contract's
   * event table before it leaves (an invalid payload is not sent and is reported once, never
   * thrown here), then queued in the client's bounded outgoing queue (electron/core/outbox.ts).
   */
  emit<E extends EventName>(event: E, payload: EventPayload<E>): void;
  /** That queue, for a stream that must pause rather than pile up (terminal output). Absent on test fakes: no backpressure. */
  readonly flow?: Flow;
  /** The browser shell's: mint a one-time sign-in link for another person (session:signInLink). Absent elsewhere. */
  readonly signInLink?: () => { url: string; expiresAt: string };
}

export interface Core {
  readonly config: Required<Pick<CoreConfig, 'dataDir' | 'shell'>> & CoreConfig;
  /** `emit` (Transport.send), `buffered` and `overflow` are the shell's transport for this client's events. */
  newClient(opts: {
    shell: ShellKind;
    source: string;
    emit?: Transport['send'];
    buffered?: Transport['buffered'];
    overflow?: Transport['overflow'];
    signInLink?: ClientContext['signInLink'];
  }): ClientContext;
  /** The one entry point of every shell: session → role → parse → service → audit → parse out. */
  dispatch(client: ClientContext, channel: unknown, input: unknown): Promise<Result<unknown>>;
  /** Sign out, close the client's terminals and operations. */
  closeClient(client: ClientContext): Promise<void>;
  close(): Promise<void>;
}
