import { AirlockError } from '../../../shared/domain/errors';
import type { Db } from '../db/db';
import { open, seal } from '../vault/aead';

/**
 * The `console` KEK's vault-wrapped versions and Airlock's own keys as versioned entries sealed
 * under them (migration 0013). Pure wrapping functions and a store stateless over `db`: the key
 * registry (registry.ts) mints and opens entries with a signed-in user's vault key, the key
 * service (service.ts) adopts the versions at genesis and adds one at a console KEK rotation.
 *
 * Why a table of its own rather than the hierarchy's `data_keys`: a data key's wrap binds the
 * hierarchy id, and its row needs a root-wrapped `kek_versions` row, neither of which exists
 * before genesis, while the console's own keys exist from first-run setup on. The entries are a
 * handful of rows, so a console KEK rotation rewraps them all in its own transaction (this file's
 * `rewrapEntries`) instead of going through the paged data-key rewrap.
 */

/** Additional data of a console KEK version wrapped under the vault key. */
export const consoleKekAad = (version: number) => `airlock.console-kek/v1|console|${version}`;
/** Additional data of an own key's entry: its purpose and version, and the KEK version sealing it. */
export const consoleKeyAad = (purpose: string, version: number, kekVersion: number) => `airlock.console-key/v1|${purpose}|${version}|${kekVersion}`;

export interface ConsoleKekRow {
  version: number;
  vaultWrapped: Buffer;
  kcv: string;
  createdAt: string;
}

export interface ConsoleKeyRow {
  purpose: string;
  version: number;
  kekVersion: number;
  /** The private part sealed under console KEK `kekVersion`; null once the version is retired. */
  sealed: Buffer | null;
  public: string | null;
  fingerprint: string | null;
  /** The SSH rotation that staged this not-yet-current SSH identity; null otherwise. */
  stagedFor: string | null;
  createdAt: string;
  retiredAt: string | null;
}

/** Wraps a console KEK version under the vault key (every user's vault slot unwraps that). */
export function wrapConsoleKek(vaultKey: Buffer, kek: Buffer, version: number, random: (n: number) => Buffer): Buffer {
  return seal(vaultKey, kek, consoleKekAad(version), random);
}

/** Opens a console KEK version with the vault key; a failure is an altered or foreign row, refused. */
export function openConsoleKek(vaultKey: Buffer, row: ConsoleKekRow): Buffer {
  const kek = open(vaultKey, row.vaultWrapped, consoleKekAad(row.version));
  if (!kek) throw new AirlockError('KEY_UNAVAILABLE', `The console KEK version ${row.version} does not open with this vault key: its database row was altered or copied from another installation. Restore the database from a backup.`);
  return kek;
}

/** Seals an own key's private part under a console KEK version. */
export function sealEntry(kek: Buffer, ref: { purpose: string; version: number; kekVersion: number }, plain: Buffer, random: (n: number) => Buffer): Buffer {
  return seal(kek, plain, consoleKeyAad(ref.purpose, ref.version, ref.kekVersion), random);
}

/** Opens an entry's private part (the caller zeroes it when done). */
export function openEntry(kek: Buffer, row: ConsoleKeyRow): Buffer {
  if (!row.sealed) throw new AirlockError('KEY_UNAVAILABLE', `Version ${row.version} of Airlock's ${row.purpose} key is retired: its private part was destroyed, only its public part is on record.`);
  const plain = open(kek, row.sealed, consoleKeyAad(row.purpose, row.version, row.kekVersion));
  if (!plain) throw new AirlockError('KEY_UNAVAILABLE', `Airlock's ${row.purpose} key (version ${row.version}) does not open with console KEK version ${row.kekVersion}: its database row was altered or copied from elsewhere. Restore the database from a backup.`);
  return plain;
}

const KEY_COLS = 'purpose, version, kek_version AS kekVersion, sealed, public, fingerprint, staged_for AS stagedFor, created_at AS createdAt, retired_at AS retiredAt';

export class ConsoleKeyStore {
  constructor(private readonly db: Db) {}

  keks(): ConsoleKekRow[] {
    return this.db.prepare('SELECT version, vault_wrapped AS vaultWrapped, kcv, created_at AS createdAt FROM console_keks ORDER BY version').all() as ConsoleKekRow[];
  }

  kek(version: number): ConsoleKekRow | null {
    return (this.db.prepare('SELECT version, vault_wrapped AS vaultWrapped, kcv, created_at AS createdAt FROM console_keks WHERE version = ?').get(version) as ConsoleKekRow | undefined) ?? null;
  }

  /** The newest version: what new entries are sealed under. */
  latestKek(): ConsoleKekRow | null {
    return (this.db.prepare('SELECT version, vault_wrapped AS vaultWrapped, kcv, created_at AS createdAt FROM console_keks ORDER BY version DESC LIMIT 1').get() as ConsoleKekRow | undefined) ?? null;
  }

  addKek(row: ConsoleKekRow): void {
    this.db.prepare('INSERT INTO console_keks (version, vault_wrapped, kcv, created_at) VALUES (?, ?, ?, ?)').run(row.version, row.vaultWrapped, row.kcv, row.createdAt);
  }

  /** Every entry (retired and staged ones too), by purpose and version. */
  entries(purpose?: string): ConsoleKeyRow[] {
    const sql = `SELECT ${KEY_COLS} FROM console_keys`;
    return (purpose ? this.db.prepare(`${sql} WHERE purpose = ? ORDER BY version`).all(purpose) : this.db.prepare(`${sql} ORDER BY purpose, version`).all()) as ConsoleKeyRow[];
  }

  /** The current (not retired, not staged) version of a purpose. */
  current(purpose: string): ConsoleKeyRow | null {
    return (this.db.prepare(`SELECT ${KEY_COLS} FROM console_keys WHERE purpose = ? AND retired_at IS NULL AND staged_for IS NULL`).get(purpose) as ConsoleKeyRow | undefined) ?? null;
  }

  staged(rotationId: string): ConsoleKeyRow | null {
    return (this.db.prepare(`SELECT ${KEY_COLS} FROM console_keys WHERE staged_for = ?`).get(rotationId) as ConsoleKeyRow | undefined) ?? null;
  }

  nextVersion(purpose: string): number {
    return (this.db.prepare('SELECT coalesce(max(version), 0) + 1 AS v FROM console_keys WHERE purpose = ?').get(purpose) as { v: number }).v;
  }

  insert(row: Omit<ConsoleKeyRow, 'retiredAt'>): void {
    this.db
      .prepare('INSERT INTO console_keys (purpose, version, kek_version, sealed, public, fingerprint, staged_for, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
      .run(row.purpose, row.version, row.kekVersion, row.sealed, row.public, row.fingerprint, row.stagedFor, row.createdAt);
  }

  /** Retires a version: its public part stays on record, its private part is destroyed. */
  retire(purpose: string, version: number, at: string): void {
    this.db.prepare('UPDATE console_keys SET sealed = NULL, retired_at = ? WHERE purpose = ? AND version = ?').run(at, purpose, version);
  }

  /** A staged SSH identity becomes current (the caller retired the old one first). */
  unstage(rotationId: string): void {
    this.db.prepare('UPDATE console_keys SET staged_for = NULL WHERE staged_for = ?').run(rotationId);
  }

  deleteStaged(rotationId: string): void {
    this.db.prepare('DELETE FROM console_keys WHERE staged_for = ?').run(rotationId);
  }

  /**
   * Rewraps every unretired entry to console KEK `to` (inside the caller's transaction, e.g. a
   * console KEK rotation): each private part is opened with its own version's KEK and sealed
   * again, its plaintext zeroed at once. A version missing from `from`, or an entry that does not
   * open, fails the whole rewrap: nothing is silently left behind.
   */
  rewrapEntries(from: ReadonlyMap<number, Buffer>, to: { version: number; key: Buffer }, random: (n: number) => Buffer): number {
    const upd = this.db.prepare('UPDATE console_keys SET kek_version = ?, sealed = ? WHERE purpose = ? AND version = ?');
    let n = 0;
    for (const row of this.entries()) {
      if (!row.sealed || row.kekVersion === to.version) continue;
      const kek = from.get(row.kekVersion);
      if (!kek) throw new AirlockError('KEY_UNAVAILABLE', `Airlock's ${row.purpose} key (version ${row.version}) is sealed under console KEK version ${row.kekVersion}, which this rewrap was not given.`);
      const plain = openEntry(kek, row);
      try {
        upd.run(to.version, sealEntry(to.key, { purpose: row.purpose, version: row.version, kekVersion: to.version }, plain, random), row.purpose, row.version);
        n++;
      } finally {
        plain.fill(0);
      }
    }
    return n;
  }
}
