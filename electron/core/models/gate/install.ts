import crypto from 'node:crypto';
import fs from 'node:fs';
import { z } from 'zod';
import { AirlockError } from '../../../../shared/domain/errors';
import type { HostExec } from '../../keys/fscrypt';
import { shellQuote, shellQuoteScript } from '../../ssh/quote';

/**
 * Installing and driving the gate (`airlock-gate.py`, docs/gate.md) on a host over SSH exec: the
 * console copies the program, writes its config and the pinned policy key (and, for the `pull`
 * role, the token-signing key and chain), runs it as a systemd unit (the lab's systemctl
 * simulator runs the same unit), pushes policies and reads back `status.json`.
 *
 * Every file goes up in one host program run (`python3 -I -S -c`, the files on stdin, never argv):
 * each is written to `X.tmp`, fsynced, and only then renamed in the order given, and the directory
 * fsynced — so a host never holds half a file, and a policy's signature lands before its policy.
 */

export const GATE_DIR = '/etc/airlock/gate';
export const GATE_PATHS = {
  program: '/usr/local/lib/airlock-gate/airlock-gate.py',
  config: `${GATE_DIR}/gate.json`,
  pinnedKey: `${GATE_DIR}/policy-signing.pem`,
  policy: `${GATE_DIR}/policy.json`,
  signature: `${GATE_DIR}/policy.json.sig`,
  tokenKey: `${GATE_DIR}/token-key.pem`,
  tokenChain: `${GATE_DIR}/token-chain.pem`,
  state: '/var/lib/airlock-gate/state.json',
  status: '/run/airlock-gate/status.json',
  pid: '/run/airlock-gate/gate.pid',
  accessLog: '/var/log/airlock-gate/access.log',
  gateLog: '/var/log/airlock-gate/gate.log',
  unit: '/etc/systemd/system/airlock-gate.service',
} as const;
export const GATE_UNIT = 'airlock-gate.service';

const ADDR = z.string().regex(/^(\d{1,3}\.){3}\d{1,3}:\d{1,5}$/, 'an IPv4 ADDR:PORT');
export const GateConfig = z
  .object({
    host: z.string().min(1).max(253).regex(/^[A-Za-z0-9._-]+$/),
    roles: z.array(z.enum(['invoke', 'pull'])).min(1).max(2),
    listen: ADDR,
    upstream: ADDR.optional(),
    metricsListen: ADDR,
    registry: z
      .object({
        service: z.string().min(1).max(200),
        issuer: z.string().min(1).max(200),
        keyFile: z.literal(GATE_PATHS.tokenKey),
        chainFile: z.literal(GATE_PATHS.tokenChain),
        ttlSeconds: z.number().int().min(1).max(300),
      })
      .strict()
      .optional(),
  })
  .strict()
  .refine((c) => new Set(c.roles).size === c.roles.length, 'roles must not repeat')
  .refine((c) => !c.roles.includes('invoke') || c.upstream !== undefined, 'the invoke role needs an upstream')
  .refine((c) => !c.roles.includes('pull') || c.registry !== undefined, 'the pull role needs registry settings');
export type GateConfig = z.infer<typeof GateConfig>;

const Iso = z.string().regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
/** `/run/airlock-gate/status.json`, as the gate writes it after every load attempt (host output: parsed strictly). */
export const GateStatus = z
  .object({
    policyVersion: z.number().int().min(1).nullable(),
    policySha256: z.string().regex(/^[0-9a-f]{64}$/).nullable(),
    loadedAt: Iso.nullable(),
    lastRejected: z.object({ at: Iso, reason: z.enum(['signature', 'older', 'malformed', 'unreadable']), version: z.number().int().nullable() }).strict().nullable(),
  })
  .strict();
export type GateStatus = z.infer<typeof GateStatus>;

/**
 * The gate program's bytes. From sources it sits beside this module; the bundles (dist/node/cli.mjs,
 * dist/electron/main.mjs) have it beside them, copied there by scripts/build.mjs.
 */
export function gateProgram(): Buffer {
  const url = new URL('./airlock-gate.py', import.meta.url);
  try {
    return fs.readFileSync(url);
  } catch {
    throw new AirlockError('NOT_FOUND', `The gate program is missing from this installation (${url.pathname}); rebuild Airlock (node scripts/build.mjs).`);
  }
}


/**
 * The systemd unit: the host's own python3 in isolated mode (no environment, no site packages).
 * The gate faces the network and parses hostile requests, so systemd confines it: it can write only
 * its state, run and log directories, sees no home directories or devices, gets no new privileges
 * and keeps at most the capability to bind a port below 1024. (The lab's systemctl simulator
 * ignores these keys; a real host applies them.)
 */
export function gateUnit(python = '/usr/bin/python3'): string {
  return [
    '[Unit]',
    "Description=Airlock gate (enforces Airlock's signed policy)",
    'After=network.target',
    '',
    '[Service]',
    'Type=simple',
    `ExecStart=${python} -I -S ${GATE_PATHS.program} --config ${GATE_PATHS.config}`,
    'ExecReload=/bin/kill -HUP $MAINPID',
    'Restart=on-failure',
    'RestartSec=1',
    // Above the gate's own cap of 4096 client connections, plus their upstream connections.
    'LimitNOFILE=16384',
    'NoNewPrivileges=yes',
    'ProtectSystem=strict',
    'ProtectHome=yes',
    'PrivateTmp=yes',
    'PrivateDevices=yes',
    'ProtectKernelTunables=yes',
    'ProtectKernelModules=yes',
    'ProtectControlGroups=yes',
    'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX',
    'RestrictNamespaces=yes',
    'LockPersonality=yes',
    'CapabilityBoundingSet=CAP_NET_BIND_SERVICE',
    // Made by systemd at every start (/run is empty after a boot) and writable under ProtectSystem=strict.
    'StateDirectory=airlock-gate',
    'RuntimeDirectory=airlock-gate',
    'LogsDirectory=airlock-gate',
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ].join('\n');
}

/** logrotate: daily, two weeks kept; the gate reopens its logs on SIGHUP (reload). */
export const GATE_LOGROTATE = `/var/log/airlock-gate/*.log {
  daily
  rotate 14
  compress
  delaycompress
  missingok
  notifempty
  create 0640 root root
  postrotate
    systemctl reload ${GATE_UNIT} >/dev/null 2>&1 || true
  endscript
}
`;

/** Writes files atomically: every X.tmp first (fsync), then the renames in order, then the directory fsyncs. */
const WRITE_PY = String.raw`
import base64, hashlib, json, os, sys
spec = json.loads(sys.stdin.buffer.read(64 * 1024 * 1024))
done, dirs, sums = [], set(), []
for f in spec:
    d = os.path.dirname(f['path'])
    os.makedirs(d, mode=0o755, exist_ok=True)
    tmp = f['path'] + '.tmp'
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, f['mode'])
    try:
        os.fchmod(fd, f['mode'])
        os.write(fd, base64.b64decode(f['b64']))
        os.fsync(fd)
    finally:
        os.close(fd)
    done.append((tmp, f['path']))
    dirs.add(d)
for tmp, path in done:
    os.rename(tmp, path)
for tmp, path in done:
    with open(path, 'rb') as f:
        sums.append(hashlib.sha256(f.read()).hexdigest())
for d in sorted(dirs):
    fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
    os.fsync(fd)
    os.close(fd)
sys.stdout.write(json.dumps({'ok': True, 'sha256': sums}, separators=(',', ':')) + '\n')
`;

export interface GateFile {
  path: string;
  data: Buffer | string;
  mode: number;
}

export interface GateHostOptions {
  /** The host's Python 3 (stock Debian: /usr/bin/python3). */
  python?: string;
  timeoutMs?: number;
  signal?: AbortSignal;
}

async function run(conn: HostExec, cmd: string, what: string, o: GateHostOptions & { stdin?: string } = {}): Promise<string> {
  const r = await conn.exec(cmd, { timeoutMs: o.timeoutMs ?? 60_000, maxOutputBytes: 256 * 1024, ...(o.signal ? { signal: o.signal } : {}), ...(o.stdin !== undefined ? { stdin: o.stdin } : {}) });
  if (r.code !== 0) {
    // Host output is untrusted: only its length and exit code reach the message.
    throw new AirlockError('SSH_ERROR', `${what} failed on the host (exit ${r.code ?? r.signal ?? '?'}, ${r.stderr.length} bytes of errors); see the host's journal (journalctl -u ${GATE_UNIT}).`);
  }
  return r.stdout;
}

/** Writes `files` on the host atomically, renamed in the order given. */
export async function writeGateFiles(conn: HostExec, files: GateFile[], o: GateHostOptions = {}): Promise<void> {
  for (const f of files) {
    if (!/^\/[A-Za-z0-9._/-]+$/.test(f.path) || f.path.includes('/../') || f.path.includes('/./')) throw new AirlockError('INVALID_INPUT', `${JSON.stringify(f.path.slice(0, 120))} is not a host path the gate uses.`);
  }
  const spec = files.map((f) => ({ path: f.path, mode: f.mode, b64: Buffer.from(f.data).toString('base64') }));
  const out = await run(conn, `${shellQuote(o.python ?? '/usr/bin/python3')} -I -S -c ${shellQuoteScript(WRITE_PY)}`, 'Writing the gate files', { ...o, stdin: JSON.stringify(spec) });
  // What the host reads back from each path after the renames must be what was sent.
  const sums = files.map((f) => crypto.createHash('sha256').update(Buffer.from(f.data)).digest('hex'));
  if (out.trim() !== JSON.stringify({ ok: true, sha256: sums })) {
    if (/^\{"ok":true,"sha256":\[("[0-9a-f]{64}",?)*\]\}$/.test(out.trim())) throw new AirlockError('HASH_MISMATCH', 'Writing the gate files: a file on the host is not what was sent; nothing was started.');
    throw new AirlockError('PARSE_ERROR', 'Writing the gate files: the host did not confirm every file.');
  }
}

export interface InstallGate extends GateHostOptions {
  config: GateConfig;
  /** The pinned Ed25519 public key the policy must verify with (SPKI PEM). */
  policySigningKeyPem: string;
  /** The pull role's ES256 token key (PKCS#8 PEM) and its chain (leaf first, PEM). */
  tokenKeyPem?: string;
  tokenChainPem?: string;
  /** A first policy to put in place before the gate starts (else it starts with none: 503 for everything). */
  policy?: { bytes: Buffer; sig: string };
  /** How long to wait for the started gate's status.json. */
  startTimeoutMs?: number;
}

/**
 * Installs (or reinstalls) the gate on a host and (re)starts it: program, unit, config, pinned key,
 * token key and chain for `pull`; waits for the gate's first status.json and returns it.
 */
export async function installGate(conn: HostExec, o: InstallGate): Promise<GateStatus> {
  const cfg = GateConfig.parse(o.config);
  crypto.createPublicKey(o.policySigningKeyPem); // a key that does not parse is refused here, not on the host
  if (crypto.createPublicKey(o.policySigningKeyPem).asymmetricKeyType !== 'ed25519') throw new AirlockError('INVALID_INPUT', 'The pinned policy key must be an Ed25519 public key.');
  const files: GateFile[] = [
    { path: GATE_PATHS.program, data: gateProgram(), mode: 0o644 },
    { path: GATE_PATHS.unit, data: gateUnit(o.python), mode: 0o644 },
    { path: '/etc/logrotate.d/airlock-gate', data: GATE_LOGROTATE, mode: 0o644 },
    { path: GATE_PATHS.pinnedKey, data: o.policySigningKeyPem, mode: 0o644 },
    { path: GATE_PATHS.config, data: `${JSON.stringify(cfg, null, 2)}\n`, mode: 0o644 },
  ];
  if (cfg.roles.includes('pull')) {
    if (!o.tokenKeyPem || !o.tokenChainPem) throw new AirlockError('INVALID_INPUT', 'The pull role needs the token-signing key and its certificate chain.');
    files.push({ path: GATE_PATHS.tokenKey, data: o.tokenKeyPem, mode: 0o600 }, { path: GATE_PATHS.tokenChain, data: o.tokenChainPem, mode: 0o644 });
  }
  if (o.policy) files.push({ path: GATE_PATHS.signature, data: o.policy.sig, mode: 0o644 }, { path: GATE_PATHS.policy, data: o.policy.bytes, mode: 0o644 });
  await writeGateFiles(conn, files, o);
  await run(conn, `mkdir -p /var/lib/airlock-gate /run/airlock-gate /var/log/airlock-gate && rm -f ${GATE_PATHS.status} && systemctl daemon-reload && systemctl enable -q ${GATE_UNIT} && systemctl restart ${GATE_UNIT}`, 'Starting the gate', o);
  const deadline = Date.now() + (o.startTimeoutMs ?? 20_000);
  for (;;) {
    const st = await readGateStatus(conn, o);
    if (st) return st;
    if (Date.now() > deadline) throw new AirlockError('TIMEOUT', `The gate did not report its status within ${o.startTimeoutMs ?? 20_000} ms; see journalctl -u ${GATE_UNIT} on the host.`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Puts a signed policy in place (signature first, then the policy: the renames in that order). The gate picks it up within its poll (500 ms). */
export async function pushGatePolicy(conn: HostExec, p: { bytes: Buffer; sig: string }, o: GateHostOptions = {}): Promise<void> {
  await writeGateFiles(conn, [
    { path: GATE_PATHS.signature, data: p.sig, mode: 0o644 },
    { path: GATE_PATHS.policy, data: p.bytes, mode: 0o644 },
  ], o);
}

/** The gate's status.json, or null when there is none yet. */
export async function readGateStatus(conn: HostExec, o: GateHostOptions = {}): Promise<GateStatus | null> {
  const out = await run(conn, `cat ${GATE_PATHS.status} 2>/dev/null || true`, 'Reading the gate status', o);
  if (out.trim() === '') return null;
  let doc: unknown;
  try {
    doc = JSON.parse(out);
  } catch {
    throw new AirlockError('PARSE_ERROR', "The gate's status.json on the host is not JSON.");
  }
  const st = GateStatus.safeParse(doc);
  if (!st.success) throw new AirlockError('PARSE_ERROR', "The gate's status.json on the host is not in the gate's format.");
  return st.data;
}

/** Asks the gate to reload now (SIGHUP through its unit) instead of at its next poll. */
export async function reloadGate(conn: HostExec, o: GateHostOptions = {}): Promise<void> {
  await run(conn, `systemctl reload ${GATE_UNIT}`, 'Reloading the gate', o);
}

/** Waits until the gate reports `version` in force (or a rejection of it); returns the status seen. */
export async function waitForGatePolicy(conn: HostExec, version: number, o: GateHostOptions & { waitMs?: number } = {}): Promise<GateStatus> {
  const deadline = Date.now() + (o.waitMs ?? 10_000);
  for (;;) {
    const st = await readGateStatus(conn, o);
    if (st && (st.policyVersion === version || (st.lastRejected && st.lastRejected.version === version))) return st;
    if (Date.now() > deadline) throw new AirlockError('TIMEOUT', `The gate did not take up policy v${version} within ${o.waitMs ?? 10_000} ms (it reports v${st?.policyVersion ?? 'none'}).`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
