import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { m0007 } from './0007-key-hierarchy';
import { m0010 } from './0010-models-keys';

function db() {
  const d = new Database(':memory:');
  d.pragma('foreign_keys = ON');
  m0007.up(d);
  m0010.up(d);
  d.prepare("INSERT INTO kek_domains VALUES ('models', 1, 1)").run();
  d.prepare("INSERT INTO kek_domains VALUES ('datasets', 1, 1)").run();
  d.prepare("INSERT INTO kek_versions (domain, version, wrapped, kcv, created_at) VALUES ('models', 1, x'00', 'k', 'now'), ('datasets', 1, x'00', 'k', 'now')").run();
  return d;
}
const key = (d: Database.Database, domain: string, id: string) => d.prepare("INSERT INTO data_keys VALUES (?, ?, 1, x'00', 'now')").run(domain, id);
const row = (d: Database.Database, host: string, keyId: string, identifier = 'a'.repeat(32)) =>
  d.prepare("INSERT INTO models_keys (host, key_id, identifier, dir, created_at) VALUES (?, ?, ?, '/srv/models', 'now')").run(host, keyId, identifier);
const count = (d: Database.Database) => (d.prepare('SELECT COUNT(*) AS n FROM models_keys').get() as { n: number }).n;

describe('migration 0010-models-keys', () => {
  it('one key per host, each a models data key used once; shredding the key removes its row', () => {
    const d = db();
    key(d, 'models', 'models.gpu1.1');
    key(d, 'models', 'models.gpu2.1');
    key(d, 'datasets', 'ds.1');
    row(d, 'gpu1', 'models.gpu1.1');
    expect(() => row(d, 'gpu1', 'models.gpu2.1')).toThrow(/UNIQUE/);
    expect(() => row(d, 'gpu2', 'models.gpu1.1')).toThrow(/UNIQUE/);
    expect(() => row(d, 'gpu3', 'no-such-key')).toThrow(/FOREIGN KEY/);
    expect(() => row(d, 'gpu3', 'ds.1')).toThrow(/FOREIGN KEY/);
    expect(() => row(d, 'gpu2', 'models.gpu2.1', 'short')).toThrow(/CHECK/);
    row(d, 'gpu2', 'models.gpu2.1');
    expect(count(d)).toBe(2);
    d.prepare("DELETE FROM data_keys WHERE domain = 'models' AND id = 'models.gpu1.1'").run();
    expect(d.prepare('SELECT host FROM models_keys').all()).toEqual([{ host: 'gpu2' }]);
  });
});
