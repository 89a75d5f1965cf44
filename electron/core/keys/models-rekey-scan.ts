import type { Host, ScanOutcome } from '../../../shared/contract/hosts';
import { AirlockError } from '../../../shared/domain/errors';
import type { Db } from '../db/db';
import type { SshConnection } from '../ssh/connection';
import { sanitizeHostText } from '../ssh/sanitize';
import { modelsStatus, unlockModels } from './fscrypt';
import type { KeyService } from './service';

/**
 * The models state in a hosts scan (hosts/service.ts calls this on the scan's own connection):
 * only for a host whose models directory Airlock protected (a `models_keys` row) — for any other
 * host nothing is run and the scan is as fast as before. A protected host that comes back locked
 * (a reboot emptied its kernel's keyring) is reported `locked`; when the key hierarchy is
 * unsealed, the scan delivers its key at once (fscrypt.ts `unlockModels`: on stdin, into the
 * kernel only) and reports `unlocked: true`. Sealed, it stays locked until an unseal and the next
 * scan, or keys:unlockModels.
 *
 * During a re-key (models-rekey.ts) a host may already be under its staged key (after `swap`,
 * before `promote`): `staged` names that key, so the host is unlocked with whichever key its
 * directory's policy names. A key whose identifier matches neither is never sent.
 */
export type ModelsScan = NonNullable<ScanOutcome['models']>;
export type ModelsProbe = (host: Host, conn: SshConnection, signal: AbortSignal) => Promise<ModelsScan | undefined>;

export function modelsScanProbe(d: {
  db: Db;
  keys: Pick<KeyService, 'status' | 'openDataKey'>;
  staged: (host: string) => { keyId: string; identifier: string } | null;
  timeoutMs?: number;
}): ModelsProbe {
  return async (host, conn, signal) => {
    const rec = d.db.prepare('SELECT key_id, identifier, dir FROM models_keys WHERE host = ? AND protected_at IS NOT NULL').get(host.name) as
      | { key_id: string; identifier: string; dir: string }
      | undefined;
    if (!rec) return undefined;
    const opts = { sudo: host.user !== 'root', signal, ...(d.timeoutMs ? { timeoutMs: d.timeoutMs } : {}) };
    try {
      const st = await modelsStatus(conn, rec.dir, opts);
      const staged = d.staged(host.name);
      const keyId = st.identifier === rec.identifier ? rec.key_id : staged && st.identifier === staged.identifier ? staged.keyId : null;
      const s = d.keys.status();
      if (st.state !== 'locked' || !keyId || !s.initialised || s.sealed) return { state: st.state, keyId, unlocked: false, error: null };
      const key = d.keys.openDataKey('models', keyId);
      try {
        const after = await unlockModels(conn, rec.dir, key, opts);
        return { state: after.state, keyId, unlocked: after.state === 'unlocked', error: null };
      } finally {
        key.fill(0);
      }
    } catch (e) {
      const code = e instanceof AirlockError ? e.code : 'INTERNAL';
      return { state: null, keyId: rec.key_id, unlocked: false, error: { code, message: sanitizeHostText(e instanceof Error ? e.message : String(e), 300) } };
    }
  };
}
