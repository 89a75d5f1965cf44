import type { z } from 'zod';
import type { ModelsStatus, ModelsUnlockResult } from '../../../shared/contract/keys';
import type { Host } from '../../../shared/contract/hosts';
import { AirlockError } from '../../../shared/domain/errors';
import type { Db } from '../db/db';
import type { AreaHandlers } from '../dispatch';
import type { HostsService } from '../hosts/service';
import type { SshAuth, SshConnection } from '../ssh/connection';
import { sanitizeHostText } from '../ssh/sanitize';
import { encryptModelsDir, fscryptKeyIdentifier, modelsStatus, modelsStore, refusal, unlockModels, type ModelsStatus as HostStatus } from './fscrypt';
import type { KeyService } from './service';

/**
 * Model weights at rest on GPU hosts, from the console (docs/keys-fscrypt.md): each host's models
 * directory is encrypted (fscrypt v2) under its own 64-byte `models` data key, which the hierarchy
 * keeps wrapped by the `models` KEK and Airlock delivers over SSH, on stdin, into the host's kernel
 * only (fscrypt.ts). Which key belongs to which host is migration 0010's `models_keys`.
 *
 * Crash-safe by order: the data key and its host row are one transaction, made before the host is
 * touched; a protection that stopped before the host confirmed it (`protected_at` null) is finished
 * by the next keys:protectModels with the same key (encrypting is idempotent under one key).
 */

export const MODELS_CHANNELS = ['keys:modelsStatus', 'keys:protectModels', 'keys:unlockModels'] as const;
export type ModelsChannel = (typeof MODELS_CHANNELS)[number];

/** Where the models live on a GPU host (the lab's and the provisioning steps' layout). */
export const DEFAULT_MODELS_DIR = '/srv/models';
/** Hosts unlocked at once by keys:unlockModels (a rack after a power cut, not the whole fleet at once). */
export const DEFAULT_UNLOCK_CONCURRENCY = 8;
/** Ids tried for a host's new key (`models.<host>.<n>`) before giving up. */
const MAX_KEY_GENERATIONS = 1000;

export interface ModelsKeysDeps {
  db: Db;
  keys: Pick<KeyService, 'putDataKey' | 'openDataKey' | 'status'>;
  hosts: Pick<HostsService, 'get' | 'list' | 'lease'>;
  now: () => Date;
  /** The models directory on every host; default {@link DEFAULT_MODELS_DIR}. */
  dir?: string;
  concurrency?: number;
  /** Per host command (the host program's own default when omitted). */
  timeoutMs?: number;
}

interface KeyRow {
  host: string;
  key_id: string;
  identifier: string;
  dir: string;
  created_at: string;
  protected_at: string | null;
}

type Status = z.input<typeof ModelsStatus>;
type UnlockResult = z.input<typeof ModelsUnlockResult>;

/** KEY_UNAVAILABLE unless the hierarchy exists and is unsealed, saying what to do. */
function requireUnsealed(keys: ModelsKeysDeps['keys'], what: string): void {
  const s = keys.status();
  if (!s.initialised) throw new AirlockError('KEY_UNAVAILABLE', `${what} needs the key hierarchy, and there is none yet: run the genesis ceremony first (keys genesis).`);
  if (s.sealed) {
    throw new AirlockError(
      'KEY_UNAVAILABLE',
      `${what} needs the key hierarchy unsealed, and it is sealed: ${s.threshold ?? 'the threshold of'} officers must unseal it first (an unseal ceremony, or --share FILE with this command on the CLI).`,
    );
  }
}

/** A user-facing message from anything thrown while talking to a host (host text sanitized, bounded). */
function failure(e: unknown): { code: string; message: string } {
  if (e instanceof AirlockError) return { code: e.code, message: sanitizeHostText(e.message, 400) };
  return { code: 'INTERNAL', message: sanitizeHostText(e instanceof Error ? e.message : String(e), 400) };
}

/** Runs `fn` for each item, at most `limit` at once; results in the items' order. */
async function bounded<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return out;
}

/**
 * Delivering hosts' models keys again (keys:unlockModels, and the unlock an unseal starts when asked):
 * shared by the handlers and the keys area, so both deliver a key the same way.
 */
export function modelsUnlocker(d: ModelsKeysDeps) {
  const defaultDir = d.dir ?? DEFAULT_MODELS_DIR;
  const concurrency = d.concurrency ?? DEFAULT_UNLOCK_CONCURRENCY;
  const row = (host: string) => d.db.prepare('SELECT * FROM models_keys WHERE host = ?').get(host) as KeyRow | undefined;
  const fsOpts = (h: Host, signal: AbortSignal) => ({ sudo: h.user !== 'root', signal, ...(d.timeoutMs ? { timeoutMs: d.timeoutMs } : {}) });

  async function onHost<T>(h: Host, auth: SshAuth, signal: AbortSignal, fn: (conn: SshConnection) => Promise<T>): Promise<T> {
    const conn = await d.hosts.lease(h.name, auth, signal);
    try {
      return await fn(conn);
    } finally {
      conn.close();
    }
  }

  /** The contract's view: the key id only when the host's policy names that key (or is not encrypted yet). */
  const kekVersion = (keyId: string) =>
    (d.db.prepare("SELECT version FROM data_keys WHERE domain = 'models' AND id = ?").get(keyId) as { version: number } | undefined)?.version;
  const view = (host: string, st: HostStatus, rec: KeyRow | undefined, dir: string): Status => {
    const keyId = rec && (st.identifier === null || st.identifier === rec.identifier) ? rec.key_id : null;
    // Which models KEK version wraps the host's key: the Keys page's hosts per version.
    const version = keyId ? kekVersion(keyId) : undefined;
    return { host, state: st.state, keyId, ...(version !== undefined ? { kekVersion: version } : {}), identifier: st.identifier, dir };
  };

  async function unlockOne(h: Host, auth: SshAuth, signal: AbortSignal): Promise<UnlockResult> {
    const rec = row(h.name);
    const dir = rec?.dir ?? defaultDir;
    const base = { host: h.name, dir, keyId: rec?.key_id ?? null, identifier: rec?.identifier ?? null };
    if (!rec) {
      return { ...base, state: null, outcome: 'skipped', code: 'NOT_FOUND', message: `Airlock holds no models key for ${h.name}: protect its models directory first (keys protect-models).` };
    }
    try {
      return await onHost(h, auth, signal, async (conn) => {
        const opts = fsOpts(h, signal);
        const st = await modelsStatus(conn, dir, opts);
        if ((st.state === 'locked' || st.state === 'unlocked') && st.identifier !== rec.identifier) {
          return { ...view(h.name, st, rec, dir), outcome: 'failed', code: 'CONFLICT', message: `${dir} on ${h.name} is encrypted under another key than the one Airlock holds for it (${rec.key_id}); nothing was delivered.` };
        }
        if (st.state === 'unlocked') return { ...view(h.name, st, rec, dir), outcome: 'already', code: null, message: null };
        if (st.state !== 'locked') {
          return { ...view(h.name, st, rec, dir), outcome: 'skipped', code: 'CONFLICT', message: `${dir} on ${h.name} is ${st.state}, not locked: protect it again (keys protect-models) if its encrypted directory is gone.` };
        }
        const key = d.keys.openDataKey('models', rec.key_id);
        try {
          const after = await unlockModels(conn, dir, key, opts);
          return { ...view(h.name, after, rec, dir), outcome: 'unlocked', code: null, message: null };
        } finally {
          key.fill(0);
        }
      });
    } catch (e) {
      return { ...base, state: null, outcome: 'failed', ...failure(e) };
    }
  }

  /**
   * Every host whose models directory Airlock protected, unlocked where it is locked (at most
   * `concurrency` at once): what an unseal does for a rack that rebooted while the hierarchy was sealed.
   */
  async function unlockProtected(auth: SshAuth, signal: AbortSignal): Promise<UnlockResult[]> {
    const hosts = d.hosts.list().filter((h) => row(h.name)?.protected_at);
    return bounded(hosts, concurrency, (h) => unlockOne(h, auth, signal));
  }

  return { defaultDir, concurrency, row, fsOpts, onHost, view, unlockOne, unlockProtected };
}

/**
 * keys:modelsStatus, keys:protectModels, keys:unlockModels (spread into the keys area's handlers by
 * createKeysArea). Every key opened here is zeroed once the host has it; the host program receives
 * it on stdin and puts it into the filesystem keyring, never on the host's disk.
 */
export function modelsKeysHandlers(d: ModelsKeysDeps): Pick<AreaHandlers<'keys'>, ModelsChannel> {
  const { row, fsOpts, onHost, view, unlockOne, concurrency, defaultDir } = modelsUnlocker(d);

  /** The host's row, made with a new `models` data key in one transaction (the key never exists without its host). */
  function newKey(host: string, dir: string): KeyRow {
    return d.db.transaction((): KeyRow => {
      // Another call for this host may have made it while this one was asking the host.
      const made = row(host);
      if (made) return made;
      for (let n = 1; n <= MAX_KEY_GENERATIONS; n++) {
        const id = `models.${host}.${n}`;
        try {
          d.keys.putDataKey('models', id, { bytes: 64 });
        } catch (e) {
          if (e instanceof AirlockError && e.code === 'CONFLICT') continue; // a key of an earlier generation
          throw e;
        }
        const key = d.keys.openDataKey('models', id);
        let identifier: string;
        try {
          identifier = fscryptKeyIdentifier(key);
        } finally {
          key.fill(0);
        }
        const rec: KeyRow = { host, key_id: id, identifier, dir, created_at: d.now().toISOString(), protected_at: null };
        d.db.prepare('INSERT INTO models_keys (host, key_id, identifier, dir, created_at) VALUES (?, ?, ?, ?, ?)').run(rec.host, rec.key_id, rec.identifier, rec.dir, rec.created_at);
        return rec;
      }
      throw new AirlockError('CONFLICT', `Every models key id for ${host} up to models.${host}.${MAX_KEY_GENERATIONS} is taken; delete unused models data keys first.`);
    })();
  }

  /** Names, `all` (every host Airlock holds a models key for) and `label:x`; unknown names refused. */
  function resolve(selector: readonly string[]): Host[] {
    const all = d.hosts.list();
    const out = new Map<string, Host>();
    for (const s of selector) {
      let picked: Host[];
      if (s === 'all') picked = all.filter((h) => row(h.name) !== undefined);
      else if (s.startsWith('label:')) {
        picked = all.filter((h) => h.labels.includes(s.slice(6)));
        if (!picked.length) throw new AirlockError('NOT_FOUND', `No host carries the label "${s.slice(6)}".`);
      } else picked = [d.hosts.get(s)];
      for (const h of picked) out.set(h.name, h);
    }
    if (!out.size) throw new AirlockError('NOT_FOUND', 'No host to unlock: Airlock holds a models key for none of them yet (keys protect-models HOST).');
    return [...out.values()];
  }

  return {
    'keys:modelsStatus': async (ctx, i) => {
      const h = d.hosts.get(i.host);
      const rec = row(h.name);
      const dir = rec?.dir ?? defaultDir;
      const st = await onHost(h, ctx.sshAuth(), ctx.signal, (conn) => modelsStatus(conn, dir, fsOpts(h, ctx.signal)));
      return view(h.name, st, rec, dir);
    },

    'keys:protectModels': async (ctx, i) => {
      const what = `Protecting the models directory of ${i.host}`;
      requireUnsealed(d.keys, what);
      const h = d.hosts.get(i.host);
      let rec = row(h.name);
      const dir = rec?.dir ?? defaultDir;
      return onHost(h, ctx.sshAuth(), ctx.signal, async (conn) => {
        const opts = fsOpts(h, ctx.signal);
        const st = await modelsStatus(conn, dir, opts);
        if (st.state === 'unsupported' && st.target === dir) {
          // A real directory where Airlock's link into the models filesystem belongs (its own filesystem has no fscrypt).
          throw new AirlockError(
            'CONFLICT',
            `${what}: ${dir} on the host is a plain directory on a filesystem without fscrypt; Airlock replaces it with a link into the models filesystem (${modelsStore(dir)}): move its files away, remove it, protect, then copy them in.`,
          );
        }
        if (st.state === 'unsupported') throw refusal('UNSUPPORTED', what, dir);
        if (st.state === 'unencrypted' && st.detail !== 'empty') throw refusal('NOTEMPTY', what, dir);
        if ((st.state === 'locked' || st.state === 'unlocked') && st.identifier !== rec?.identifier) {
          throw new AirlockError('CONFLICT', `${what}: ${dir} on the host is already encrypted under a key Airlock does not hold for ${h.name}; Airlock does not change a directory it did not make.`);
        }
        const created = !rec;
        rec ??= newKey(h.name, dir);
        const key = d.keys.openDataKey('models', rec.key_id);
        let after: HostStatus;
        try {
          after = await encryptModelsDir(conn, dir, key, opts);
        } finally {
          key.fill(0);
        }
        if (!rec.protected_at) d.db.prepare('UPDATE models_keys SET protected_at = ? WHERE host = ?').run(d.now().toISOString(), h.name);
        ctx.auditDetail({ keyId: rec.key_id, identifier: rec.identifier, dir, created, before: st.state, after: after.state });
        return view(h.name, after, rec, dir);
      });
    },

    'keys:unlockModels': async (ctx, i) => {
      requireUnsealed(d.keys, 'Unlocking models directories');
      const hosts = resolve(i.hosts);
      const auth = ctx.sshAuth();
      const results = await bounded(hosts, concurrency, (h) => unlockOne(h, auth, ctx.signal));
      ctx.auditDetail({ hosts: results.map((r) => ({ host: r.host, outcome: r.outcome, keyId: r.keyId, code: r.code })) });
      return results;
    },
  };
}
