/**
 * SSH connections, for code outside `ssh/`: the public API of `ssh/connection/` (types.ts: the
 * interfaces; connect.ts: probe and connect; channels.ts: exec, shell, SFTP, tunnels on an open
 * connection; sftp-session.ts, pty.ts: the channels). Code inside `ssh/` imports those files directly.
 */
export { connect, probeHostKey } from './connection/connect';
export {
  DEFAULT_MAX_OUTPUT_BYTES,
  SFTP_OPEN,
  type ChannelOptions,
  type ExecOptions,
  type ExecResult,
  type PtySession,
  type SftpSession,
  type SftpStat,
  type SshAuth,
  type SshConnection,
  type SshOptions,
  type SshTarget,
} from './connection/types';
