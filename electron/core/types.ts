import type { Result } from '../../shared/domain/errors';
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
  /** KDF cost; tests lower it, production keeps the defaults. */
  kdf?: { memoryKiB: number; iterations: number };
  /** Idle minutes before a session expires. */
  sessionIdleMinutes?: number;
  version?: string;
}

/** A signed-in (or not yet) user as the dispatcher sees them. */
export interface SessionInfo {
  id: string;
  user: string;
  roles: Role[];
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
  /** Push an event (terminal bytes, progress) to this client only. */
  emit(event: string, payload: unknown): void;
}

export interface Core {
  readonly config: Required<Pick<CoreConfig, 'dataDir' | 'shell'>> & CoreConfig;
  newClient(opts: { shell: ShellKind; source: string; emit?: (event: string, payload: unknown) => void }): ClientContext;
  /** The one entry point of every shell: session → role → parse → service → audit → parse out. */
  dispatch(client: ClientContext, channel: unknown, input: unknown): Promise<Result<unknown>>;
  /** Sign out, close the client's terminals and operations. */
  closeClient(client: ClientContext): Promise<void>;
  close(): Promise<void>;
}
