import crypto from 'node:crypto';
import type { HostSecret, HostSecretDelivery } from '../../../shared/contract/keys';
import { AirlockError } from '../../../shared/domain/errors';
import type { Db } from '../db/db';
import type { AreaHandlers } from '../dispatch';
import type { HostsService } from '../hosts/service';
import { checkHostPath, q, Remote } from '../provision/remote';
import type { KeyService } from './service';

/**
 * Host secrets sealed under the `host-secrets` KEK (issue 12, docs/keys.md "Host secrets"): the
 * inference API key of each host's inference unit is a `host-secrets` data key that Airlock
 * generates, keeps wrapped in its database, and delivers over SSH on stdin into the host's key
 * file (0600, written under a temporary name and renamed). It is never written to the console's
 * disk in the clear, never logged and never audited (only its id and KEK version are).
 *
 * Host TLS private keys are not here on purpose: they are made on the host and never leave it
 * (ca-ops.ts), so Airlock has nothing of theirs to seal.
 *
 * The key text is a JavaScript string (the HTTP header and the SSH stdin take strings): the data
 * key's bytes are zeroed as soon as the text is derived, the string itself cannot be (best effort).
 */

/** The slice of the key service host secrets use (KeyService implements it). */
export type HostSecretKeys = Pick<KeyService, 'status' | 'putDataKey' | 'openDataKey'>;

export const HOST_SECRETS_CHANNELS = ['keys:hostSecrets', 'keys:redeliverHostSecret'] as const;
export type HostSecretsChannel = (typeof HOST_SECRETS_CHANNELS)[number];

export const INFERENCE_KEY_KIND = 'inference-api-key';
/** Where the inference step writes its systemd units (steps/inference.ts). */
export const INFERENCE_UNIT_DIR = '/etc/systemd/system';
/** What the plan and the verify say when there is no hierarchy yet: the host makes its own key, as before issue 12. */
export const NO_HIERARCHY_NOTE = 'API key made on the host: no key hierarchy to seal it under';

const ID = /^inference-api-key\/([A-Za-z0-9][A-Za-z0-9_.-]{0,63})\/([a-z0-9][a-z0-9_-]{0,63})$/;

/** The data key id of a host's inference API key: one per host and unit, so a host's two servers never share a key. */
export function inferenceKeyId(host: string, unit: string): string {
  const id = `${INFERENCE_KEY_KIND}/${host}/${unit}`;
  if (!ID.test(id)) throw new AirlockError('INVALID_INPUT', `'${host}' and '${unit}' do not make a host secret id (inference-api-key/HOST/UNIT).`);
  return id;
}

/** The host and unit an inference key id names, or null for anything else. */
export function parseHostSecretId(id: string): { kind: typeof INFERENCE_KEY_KIND; host: string; unit: string } | null {
  const m = ID.exec(id);
  return m ? { kind: INFERENCE_KEY_KIND, host: m[1]!, unit: m[2]! } : null;
}

/** The API key text of a data key: base64url of its 32 bytes (43 characters, no padding), what clients send as `Bearer`. */
export function apiKeyText(key: Buffer): string {
  return key.toString('base64url');
}

const sha256 = (s: string) => crypto.createHash('sha256').update(s, 'utf8').digest('hex');

/** The message of every refusal while the hierarchy is sealed (the provisioning step's, and redelivery's). */
export function sealedMessage(threshold: number | null, what: string): string {
  const n = threshold === null ? 'the threshold of' : String(threshold);
  return `The host-secrets key is sealed: unseal the hierarchy (${n} officers) and run again. ${what} is kept under it.`;
}

/**
 * Where a host's API key comes from: `host` when there is no key hierarchy (none was given, or no
 * genesis yet: the host makes its own key, as before), `sealed` when the hierarchy is unsealed.
 * A hierarchy that exists but is sealed fails closed (KEY_UNAVAILABLE): falling back to a key the
 * host makes would silently leave a secret outside the customer's keys.
 */
export function hostSecretsSource(keys: HostSecretKeys | undefined, what: string): 'host' | 'sealed' {
  if (!keys) return 'host';
  const s = keys.status();
  if (!s.initialised) return 'host';
  if (s.sealed) throw new AirlockError('KEY_UNAVAILABLE', sealedMessage(s.threshold, what));
  return 'sealed';
}

/** The sealed API key of a host's unit as text, or null when Airlock has not made one yet. Read-only. */
export function sealedApiKey(keys: HostSecretKeys, host: string, unit: string): string | null {
  let key: Buffer;
  try {
    key = keys.openDataKey('host-secrets', inferenceKeyId(host, unit));
  } catch (e) {
    if (e instanceof AirlockError && e.code === 'NOT_FOUND') return null;
    throw e;
  }
  try {
    return apiKeyText(key);
  } finally {
    key.fill(0);
  }
}

/** The sealed API key of a host's unit, made first (32 random bytes, wrapped by the current `host-secrets` KEK) when there is none. */
export function ensureApiKey(keys: HostSecretKeys, host: string, unit: string): string {
  const id = inferenceKeyId(host, unit);
  try {
    keys.putDataKey('host-secrets', id, { bytes: 32 });
  } catch (e) {
    // Made already (by an earlier run, or a concurrent one): that key is the host's.
    if (!(e instanceof AirlockError && e.code === 'CONFLICT')) throw e;
  }
  return sealedApiKey(keys, host, unit)!;
}

/**
 * The host's key file compared with `want` without the key crossing the network: the host prints
 * the file's mode and SHA-256. `differs` covers another key and a mode other than 0600.
 */
export async function keyFileState(remote: Remote, path: string, want: string): Promise<'absent' | 'matches' | 'differs'> {
  const p = q(checkHostPath(path, 'apiKeyFile'));
  const r = await remote.sh(`if [ -f ${p} ]; then stat -c %a ${p} && sha256sum < ${p}; else exit 44; fi`);
  if (r.code === 44) return 'absent';
  if (r.code !== 0) throw new AirlockError('INTERNAL', `Reading the API key file ${path} on the host failed (exit ${r.code ?? r.signal ?? '?'}).`);
  const [mode, digest] = r.stdout.trim().split(/\s+/);
  return mode === '600' && digest === sha256(want) ? 'matches' : 'differs';
}

/** Writes the key into the host's file: on stdin, under a temporary name created 0600 (umask 077), then renamed (Remote.writeFile). */
export async function deliverApiKey(remote: Remote, path: string, text: string): Promise<void> {
  await remote.writeFile(checkHostPath(path, 'apiKeyFile'), text, '0600');
}

/**
 * The key file an inference unit Airlock wrote reads (`--api-key-file` of its ExecStart). Redelivery
 * takes the path from the host's unit so that it lands where the server reads it, whatever the
 * playbook chose; a unit Airlock did not write is refused rather than trusted.
 */
export function keyFileFromUnit(unitText: string, unit: string): string {
  const lines = unitText.split('\n');
  if (!lines[0]?.startsWith('# Written by Airlock')) throw new AirlockError('CONFLICT', `The ${unit} unit on the host was not written by Airlock: provision the host's inference service again, then redeliver.`);
  const exec = lines.find((l) => l.startsWith('ExecStart='));
  const args = exec ? exec.slice('ExecStart='.length).split(' ') : [];
  const at = args.indexOf('--api-key-file');
  const path = at >= 0 ? args[at + 1] : undefined;
  if (!path) throw new AirlockError('CONFLICT', `The ${unit} unit on the host names no --api-key-file: provision the host's inference service again, then redeliver.`);
  return checkHostPath(path, `The ${unit} unit's --api-key-file`);
}

export interface HostSecretsDeps {
  db: Db;
  keys: HostSecretKeys;
  hosts: Pick<HostsService, 'get' | 'lease'>;
  /** Where the host's systemd units are (default {@link INFERENCE_UNIT_DIR}; unit tests point it at a directory of their own). */
  unitDir?: string;
  /** Per host command (default 15 s). */
  timeoutMs?: number;
}

interface Row {
  id: string;
  version: number;
  created_at: string;
}

/**
 * keys:hostSecrets and keys:redeliverHostSecret (spread into the keys area's handlers by
 * createKeysArea). The list reads the `host-secrets` data keys' metadata (id, KEK version,
 * created) from the hierarchy's table: KeyService has no listing, and the values are never read
 * for it, so it works sealed.
 */
export function hostSecretsHandlers(d: HostSecretsDeps): Pick<AreaHandlers<'keys'>, HostSecretsChannel> {
  const unitDir = d.unitDir ?? INFERENCE_UNIT_DIR;
  const timeoutMs = d.timeoutMs ?? 15_000;
  const rows = (): Row[] =>
    d.db.prepare("SELECT id, version, created_at FROM data_keys WHERE domain = 'host-secrets' AND substr(id, 1, 18) = 'inference-api-key/' ORDER BY id").all() as Row[];
  const view = (r: Row): HostSecret | null => {
    const p = parseHostSecretId(r.id);
    return p && { host: p.host, unit: p.unit, id: r.id, kind: p.kind, kekVersion: r.version, createdAt: r.created_at };
  };
  const list = (host?: string): HostSecret[] => rows().flatMap((r) => view(r) ?? []).filter((s) => host === undefined || s.host === host);

  return {
    'keys:hostSecrets': (_ctx, i) => list(i.host),

    'keys:redeliverHostSecret': async (ctx, i) => {
      const parsed = parseHostSecretId(i.id);
      if (!parsed || parsed.host !== i.host) throw new AirlockError('INVALID_INPUT', `'${i.id}' is not a host secret of ${i.host} (inference-api-key/${i.host}/UNIT; see keys host-secrets).`);
      const h = d.hosts.get(i.host);
      const what = `The inference API key of ${h.name} (${parsed.unit})`;
      if (hostSecretsSource(d.keys, what) === 'host') {
        throw new AirlockError('NOT_FOUND', `There is no key hierarchy yet, so Airlock holds no host secrets: ${h.name} made its own API key. Run the genesis ceremony, then provision the host again.`);
      }
      const secret = list(h.name).find((s) => s.id === i.id);
      const text = secret ? sealedApiKey(d.keys, h.name, parsed.unit) : null;
      if (!secret || text === null) throw new AirlockError('NOT_FOUND', `Airlock holds no sealed key '${i.id}': provision the host's inference service (its step makes and delivers one).`);
      const conn = await d.hosts.lease(h.name, ctx.sshAuth(), ctx.signal);
      try {
        const remote = new Remote(conn, h.user === 'root', ctx.signal, timeoutMs);
        const unitFile = `${unitDir}/${parsed.unit}.service`;
        const unitText = await remote.readFile(unitFile, 64 * 1024);
        if (unitText === null) throw new AirlockError('NOT_FOUND', `There is no ${parsed.unit} unit on ${h.name} (${unitFile}): provision its inference service, which delivers the key itself.`);
        const path = keyFileFromUnit(unitText, parsed.unit);
        const before = await keyFileState(remote, path, text);
        let restarted = false;
        if (before !== 'matches') {
          await deliverApiKey(remote, path, text);
          // The server reads its key file when it starts: restart it if it is meant to run.
          const u = q(parsed.unit);
          const r = await remote.must(`if systemctl is-active --quiet ${u} || systemctl is-enabled --quiet ${u}; then systemctl restart ${u} && echo restarted; fi`, `restarting ${parsed.unit}`, { timeoutMs: 120_000 });
          restarted = r.stdout.includes('restarted');
        }
        const outcome = before === 'matches' ? ('already' as const) : ('delivered' as const);
        ctx.auditDetail({ id: secret.id, kekVersion: secret.kekVersion, path, outcome, restarted });
        const out: HostSecretDelivery = { ...secret, path, outcome, restarted };
        return out;
      } finally {
        conn.close();
      }
    },
  };
}
