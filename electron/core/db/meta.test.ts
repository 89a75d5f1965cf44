import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { migrate } from './db';
import { META_KEYS, meta, MetaValueError } from './meta';
import { migrations } from './migrations';

function open() {
  const db = new Database(':memory:');
  migrate(db, migrations);
  return db;
}
const raw = (db: Database.Database, key: string, value: string) =>
  db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value').run(key, value);

describe('the meta accessor', () => {
  it('reads back what it wrote, typed, and deletes', () => {
    const db = open();
    const m = meta(db);
    expect(m.get('identity.seq')).toBeNull();
    m.set('identity.seq', 7);
    const n: number | null = m.get('identity.seq');
    expect(n).toBe(7);
    m.set('audit.forward', { host: 'logs', port: 514, tls: false, caPem: null });
    expect(m.get('audit.forward')).toEqual({ host: 'logs', port: 514, tls: false, caPem: null });
    // The stored text is what the older code wrote and read (JSON, decimal text).
    expect(db.prepare("SELECT value FROM meta WHERE key = 'identity.seq'").pluck().get()).toBe('7');
    m.delete('identity.seq', 'audit.forward');
    expect(m.get('identity.seq')).toBeNull();
    expect(m.get('audit.forward')).toBeNull();
  });

  it('refuses an undeclared key and a value of the wrong type at compile time', () => {
    const m = meta(open());
    // @ts-expect-error — 'identity.sequence' is not a declared key
    expect(() => m.get('identity.sequence')).toThrow();
    // @ts-expect-error — identity.seq holds a number
    expect(() => m.set('identity.seq', 'seven')).toThrow(MetaValueError);
    // @ts-expect-error — only counters can be raised
    m.raise('audit.alarms', 3);
    expect(Object.keys(META_KEYS)).toContain('audit.forwarded_seq');
  });

  it('names the key of a malformed stored value instead of returning garbage', () => {
    const db = open();
    const m = meta(db);
    raw(db, 'identity.seq', 'twelve');
    expect(() => m.get('identity.seq')).toThrow(MetaValueError);
    expect(() => m.get('identity.seq')).toThrow(/meta value "identity\.seq" is malformed \(expected an integer ≥ 0, found "twelve"\)/);
    raw(db, 'audit.signing.public', 'not a key');
    expect(() => m.get('audit.signing.public')).toThrow(/"audit\.signing\.public" is malformed \(expected a PEM public key\)/);
    raw(db, 'audit.forward', '{"host":');
    expect(() => m.get('audit.forward')).toThrow(/expected a syslog target as JSON/);
    // Values with a default fall back to it.
    expect(m.getIfValid('identity.seq')).toBeNull();
    raw(db, 'settings.stepUpMinutes', '0');
    expect(m.getIfValid('settings.stepUpMinutes')).toBeNull();
    expect(() => m.get('settings.stepUpMinutes')).toThrow(/expected an integer ≥ 1/);
  });

  it('raises a counter but never lowers it', () => {
    const db = open();
    const m = meta(db);
    m.raise('audit.forwarded_seq', 10);
    m.raise('audit.forwarded_seq', 4);
    expect(m.get('audit.forwarded_seq')).toBe(10);
    m.raise('audit.forwarded_seq', 11);
    expect(m.get('audit.forwarded_seq')).toBe(11);
  });

  it('writes inside the caller’s transaction, rolled back with it', () => {
    const db = open();
    const m = meta(db);
    expect(() =>
      db.transaction(() => {
        m.set('identity.seq', 1);
        throw new Error('roll back');
      })(),
    ).toThrow('roll back');
    expect(m.get('identity.seq')).toBeNull();
  });
});
