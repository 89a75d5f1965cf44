import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { m0012 } from './0012-models-catalog';

const D = `sha256:${'a'.repeat(64)}`;
function db() {
  const d = new Database(':memory:');
  d.pragma('foreign_keys = ON');
  m0012.up(d);
  d.prepare("INSERT INTO datasets VALUES ('notes', 'Notes', '', 'phi', NULL, 'vault 3', 'dr x', 'now', 'alice')").run();
  d.prepare("INSERT INTO models VALUES ('m', '', 'o', 'now', 'alice')").run();
  d.prepare("INSERT INTO model_versions (model, version, classification, license, format, source, imported_at, imported_by, files, total_bytes, status_at, status_by) VALUES ('m', 'v1', 'phi', 'apache-2.0', 'directory', 'usb', 'now', 'alice', 1, 3, 'now', 'alice')").run();
  d.prepare("INSERT INTO model_files VALUES ('m', 'v1', 'w.bin', 3, ?)").run('b'.repeat(64));
  d.prepare("INSERT INTO model_lineage VALUES ('m', 'v1', 'notes', 'fine-tuning')").run();
  return d;
}
const status = (d: Database.Database, s: string, digest: string | null = D) => d.prepare('UPDATE model_versions SET status = ?, manifest_digest = ? WHERE version = ?').run(s, digest, 'v1');

describe('migration 0012-models-catalog', () => {
  it('moves status only forward and never approves without a digest', () => {
    const d = db();
    expect(() => status(d, 'approved', null)).toThrow(/CHECK/);
    expect(() => status(d, 'deprecated')).toThrow(/may not move/);
    status(d, 'approved');
    expect(() => status(d, 'staged')).toThrow(/may not move/);
    status(d, 'deprecated');
    expect(() => status(d, 'approved')).toThrow(/may not move/);
    status(d, 'revoked');
    expect(() => status(d, 'deprecated')).toThrow(/may not move/);
  });

  it('freezes an approved version: its record, files and lineage; keeps datasets in a lineage', () => {
    const d = db();
    d.prepare("UPDATE model_files SET size = 4 WHERE path = 'w.bin'").run(); // staged: still editable
    status(d, 'approved');
    expect(() => d.prepare("UPDATE model_versions SET classification = 'public'").run()).toThrow(/immutable/);
    expect(() => d.prepare("UPDATE model_versions SET manifest_digest = ?").run(`sha256:${'c'.repeat(64)}`)).toThrow(/immutable/);
    expect(() => d.prepare("UPDATE model_files SET sha256 = ?").run('c'.repeat(64))).toThrow(/immutable/);
    expect(() => d.prepare("INSERT INTO model_files VALUES ('m', 'v1', 'extra.bin', 1, ?)").run('d'.repeat(64))).toThrow(/immutable/);
    expect(() => d.prepare('DELETE FROM model_files').run()).toThrow(/immutable/);
    expect(() => d.prepare('DELETE FROM model_lineage').run()).toThrow(/immutable/);
    expect(() => d.prepare('DELETE FROM model_versions').run()).toThrow(/immutable/);
    expect(() => d.prepare("DELETE FROM datasets WHERE id = 'notes'").run()).toThrow(/FOREIGN KEY/);
    expect(() => d.prepare("INSERT INTO datasets VALUES ('x', 'X', '', 'secret', NULL, 'l', 'o', 'now', 'a')").run()).toThrow(/CHECK/);
  });
});
