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

/** Replaces lone surrogates (not valid Unicode, so not canonicalisable) with U+FFFD. */
export function wellFormed(s: string): string {
  return LONE_SURROGATE.test(s) ? s.replace(new RegExp(LONE_SURROGATE.source, 'g'), '\uFFFD') : s;
}

function write(value: unknown, seen: Set<object>): string | undefined {
  switch (typeof value) {
    case 'string':
      if (LONE_SURROGATE.test(value)) throw new Error('Lone surrogate is not allowed');
      return JSON.stringify(value);
    case 'number':
      if (Number.isNaN(value)) throw new Error('NaN is not allowed');
      if (!Number.isFinite(value)) throw new Error('Infinity is not allowed');
      return JSON.stringify(value);
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
        const keys = Object.keys(obj).sort();
        out = '{';
        let first = true;
        for (const k of keys) {
          const item = write(obj[k], seen);
          if (item === undefined) continue;
          if (!first) out += ',';
          first = false;
          out += write(k, seen)! + ':' + item;
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
