import type { Db } from '../db/db';
import type { KeyDomain, WrappedDataKey } from './hierarchy';
import type { ShareRecord } from './shares';

/**
 * The key hierarchy's rows (migration 0007): only wrapped keys, the share record (commitments,
 * canary, KCVs) and who holds which share. Never a plaintext key or a share: those stay in the
 * service's memory. Stateless over `db`; the service composes its calls in transactions.
 */

export interface HierarchyRow {
  hierarchyId: string;
  threshold: number;
  count: number;
  record: ShareRecord;
  rootCanary: Buffer;
  rootKcv: string;
  createdAt: string;
  epoch: number;
}
export interface HolderRow {
  index: number;
  officer: string;
  fingerprint: string | null;
  issuedAt: string;
}
export interface KekVersionRow {
  domain: KeyDomain;
  version: number;
  wrapped: Buffer;
  kcv: string;
  createdAt: string;
  retiredAt: string | null;
}
export interface DomainRow {
  domain: KeyDomain;
  currentVersion: number;
  minDecryptionVersion: number;
}
export interface DataKeyRow extends WrappedDataKey {
  domain: KeyDomain;
  createdAt: string;
}

export class KeyStore {
  constructor(private readonly db: Db) {}

  /** Runs `fn` in one transaction (a savepoint inside the caller's). */
  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  hierarchy(): HierarchyRow | null {
    const r = this.db.prepare('SELECT * FROM key_hierarchy WHERE singleton = 1').get() as
      | { hierarchy_id: string; threshold: number; share_count: number; share_record: string; root_canary: Buffer; root_kcv: string; created_at: string; epoch: number }
      | undefined;
    if (!r) return null;
    return { hierarchyId: r.hierarchy_id, threshold: r.threshold, count: r.share_count, record: JSON.parse(r.share_record) as ShareRecord, rootCanary: r.root_canary, rootKcv: r.root_kcv, createdAt: r.created_at, epoch: r.epoch };
  }

  createHierarchy(h: Omit<HierarchyRow, 'epoch'>): void {
    this.db
      .prepare('INSERT INTO key_hierarchy (singleton, hierarchy_id, threshold, share_count, share_record, root_canary, root_kcv, created_at) VALUES (1, ?, ?, ?, ?, ?, ?, ?)')
      .run(h.hierarchyId, h.threshold, h.count, JSON.stringify(h.record), h.rootCanary, h.rootKcv, h.createdAt);
  }

  /**
   * Replaces the share record after a reshare (same root: the KCV is unchanged, the canary is a
   * fresh seal of the same root) or a root rotation (`newRoot`: epoch + 1).
   */
  replaceRecord(record: ShareRecord, newRoot: boolean): void {
    this.db
      .prepare('UPDATE key_hierarchy SET threshold = ?, share_count = ?, share_record = ?, root_canary = ?, root_kcv = ?, epoch = epoch + ? WHERE singleton = 1')
      .run(record.threshold, record.count, JSON.stringify(record), Buffer.from(record.canary, 'base64'), record.rootKcv, newRoot ? 1 : 0);
  }

  holders(): HolderRow[] {
    return (this.db.prepare('SELECT share_index AS "index", officer, sealing_fingerprint AS fingerprint, issued_at AS issuedAt FROM key_share_holders ORDER BY share_index').all() as HolderRow[]).map((r) => ({ ...r }));
  }

  setHolders(holders: readonly HolderRow[]): void {
    this.db.prepare('DELETE FROM key_share_holders').run();
    const ins = this.db.prepare('INSERT INTO key_share_holders (share_index, officer, sealing_fingerprint, issued_at) VALUES (?, ?, ?, ?)');
    for (const h of holders) ins.run(h.index, h.officer, h.fingerprint, h.issuedAt);
  }

  domains(): DomainRow[] {
    return this.db.prepare('SELECT domain, current_version AS currentVersion, min_decryption_version AS minDecryptionVersion FROM kek_domains ORDER BY domain').all() as DomainRow[];
  }

  domain(domain: KeyDomain): DomainRow | null {
    return (this.db.prepare('SELECT domain, current_version AS currentVersion, min_decryption_version AS minDecryptionVersion FROM kek_domains WHERE domain = ?').get(domain) as DomainRow | undefined) ?? null;
  }

  /** Declares a domain at version 1 with its first KEK. */
  createDomain(domain: KeyDomain, first: { wrapped: Buffer; kcv: string; createdAt: string }): void {
    this.db.prepare('INSERT INTO kek_domains (domain, current_version, min_decryption_version) VALUES (?, 1, 1)').run(domain);
    this.addKekVersion({ domain, version: 1, ...first });
  }

  addKekVersion(v: { domain: KeyDomain; version: number; wrapped: Buffer; kcv: string; createdAt: string }): void {
    this.db.prepare('INSERT INTO kek_versions (domain, version, wrapped, kcv, created_at) VALUES (?, ?, ?, ?, ?)').run(v.domain, v.version, v.wrapped, v.kcv, v.createdAt);
  }

  setCurrentVersion(domain: KeyDomain, version: number): void {
    this.db.prepare('UPDATE kek_domains SET current_version = ? WHERE domain = ?').run(version, domain);
  }

  /** Sets the minimum and marks the versions below it retired (at `now`), those at or above it not. */
  setMinDecryptionVersion(domain: KeyDomain, version: number, now: string): void {
    this.db.prepare('UPDATE kek_domains SET min_decryption_version = ? WHERE domain = ?').run(version, domain);
    this.db.prepare('UPDATE kek_versions SET retired_at = ? WHERE domain = ? AND version < ? AND retired_at IS NULL').run(now, domain, version);
    this.db.prepare('UPDATE kek_versions SET retired_at = NULL WHERE domain = ? AND version >= ?').run(domain, version);
  }

  kekVersions(domain?: KeyDomain): KekVersionRow[] {
    const sql = 'SELECT domain, version, wrapped, kcv, created_at AS createdAt, retired_at AS retiredAt FROM kek_versions';
    return (domain ? this.db.prepare(`${sql} WHERE domain = ? ORDER BY version`).all(domain) : this.db.prepare(`${sql} ORDER BY domain, version`).all()) as KekVersionRow[];
  }

  /** Replaces a KEK version's wrap (root rotation: same KEK, wrapped under the new root). */
  rewrapKekVersion(domain: KeyDomain, version: number, wrapped: Buffer): void {
    this.db.prepare('UPDATE kek_versions SET wrapped = ? WHERE domain = ? AND version = ?').run(wrapped, domain, version);
  }

  dataKey(domain: KeyDomain, id: string): DataKeyRow | null {
    return (this.db.prepare('SELECT domain, id, version, wrapped, created_at AS createdAt FROM data_keys WHERE domain = ? AND id = ?').get(domain, id) as DataKeyRow | undefined) ?? null;
  }

  putDataKey(k: DataKeyRow): void {
    this.db.prepare('INSERT INTO data_keys (domain, id, version, wrapped, created_at) VALUES (?, ?, ?, ?, ?)').run(k.domain, k.id, k.version, k.wrapped, k.createdAt);
  }

  deleteDataKey(domain: KeyDomain, id: string): boolean {
    return this.db.prepare('DELETE FROM data_keys WHERE domain = ? AND id = ?').run(domain, id).changes > 0;
  }

  /** Data keys of a domain not at `version`, in id order after `afterId`, at most `limit`: the pages a rewrap works through. */
  dataKeysNotAt(domain: KeyDomain, version: number, afterId: string, limit: number): WrappedDataKey[] {
    return this.db.prepare('SELECT id, version, wrapped FROM data_keys WHERE domain = ? AND version != ? AND id > ? ORDER BY id LIMIT ?').all(domain, version, afterId, limit) as WrappedDataKey[];
  }

  /** Stores rewrapped keys, each only if it is still at the version it was read at (a concurrent delete or rewrap wins). */
  updateWraps(domain: KeyDomain, rows: readonly WrappedDataKey[], fromVersions: ReadonlyMap<string, number>): number {
    const upd = this.db.prepare('UPDATE data_keys SET version = ?, wrapped = ? WHERE domain = ? AND id = ? AND version = ?');
    let n = 0;
    for (const r of rows) n += upd.run(r.version, r.wrapped, domain, r.id, fromVersions.get(r.id) ?? -1).changes;
    return n;
  }

  /** Data keys per KEK version, per domain. */
  dataKeyCounts(): Array<{ domain: KeyDomain; version: number; n: number }> {
    return this.db.prepare('SELECT domain, version, count(*) AS n FROM data_keys GROUP BY domain, version').all() as Array<{ domain: KeyDomain; version: number; n: number }>;
  }

  /** The lowest KEK version a data key of the domain still uses, or null when it has none. */
  lowestVersionInUse(domain: KeyDomain): number | null {
    return (this.db.prepare('SELECT min(version) AS v FROM data_keys WHERE domain = ?').get(domain) as { v: number | null }).v;
  }
}
