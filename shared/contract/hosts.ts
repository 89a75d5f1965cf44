import { z } from 'zod';
import { channel } from './channel';
import { Address, FileText, Fingerprint, HostName, NoInput, Port, RequestId, SshUser, Empty } from './common';

/** A host label: short, no spaces. */
export const HostLabel = z.string().min(1).max(64).regex(/^[A-Za-z0-9_.-]+$/, 'letters, digits, _ . -');

export const Gpu = z.object({
  index: z.number().int().nonnegative(),
  name: z.string(),
  uuid: z.string().nullable(),
  memoryTotalMiB: z.number().nullable(),
  memoryUsedMiB: z.number().nullable(),
  utilizationPct: z.number().nullable(),
  temperatureC: z.number().nullable(),
  powerDrawW: z.number().nullable(),
  eccMode: z.string().nullable(),
  persistenceMode: z.string().nullable(),
  throttleReasons: z.string().nullable(),
});
export type Gpu = z.infer<typeof Gpu>;

export const Inventory = z.object({
  scannedAt: z.string(),
  hostname: z.string(),
  os: z.string(),
  kernel: z.string(),
  driverVersion: z.string().nullable(),
  gpus: z.array(Gpu),
  /** Why the GPU part is missing, when it is (no nvidia-smi, parse error): shown, never hidden. */
  gpuError: z.string().nullable(),
});
export type Inventory = z.infer<typeof Inventory>;

export const HostStatus = z.enum(['unconfirmed', 'unknown', 'reachable', 'unreachable', 'key-changed', 'auth-failed', 'error']);

export const Host = z.object({
  name: HostName,
  address: Address,
  port: Port,
  user: SshUser,
  /** Null until an operator confirms the host key; Airlock refuses to connect until then. */
  fingerprint: Fingerprint.nullable(),
  keyType: z.string().nullable(),
  addedAt: z.string(),
  status: HostStatus,
  lastError: z.string().nullable(),
  lastSeenAt: z.string().nullable(),
  inventory: Inventory.nullable(),
  /** Labels (enclave, rack, role) that provisioning selectors name as `label:<x>`. */
  labels: z.array(z.string()),
});
export type Host = z.infer<typeof Host>;

export const ProbeResult = z.object({
  address: Address,
  port: Port,
  fingerprint: Fingerprint,
  keyType: z.string(),
  /** Set when this address:port is already pinned; a differing fingerprint means the key changed. */
  pinned: z.object({ host: HostName, fingerprint: Fingerprint }).nullable(),
  /**
   * What imported known_hosts keys say about the presented key: `match` (an imported key for this
   * address:port, hashed or not, is this one), `differs` (imported keys exist for it, none is this
   * one: a changed key, or a spoofed host), `revoked` (an `@revoked` line names it: never pinned),
   * `none` (nothing imported for it).
   */
  knownHosts: z.enum(['none', 'match', 'differs', 'revoked']),
});

export const ScanOutcome = z.object({
  name: HostName,
  ok: z.boolean(),
  status: HostStatus,
  error: z.object({ code: z.string(), message: z.string() }).nullable(),
  inventory: Inventory.nullable(),
  ms: z.number(),
  /**
   * The host's models directory (docs/keys-fscrypt.md), only for a host whose directory Airlock
   * encrypted: `locked` after a reboot until the key is delivered again; `unlocked: true` when this
   * scan delivered it (the key hierarchy was unsealed). Absent for other hosts (no extra command).
   */
  models: z
    .object({
      state: z.enum(['unencrypted', 'locked', 'unlocked', 'absent', 'unsupported']).nullable(),
      keyId: z.string().nullable(),
      unlocked: z.boolean(),
      error: z.object({ code: z.string(), message: z.string() }).nullable(),
    })
    .optional(),
});
export type ScanOutcome = z.infer<typeof ScanOutcome>;

export const ImportOutcome = z.object({
  added: z.array(z.object({ name: HostName, address: Address, port: Port, fingerprint: Fingerprint.nullable() })),
  /** Lines or patterns not imported; `line` is the file's 1-based line (null when not line-based). */
  skipped: z.array(z.object({ line: z.number().int().positive().nullable(), entry: z.string(), reason: z.string() })),
  /**
   * Hashed known_hosts entries (`|1|salt|hash`): kept, and pinned when a host is added (or
   * confirmed) by an address they match, with no fingerprint given (refused if the key is in
   * `revoked`). Empty for ssh_config.
   */
  kept: z.array(z.object({ line: z.number().int().positive(), keyType: z.string(), fingerprint: Fingerprint })),
  /**
   * `@revoked` keys: refused for every host from now on. `hosts` names enrolled hosts pinned to
   * that key, which Airlock no longer connects to until re-pinned. Empty for ssh_config.
   */
  revoked: z.array(z.object({ line: z.number().int().positive(), keyType: z.string(), fingerprint: Fingerprint, hosts: z.array(HostName) })),
});

export type ImportOutcome = z.infer<typeof ImportOutcome>;
export type ProbeResult = z.infer<typeof ProbeResult>;

export const hosts = {
  'hosts:probe': channel({
    in: z.object({ address: Address, port: Port.default(22) }).strict(),
    out: ProbeResult,
    roles: ['admin'],
    target: 'address',
    summary: "Connect to an address and read its host key's SHA256 fingerprint (nothing is sent but the key exchange)",
  }),
  'hosts:add': channel({
    in: z
      .object({
        name: HostName,
        address: Address,
        port: Port.default(22),
        user: SshUser.default('root'),
        /** Omitted: pin the key an imported known_hosts (hashed or not) holds for this address:port. */
        fingerprint: Fingerprint.optional(),
      })
      .strict(),
    out: Host,
    roles: ['admin'],
    target: 'name',
    summary: 'Enrol a host, pinning the host-key fingerprint the operator confirmed (or, with none given, the one an imported known_hosts holds for the address)',
  }),
  'hosts:confirm': channel({
    in: z.object({ name: HostName, fingerprint: Fingerprint.optional() }).strict(),
    out: Host,
    roles: ['admin'],
    target: 'name',
    summary: 'Pin the host-key fingerprint of an imported, unconfirmed host (after probing it; with none given, the one an imported known_hosts holds)',
  }),
  'hosts:repin': channel({
    in: z
      .object({
        name: HostName,
        /** The pinned key the person saw beside the new one: refused if the pin changed meanwhile. */
        pinned: Fingerprint,
        /** The key the host presented (hosts:probe), compared on the host by a person. */
        fingerprint: Fingerprint,
      })
      .strict(),
    out: Host,
    roles: ['admin'],
    target: 'name',
    summary: "Replace a host's pinned key with the one it presents now, after a person compared the two (refused if the host presents yet another key)",
  }),
  'hosts:update': channel({
    in: z
      .object({ name: HostName, address: Address.optional(), port: Port.optional(), user: SshUser.optional() })
      .strict()
      .refine((v) => v.address !== undefined || v.port !== undefined || v.user !== undefined, 'give an address, a port or a user to change'),
    out: Host,
    roles: ['admin'],
    target: 'name',
    summary: "Change a host's address, port or SSH user (its pinned key stays: the next connection must present it)",
  }),
  'hosts:remove': channel({
    in: z.object({ name: HostName }).strict(),
    out: Empty,
    roles: ['admin'],
    target: 'name',
    stepUp: true,
    summary: 'Remove a host and its pinned key',
  }),
  'hosts:setLabels': channel({
    in: z.object({ name: HostName, labels: z.array(HostLabel).max(32) }).strict(),
    out: Host,
    roles: ['admin'],
    target: 'name',
    summary: 'Set the labels of a host (provisioning selects hosts by label:<x>)',
  }),
  'hosts:list': channel({
    in: NoInput,
    out: z.array(Host),
    roles: ['admin', 'officer', 'auditor'],
    summary: 'List enrolled hosts with status and inventory',
  }),
  'hosts:scan': channel({
    in: z
      .object({
        names: z.array(HostName).max(10000).optional(),
        requestId: RequestId.optional(),
        timeoutMs: z.number().int().min(100).max(600000).optional(),
      })
      .strict(),
    out: z.array(ScanOutcome),
    roles: ['admin'],
    summary: 'Scan hosts (all when none named) for OS and GPU inventory, concurrently with a bounded pool',
  }),
  'hosts:importKnownHosts': channel({
    in: z.object({ text: FileText, user: SshUser.default('root') }).strict(),
    out: ImportOutcome,
    roles: ['admin'],
    summary: 'Enrol hosts from an OpenSSH known_hosts file (fingerprints pinned from the file; hashed entries kept to pin hosts added later by address; @revoked keys refused from then on)',
  }),
  'hosts:importSshConfig': channel({
    in: z.object({ text: FileText }).strict(),
    out: ImportOutcome,
    roles: ['admin'],
    summary: 'Import Host entries from an OpenSSH client config as unconfirmed hosts (each needs its key confirmed)',
  }),
} as const;
