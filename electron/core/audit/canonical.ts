/**
 * RFC 8785 (JSON Canonicalization Scheme) for the values the audit trail holds.
 *
 * Same output as the `canonicalize` package (the reference implementation the unit test
 * compares against with property-based inputs), written for speed: the audit append path
 * canonicalises every event, and the package's map/join/template recursion cost ~7 µs per
 * event on the benchmark machine, a third of a durable append.
 *
 * - object keys sorted by UTF-16 code units (`Array.prototype.sort` without a comparator);
 * - strings and numbers as ECMAScript `JSON.stringify` writes them (RFC 8785 §3.2.2);
 * - NaN, ±Infinity and strings with lone surrogates have no canonical form: they throw;
 * - `undefined`, functions and symbols are skipped in objects and written as null in arrays;
 * - `toJSON()` is honoured (a Date becomes its ISO string), as JSON.stringify does.
 */
export function canonical(value: unknown): string {
  const s = write(value, new Set());
  if (s === undefined) throw new Error('value has no canonical JSON form');
  return s;
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
/**
 * What JSON.stringify would escape (", \, control characters) or what needs a look (surrogates):
 * a string with none of these is written as itself between quotes, without calling it.
 */
const NEEDS_CARE = /["\\\u0000-\u001f\ud800-\udfff]/;
/** Object keys as JSON strings: a few distinct keys, written for every event. */
const keyCache = new Map<string, string>();

/** Replaces lone surrogates (not valid Unicode, so not canonicalisable) with U+FFFD. */
export function wellFormed(s: string): string {
  return LONE_SURROGATE.test(s) ? s.replace(new RegExp(LONE_SURROGATE.source, 'g'), '\uFFFD') : s;
}

function write(value: unknown, seen: Set<object>): string | undefined {
  switch (typeof value) {
    case 'string':
      return str(value);
    case 'number':
      if (Number.isNaN(value)) throw new Error('NaN is not allowed');
      if (!Number.isFinite(value)) throw new Error('Infinity is not allowed');
      return String(value); // the same Number::toString JSON.stringify uses (-0 → "0")
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object': {
      if (value === null) return 'null';
      if (seen.has(value)) throw new Error('Circular reference detected');
      const toJSON = (value as { toJSON?: unknown }).toJSON;
      if (typeof toJSON === 'function') {
        seen.add(value);
        const r = write((toJSON as () => unknown).call(value), seen);
        seen.delete(value);
        return r;
      }
      seen.add(value);
      let out: string;
      if (Array.isArray(value)) {
        out = '[';
        for (let i = 0; i < value.length; i++) {
          if (i > 0) out += ',';
          const item = write(value[i], seen);
          out += item === undefined ? 'null' : item;
        }
        out += ']';
      } else {
        const obj = value as Record<string, unknown>;
        const keys = sortKeys(Object.keys(obj));
        out = '{';
        let first = true;
        for (const k of keys) {
          const item = write(obj[k], seen);
          if (item === undefined) continue;
          if (!first) out += ',';
          first = false;
          out += key(k) + ':' + item;
        }
        out += '}';
      }
      seen.delete(value);
      return out;
    }
    case 'bigint':
      throw new Error('BigInt has no JSON form');
    default:
      // undefined, function, symbol
      return undefined;
  }
}

/**
 * Sorted by UTF-16 code units, as `sort()` without a comparator does (`<` on strings compares
 * code units); by insertion for the dozen keys of an event, which is several times faster.
 */
function sortKeys(keys: string[]): string[] {
  if (keys.length > 32) return keys.sort();
  for (let i = 1; i < keys.length; i++) {
    const k = keys[i]!;
    let j = i - 1;
    while (j >= 0 && keys[j]! > k) {
      keys[j + 1] = keys[j]!;
      j--;
    }
    keys[j + 1] = k;
  }
  return keys;
}

/** What the audit trail's caller supplies (AuditInput), in canonical order with seq and ts. */
const INPUT_KEYS = new Set(['actor', 'channel', 'errorCode', 'outcome', 'params', 'phase', 'principal', 'roles', 'session', 'shell', 'target']);
/** The last order of keys seen to be exactly INPUT_KEYS (inputs are built the same way each time). */
let inputKeyOrder: string[] = [];

/**
 * `canonical({ ...input, seq, ts })`, the same string, faster: the audit trail's event body. When
 * the input's own keys are those an audit input has (all, or all but one; and it has no toJSON), the
 * members are written in their known order with direct reads; anything else goes the general way.
 */
export function canonicalEvent(input: Record<string, unknown>, seq: number, ts: string): string {
  if (!inputKeys(Object.keys(input)) || typeof input.toJSON === 'function') return canonical({ ...input, seq, ts });
  const seen = new Set<object>([input]);
  let out = '{';
  out = member(out, '"actor":', input.actor, seen);
  out = member(out, '"channel":', input.channel, seen);
  out = member(out, '"errorCode":', input.errorCode, seen);
  out = member(out, '"outcome":', input.outcome, seen);
  out = member(out, '"params":', input.params, seen);
  out = member(out, '"phase":', input.phase, seen);
  out = member(out, '"principal":', input.principal, seen);
  out = member(out, '"roles":', input.roles, seen);
  out = member(out, '"seq":', seq, seen);
  out = member(out, '"session":', input.session, seen);
  out = member(out, '"shell":', input.shell, seen);
  out = member(out, '"target":', input.target, seen);
  out = member(out, '"ts":', ts, seen);
  return out + '}';
}

function inputKeys(keys: string[]): boolean {
  // All of them, or all but one (events without a principal: checkpoints, older callers).
  if (keys.length !== INPUT_KEYS.size && keys.length !== INPUT_KEYS.size - 1) return false;
  let same = keys.length === inputKeyOrder.length;
  for (let i = 0; same && i < keys.length; i++) same = keys[i] === inputKeyOrder[i];
  if (same) return true;
  for (const k of keys) if (!INPUT_KEYS.has(k)) return false;
  inputKeyOrder = keys; // distinct own keys, each one of INPUT_KEYS
  return true;
}

function member(out: string, keyJson: string, value: unknown, seen: Set<object>): string {
  const item = write(value, seen);
  if (item === undefined) return out;
  return out.length === 1 ? out + keyJson + item : out + ',' + keyJson + item;
}

function str(s: string): string {
  if (!NEEDS_CARE.test(s)) return '"' + s + '"';
  if (LONE_SURROGATE.test(s)) throw new Error('Lone surrogate is not allowed');
  return JSON.stringify(s);
}

function key(k: string): string {
  let v = keyCache.get(k);
  if (v === undefined) {
    v = str(k);
    if (keyCache.size >= 1000) keyCache.clear();
    keyCache.set(k, v);
  }
  return v;
}
