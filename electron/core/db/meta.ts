import type { AuditAlarm } from '../../../shared/contract/audit';
import { AirlockError } from '../../../shared/domain/errors';
import type { ForwardConfig } from '../audit/forward';
import type { Db } from './db';

/**
 * The `meta` table (key → text) holds the installation's small facts: counters, settings, public
 * keys, the syslog target. Every key is declared here once with how its value is written and read
 * back, so a misspelt key is a type error and a value someone edited into nonsense is refused with
 * a message naming the key instead of being used (NaN counters, a half key).
 */
interface Codec<T> {
  encode(value: T): string;
  /** Throws a plain message (the reason) when the text is not a value of this key. */
  decode(text: string): T;
}
type AnyCodec = { encode(value: never): string; decode(text: string): unknown };

const integer = (min: number): Codec<number> => ({
  encode: (n) => String(n),
  decode: (text) => {
    const n = Number(text);
    if (text.trim() === '' || !Number.isSafeInteger(n) || n < min) throw new Error(`expected an integer ≥ ${min}, found ${JSON.stringify(text.slice(0, 40))}`);
    return n;
  },
});

const matching = (what: string, re: RegExp): Codec<string> => ({
  encode: (s) => s,
  decode: (text) => {
    if (!re.test(text)) throw new Error(`expected ${what}`);
    return text;
  },
});

const json = <T>(what: string, check: (v: unknown) => T | null): Codec<T> => ({
  encode: (v) => JSON.stringify(v),
  decode: (text) => {
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch {
      throw new Error(`expected ${what} as JSON`);
    }
    const r = check(v);
    if (r === null) throw new Error(`expected ${what}`);
    return r;
  },
});

const spkiPem = matching('a PEM public key', /^-----BEGIN PUBLIC KEY-----\r?\n[A-Za-z0-9+/=\r\n]+-----END PUBLIC KEY-----\r?\n?$/);

/** Every key of the meta table, what it holds, and who writes it. */
export const META_KEYS = {
  /** Written and rolled back at once when the database is opened: it must be writable (audit/service.ts). */
  'airlock.write-probe': matching('an empty string', /^$/),
  /** The identity counter the two-person rule binds requests to (users/users.ts). */
  'identity.seq': integer(0),
  /** Run-time identity settings an administrator changes (settings/settings.ts). */
  'settings.sessionIdleMinutes': integer(1),
  'settings.stepUpMinutes': integer(1),
  /** Public halves of Airlock's own keys (keys/registry.ts); the private halves are in the vault. */
  'ssh.identity.public': matching('an authorized_keys line', /^[a-z0-9@.-]+ [A-Za-z0-9+/]+={0,2}( [^\r\n]*)?$/),
  'audit.signing.public': spkiPem,
  'attest.signing.public': spkiPem,
  /** The gate policy signing key (models/access/policy.ts): hosts pin it as policy-signing.pem. */
  'policy.signing.public': spkiPem,
  /** Audit alarms on record, kept for good as evidence (audit/alarm.ts); entries without an id are dropped. */
  'audit.alarms': json<AuditAlarm[]>('a list of alarms', (v) =>
    Array.isArray(v) ? (v.filter((a) => a && typeof a === 'object' && Number.isSafeInteger((a as AuditAlarm).id)) as AuditAlarm[]) : null,
  ),
  /** The syslog receiver (audit/forward.ts) and how far delivery got. */
  'audit.forward': json<ForwardConfig>('a syslog target', (x) => {
    const v = (x ?? {}) as Partial<ForwardConfig>;
    return typeof v.host === 'string' && typeof v.port === 'number' ? { host: v.host, port: v.port, tls: v.tls === true, caPem: v.caPem ?? null } : null;
  }),
  'audit.forwarded_seq': integer(0),
} satisfies Record<string, AnyCodec>;

export type MetaKey = keyof typeof META_KEYS;
export type MetaValue<K extends MetaKey> = (typeof META_KEYS)[K] extends Codec<infer T> ? T : never;
type CounterKey = { [K in MetaKey]: MetaValue<K> extends number ? K : never }[MetaKey];

/** A stored value that is not a value of its key: never used, always named. */
export class MetaValueError extends AirlockError {
  constructor(
    readonly key: MetaKey,
    reason: string,
  ) {
    super('INTERNAL', `The database's meta value "${key}" is malformed (${reason}); it was not used.`);
  }
}

export interface Meta {
  /** The value, or null when absent; a malformed value throws MetaValueError. */
  get<K extends MetaKey>(key: K): MetaValue<K> | null;
  /** The value, or null when absent or malformed: for values that fall back to a default (settings, the syslog target). */
  getIfValid<K extends MetaKey>(key: K): MetaValue<K> | null;
  set<K extends MetaKey>(key: K, value: MetaValue<K>): void;
  delete(...keys: MetaKey[]): void;
  /** Sets a counter to `value` unless it already holds more, in one statement (another process may be further). */
  raise(key: CounterKey, value: number): void;
}

/**
 * The typed accessor of `meta` on a connection. Its statements run on that connection, so inside a
 * caller's `db.transaction` they are part of it, and outside one each is its own; it holds no state.
 */
export function meta(db: Db): Meta {
  const read = (key: MetaKey) => {
    // A caller outside TypeScript's reach (a cast, plain JS) still cannot read an undeclared key.
    if (!Object.hasOwn(META_KEYS, key)) throw new AirlockError('INTERNAL', `"${String(key).slice(0, 64)}" is not a declared meta key.`);
    return (db.prepare('SELECT value FROM meta WHERE key = ?').pluck().get(key) as string | undefined) ?? null;
  };
  const decode = <K extends MetaKey>(key: K, text: string): MetaValue<K> => {
    try {
      return (META_KEYS[key] as Codec<MetaValue<K>>).decode(text);
    } catch (e) {
      throw new MetaValueError(key, (e as Error).message);
    }
  };
  return {
    get(key) {
      const text = read(key);
      return text === null ? null : decode(key, text);
    },
    getIfValid(key) {
      const text = read(key);
      if (text === null) return null;
      try {
        return decode(key, text);
      } catch {
        return null;
      }
    },
    set(key, value) {
      const text = (META_KEYS[key] as Codec<typeof value>).encode(value);
      decode(key, text); // never write what could not be read back
      db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value').run(key, text);
    },
    delete(...keys) {
      if (keys.length) db.prepare(`DELETE FROM meta WHERE key IN (${keys.map(() => '?').join(', ')})`).run(...keys);
    },
    raise(key, value) {
      db.prepare(
        `INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET
           value = CAST(max(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER)) AS TEXT)`,
      ).run(key, (META_KEYS[key] as Codec<number>).encode(value));
    },
  };
}
