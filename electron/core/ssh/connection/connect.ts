/** Opening a connection: reading a host's key (probe), and connecting to a host whose key is pinned. */
import ssh2 from 'ssh2';
import type { ConnectConfig } from 'ssh2';
import { AirlockError } from '../../../../shared/domain/errors';
import { FINGERPRINT_RE, fingerprintOfKey, keyTypeOfBlob } from '../fingerprint';
import { sanitizeHostText } from '../sanitize';
import { Connection } from './channels';
import { clampTimeout, hostPort, label } from './common';
import { cancelled, mapError, type Ssh2Error } from './errors';
import type { SshAuth, SshConnection, SshOptions, SshTarget } from './types';

const { Client } = ssh2;
type Ssh2Client = InstanceType<typeof Client>;

const DEFAULT_KEEPALIVE_MS = 15_000;
const KEEPALIVE_COUNT_MAX = 3;

/** ssh2's names for the algorithms that present a key of a given type. */
function hostKeyAlgorithmsFor(keyType: string | null | undefined): string[] | undefined {
  if (!keyType) return undefined;
  if (keyType === 'ssh-rsa') return ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'];
  if (keyType === 'ssh-ed25519' || /^ecdsa-sha2-nistp(256|384|521)$/.test(keyType) || keyType === 'ssh-dss') return [keyType];
  return undefined;
}

interface Attempt<T> {
  promise: Promise<T>;
  client: Ssh2Client;
}

/**
 * The shared machinery of probe and connect: one ssh2 client, one deadline covering everything up
 * to `ready`, cancellation that destroys the socket, and a promise that always settles.
 */
function attempt<T>(
  where: string,
  opts: SshOptions,
  build: (client: Ssh2Client) => { config: ConnectConfig; onError: (err: unknown) => AirlockError | T; onReady?: () => T },
): Attempt<T> {
  const client = new Client();
  const promise = new Promise<T>((resolve, reject) => {
    let settled = false;
    const finish = (ok: boolean, v: T | AirlockError) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      if (ok) resolve(v as T);
      else {
        // Destroy, not end: nothing more is to be sent to a host we are giving up on.
        client.destroy();
        reject(v);
      }
    };
    const onAbort = () => finish(false, cancelled(`Connecting to ${where}`));
    const timer = setTimeout(
      () => finish(false, new AirlockError('TIMEOUT', `Connecting to ${where} timed out after ${opts.timeoutMs} ms.`)),
      clampTimeout(opts.timeoutMs),
    );
    if (opts.signal?.aborted) return onAbort();
    opts.signal?.addEventListener('abort', onAbort, { once: true });

    const { config, onError, onReady } = build(client);
    const handle = (err: unknown) => {
      const r = onError(err);
      if (r instanceof AirlockError) finish(false, r);
      else finish(true, r);
    };
    // Never removed: ssh2 can emit errors after we settled, and an unhandled 'error' would crash the core.
    client.on('error', handle);
    client.on('close', () => handle(Object.assign(new Error('the connection closed before it was ready'), { level: 'protocol' })));
    if (onReady) client.on('ready', () => finish(true, onReady()));
    try {
      client.connect(config);
    } catch (err) {
      // ssh2 validates its config synchronously; an unreadable private key is the usual cause.
      const msg = sanitizeHostText(err instanceof Error ? err.message : String(err), 200);
      finish(false, new AirlockError('SSH_ERROR', `Could not start the SSH connection to ${where}: ${msg}`));
    }
  });
  return { promise, client };
}

/**
 * Read a host's key without authenticating: the verifier refuses every key, so the session ends
 * right after the key exchange and no user name or credential is ever sent. With `keyType`, only
 * that type is offered, so a host with several keys presents that one (the one to compare with).
 */
export async function probeHostKey(
  address: string,
  port: number,
  opts: SshOptions & { keyType?: string | null },
): Promise<{ fingerprint: string; keyType: string }> {
  const hostKeyAlgos = hostKeyAlgorithmsFor(opts.keyType);
  const where = hostPort(address, port);
  let seen: { fingerprint: string; keyType: string } | null = null;
  const { promise, client } = attempt<{ fingerprint: string; keyType: string }>(where, opts, () => ({
    config: {
      host: address,
      port,
      username: 'airlock-probe',
      readyTimeout: clampTimeout(opts.timeoutMs) + 1000,
      hostVerifier: (key: Buffer) => {
        seen = { fingerprint: fingerprintOfKey(key), keyType: keyTypeOfBlob(key) ?? 'unknown' };
        return false;
      },
      ...(hostKeyAlgos ? { algorithms: { serverHostKey: hostKeyAlgos as NonNullable<ConnectConfig['algorithms']>['serverHostKey'] } } : {}),
    },
    onError: (err) => seen ?? mapError(err, where),
  }));
  const result = await promise;
  // ssh2 ends the socket after a refused key already; this covers a server that keeps it open.
  client.destroy();
  return result;
}

/**
 * Open an authenticated SSH connection to a host whose key is pinned. A host whose key differs
 * from the pin gets nothing past the key exchange: the check runs before authentication starts.
 */
export async function connect(target: SshTarget, auth: SshAuth, opts: SshOptions): Promise<SshConnection> {
  const where = label(target.address, target.port, target.hostName);
  const pin = target.fingerprint;
  if (pin === null) {
    throw new AirlockError(
      'HOST_KEY_UNCONFIRMED',
      `The host key of ${where} has not been confirmed yet; Airlock does not connect to a host before its key is pinned.`,
    );
  }
  if (!FINGERPRINT_RE.test(pin)) {
    throw new AirlockError('INVALID_INPUT', `The pinned fingerprint of ${where} is not a SHA256 fingerprint.`);
  }
  if (opts.signal?.aborted) throw cancelled(`Connecting to ${where}`);

  let mismatch: string | null = null;
  const hostKeyAlgos = hostKeyAlgorithmsFor(target.keyType);
  const { promise } = attempt<SshConnection>(where, opts, (client) => {
    const config: ConnectConfig = {
      host: target.address,
      port: target.port,
      username: target.user,
      readyTimeout: clampTimeout(opts.timeoutMs) + 1000,
      keepaliveInterval: opts.keepaliveMs ?? DEFAULT_KEEPALIVE_MS,
      keepaliveCountMax: KEEPALIVE_COUNT_MAX,
      hostVerifier: (key: Buffer) => {
        const presented = fingerprintOfKey(key);
        if (presented !== pin) {
          mismatch = presented;
          return false;
        }
        return true;
      },
    };
    if (hostKeyAlgos) config.algorithms = { serverHostKey: hostKeyAlgos as NonNullable<ConnectConfig['algorithms']>['serverHostKey'] };
    if (opts.compression) config.algorithms = { ...config.algorithms, compress: ['zlib@openssh.com', 'zlib', 'none'] };
    // Both may be offered: ssh2 tries Airlock's own key first, then the agent's keys.
    if (auth.privateKey) config.privateKey = auth.privateKey;
    if (auth.agent) config.agent = auth.agent;
    return {
      config,
      onError: (err) => {
        if (mismatch) {
          return new AirlockError(
            'HOST_KEY_CHANGED',
            `Host key for ${where} changed: pinned ${pin}, presented ${mismatch}. Refusing to connect; nothing was sent.`,
          );
        }
        const e = err as Ssh2Error;
        if (hostKeyAlgos && e?.level === 'handshake' && /host key/i.test(String(e.message))) {
          return new AirlockError(
            'HOST_KEY_CHANGED',
            `Host ${where} no longer offers the pinned ${target.keyType} key (${pin}). Refusing to connect; nothing was sent.`,
          );
        }
        return mapError(err, where, target.user);
      },
      onReady: () => new Connection(client, where, pin, clampTimeout(opts.timeoutMs)),
    };
  });
  return promise;
}
