/**
 * What the rest of Airlock sees of an SSH connection: the target and credentials it is made with,
 * and the interfaces of a connection and of the channels opened on it (exec, SFTP, PTY, tunnels).
 */
import type { Duplex, Readable } from 'node:stream';
import type { SFTPWrapper } from 'ssh2';
import type { AirlockError } from '../../../../shared/domain/errors';

export interface SshTarget {
  address: string;
  port: number;
  user: string;
  /** The pinned host-key fingerprint; null means not confirmed yet, and nothing will be attempted. */
  fingerprint: string | null;
  /**
   * The pinned key's type, when known. A host with several host keys presents the one the client
   * prefers; restricting the offer to the pinned type makes it present that one, so a key imported
   * from known_hosts (say ecdsa) is not mistaken for a change when the host also has ed25519.
   */
  keyType?: string | null;
  /** Airlock's name for the host, for messages. */
  hostName?: string;
}

export interface SshAuth {
  /** OpenSSH or PEM private key text. Takes precedence over the agent. */
  privateKey?: string;
  /** ssh-agent socket path (SSH_AUTH_SOCK), used when no private key is given. */
  agent?: string | null;
}

export interface SshOptions {
  /** Bounds the whole connect: TCP, key exchange and authentication. Also the default for opening channels. */
  timeoutMs: number;
  signal?: AbortSignal;
  /** Interval of SSH-level keepalives once connected; three unanswered ones drop the connection. */
  keepaliveMs?: number;
  /**
   * Ask for zlib compression (`zlib@openssh.com` first). Off by default: on a cluster's network it
   * costs CPU for nothing, and an upload then takes ssh2's own, copying, write path (the fast path
   * refuses a compressed connection: ssh2-internals.ts).
   */
  compression?: boolean;
}

export interface ExecResult {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  /** Some output was dropped because stdout or stderr exceeded maxOutputBytes. */
  truncated: boolean;
}

export interface ExecOptions {
  timeoutMs: number;
  signal?: AbortSignal;
  /** Cap per stream (stdout and stderr each); default 4 MiB. */
  maxOutputBytes?: number;
  /**
   * What the command reads: a string, sent whole, or a stream, piped as it produces data (the
   * command's stdin ends when the stream does). Without it stdin is closed at once.
   */
  stdin?: string | Readable;
  /**
   * Called with each chunk of stdout as it arrives, uncapped and raw (host output: untrusted).
   * The result still holds the capped text. A callback that throws is ignored.
   */
  onStdout?(chunk: Buffer): void;
  /** As {@link ExecOptions.onStdout}, for stderr. */
  onStderr?(chunk: Buffer): void;
}

/** What {@link SftpSession.stat} tells about a path. */
export interface SftpStat {
  size: number;
  /** Permission bits and file type, as stat(2) gives them. */
  mode: number;
  isFile: boolean;
  isDirectory: boolean;
  /** Seconds since the epoch. */
  mtime: number;
}

/** SFTP open flags (draft-ietf-secsh-filexfer-02), for {@link SftpSession.open}. */
export const SFTP_OPEN = { READ: 0x01, WRITE: 0x02, APPEND: 0x04, CREAT: 0x08, TRUNC: 0x10, EXCL: 0x20 } as const;

/**
 * An SFTP session (one `sftp` subsystem channel) on an {@link SshConnection}. Every promise
 * settles: requests are bounded by the session's timeout, and fail with the connection's own
 * error (HOST_UNREACHABLE, TIMEOUT, CANCELLED) once it is gone. Closed with the connection.
 */
export interface SftpSession {
  /** ssh2's SFTP client underneath, for what is not wrapped here (no timeouts there). */
  readonly raw: SFTPWrapper;
  /** Whether the server announced an extension, e.g. `posix-rename@openssh.com`, `fsync@openssh.com`. */
  hasExtension(name: string): boolean;
  /** Open a file; `flags` is an {@link SFTP_OPEN} combination. Resolves to the handle. */
  open(path: string, flags: number, mode?: number): Promise<Buffer>;
  /**
   * Write `length` bytes of `data` from `offset` at file `position`. Callback style and untimed, for
   * pipelining: keep many writes outstanding and bound their wait yourself. The bytes are copied
   * before this returns, so `data` may be reused at once. The callback is called exactly once.
   */
  write(handle: Buffer, data: Buffer, offset: number, length: number, position: number, cb: (err: AirlockError | null) => void): void;
  /** fsync(2) on the host (`fsync@openssh.com`). Resolves false, doing nothing, when the server lacks it. */
  fsync(handle: Buffer): Promise<boolean>;
  fchmod(handle: Buffer, mode: number): Promise<void>;
  close(handle: Buffer): Promise<void>;
  /** Attributes of a path (following symlinks), or null when nothing is there. */
  stat(path: string): Promise<SftpStat | null>;
  /** Rename, replacing `to` atomically (`posix-rename@openssh.com`; plain SFTP rename where the server lacks it, which refuses an existing target). */
  rename(from: string, to: string): Promise<void>;
  /** Remove a file; no error when it is already gone. */
  unlink(path: string): Promise<void>;
  /** Create one directory (not its parents). */
  mkdir(path: string, mode?: number): Promise<void>;
  /** Set a file's size (cut it, or extend it with a hole). */
  truncate(path: string, size: number): Promise<void>;
  /**
   * Close the session's channel; pending requests fail with CANCELLED. Resolves once the server
   * has closed it too (OpenSSH's sftp-server has then handled every request it received), or
   * after at most 5 s, or at once when the connection is gone.
   */
  end(): Promise<void>;
  readonly closed: boolean;
}

export interface PtySession {
  /** Raw bytes from the PTY. Data is held back (flow-controlled) until the first callback is registered. */
  onData(cb: (chunk: Buffer) => void): void;
  /** Called once: with the exit code, or null and a reason (a signal, a lost connection). */
  onExit(cb: (code: number | null, reason: string | null) => void): void;
  write(data: string | Buffer): void;
  resize(cols: number, rows: number): void;
  /**
   * Stop reading the channel (the reader is slow): ssh2 stops widening the SSH window, so the host
   * stops sending once it is full. Nothing is lost; `resume` delivers what was held back.
   */
  pause(): void;
  resume(): void;
  close(): void;
}

export interface ChannelOptions {
  /** Bounds the channel open (and, for SFTP, each request); default: the connect timeout. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface SshConnection {
  readonly fingerprint: string;
  /** The host as messages name it: Airlock's name and address, e.g. `gpu-1 (10.0.0.5:22)`. */
  readonly label: string;
  /** Whether the connection is gone (closed by us, or lost). */
  readonly closed: boolean;
  exec(command: string, opts: ExecOptions): Promise<ExecResult>;
  shell(opts: { cols: number; rows: number; term?: string }): Promise<PtySession>;
  /** Open an SFTP session; it is closed with the connection. */
  sftp(opts?: ChannelOptions): Promise<SftpSession>;
  /**
   * A `direct-tcpip` tunnel: a byte stream to `host:port` as the host itself connects to it (so
   * `127.0.0.1` is the host's loopback). Destroyed, with the connection's error, when the
   * connection goes. Data from it is untrusted.
   */
  forwardOut(host: string, port: number, opts?: ChannelOptions): Promise<Duplex>;
  close(): void;
  onClose(cb: () => void): void;
}

export const DEFAULT_MAX_OUTPUT_BYTES = 4 * 1024 * 1024;
