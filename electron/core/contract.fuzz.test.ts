/**
 * Property-based fuzzing of every channel in the contract (issue 3: "at least 1,000 malformed
 * inputs per channel, zero crashes, every refusal a typed error").
 *
 * For each channel: fast-check's `anything()` (with Maps, Sets, Dates, typed arrays, BigInts,
 * null-prototype objects: what Electron's structured clone can deliver) plus inputs built from the
 * channel's own zod schema — the right keys with wrong types, near-valid inputs with one key
 * wrong, extra keys (`__proto__`, `constructor`, …), huge strings, deep nesting, numbers out of
 * range, NaN/±Infinity/-0, BigInt, lone surrogates and other Unicode edge cases — sent through the
 * real dispatcher (the same composition root the shells use) as a signed-in administrator, and
 * the public channels also without a session.
 *
 * The oracle, per call: the promise never rejects; the result is either
 * `{ ok: false, error: { code ∈ ErrorCodes, message: string } }` (plain data, no stack, no path) or
 * `{ ok: true, value }` with `value` valid against the channel's `out` schema; an input the
 * channel's `in` schema rejects is refused with INVALID_INPUT (so the schema, not the service,
 * is what stops it). After each channel: the core still answers, the admin is still signed in,
 * `Object.prototype` (and friends) gained nothing; at the end the audit chain verifies.
 *
 * No fuzz input can reach the network: the database has no hosts (scans have nothing to do; an
 * import that adds one is undone at once), and any generated input that *parses* for a channel
 * that could connect somewhere (hosts:probe, hosts:add, hosts:confirm, terminal:open,
 * audit:setForwarding, and any channel whose input schema names an address, host, port, URL or
 * path at any depth) is filtered out before it is sent. Inputs that parse for session:, totp: and
 * settings: channels are filtered out too: they could sign the fuzzing session out, lock it, or
 * reconfigure it, which would leave the remaining channels unfuzzed.
 *
 * Reproduce a failure with FUZZ_SEED=<seed> (printed on failure).
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { channelNames, channels, isChannelName, type ChannelDef } from '../../shared/contract/index';
import { ErrorCodes } from '../../shared/domain/errors';
import { ADMIN, testCore, type TestClient, type TestCore } from '../../test/support/core';

const RUNS = 1000;
/** Runs that may include valid inputs (and, without a session, the non-public channels). */
const MIXED_RUNS = 200;
const SEED = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : undefined;
const CODES = new Set<string>(ErrorCodes);

/** Channels that open connections when their input is valid (the key rule below would catch them too). */
const NETWORK_CHANNELS = new Set(['hosts:probe', 'hosts:add', 'hosts:confirm', 'terminal:open', 'audit:setForwarding']);
/** Input keys, at any depth, that name somewhere to connect to or a file: a valid value is never sent. */
const REACHING_KEY = /^(address|addresses|host|hosts|hostname|url|uri|endpoint|port|path|file|filename|dir|directory|socket|server)$/i;
/** Channel prefixes whose valid inputs could end, lock or reconfigure the fuzzing session. */
const SESSION_PREFIXES = ['session:', 'totp:', 'settings:'];

// -------------------------------------------------------------------------------------------------
// Schema introspection (zod 4): the top-level keys of a channel's input and a few values that pass
// each key's own schema, to build near-valid inputs with one part wrong.
// -------------------------------------------------------------------------------------------------

interface ZodDefLike {
  type: string;
  innerType?: z.ZodType;
  in?: z.ZodType;
  options?: z.ZodType[];
  left?: z.ZodType;
  right?: z.ZodType;
  element?: z.ZodType;
  valueType?: z.ZodType;
  items?: z.ZodType[];
  getter?: () => z.ZodType;
}
const defOf = (s: z.ZodType): ZodDefLike => (s as unknown as { def: ZodDefLike }).def;

function unwrap(s: z.ZodType): z.ZodType {
  for (let i = 0; i < 16; i++) {
    const d = defOf(s);
    if (d.innerType && ['optional', 'default', 'nullable', 'readonly', 'catch', 'prefault', 'nonoptional'].includes(d.type)) s = d.innerType;
    else if (d.type === 'pipe' && d.in) s = d.in;
    else break;
  }
  return s;
}

/** The top-level keys of an input schema (of every object alternative, for a union). */
function shapeOf(s: z.ZodType): Record<string, z.ZodType> {
  const u = unwrap(s);
  const d = defOf(u);
  if (d.type === 'object') return (u as unknown as { shape: Record<string, z.ZodType> }).shape;
  if (d.type === 'union' && d.options) return Object.assign({}, ...d.options.slice().reverse().map(shapeOf)) as Record<string, z.ZodType>;
  if (d.type === 'intersection' && d.left && d.right) return { ...shapeOf(d.right), ...shapeOf(d.left) };
  return {};
}

/** Every object key anywhere in a schema (nested objects, unions, arrays, records, tuples). */
function allKeys(s: z.ZodType, out = new Set<string>(), depth = 0): Set<string> {
  if (depth > 12) return out;
  const u = unwrap(s);
  const d = defOf(u);
  if (d.type === 'object') {
    for (const [k, v] of Object.entries((u as unknown as { shape: Record<string, z.ZodType> }).shape)) {
      out.add(k);
      allKeys(v, out, depth + 1);
    }
  }
  for (const child of [...(d.options ?? []), ...(d.items ?? []), d.left, d.right, d.element, d.valueType]) if (child) allKeys(child, out, depth + 1);
  if (d.type === 'lazy' && d.getter) allKeys(d.getter(), out, depth + 1);
  return out;
}

/**
 * Plausible values: those a key's schema accepts become the "valid" part of near-valid inputs.
 * Never the fuzzing admin's own name: a valid users:disable/remove/resetPassword of it would end
 * the run for every channel after it.
 */
const CANDIDATES: unknown[] = [
  'mallory', 'bob', 'root', 'host1', 'gpu-a', 'x', 'admin', 'officer', 'auditor', 'req-1', 'a'.repeat(64),
  'correct horse battery staple', `SHA256:${'A'.repeat(43)}`, '123456', 'hosts:list', '',
  0, 1, 2, 22, 24, 80, 100, 200, 1000, true, false, null, [], ['host1'], ['admin'], ['auditor'], {},
];

function candidatesFor(s: z.ZodType): unknown[] {
  return CANDIDATES.filter((v) => s.safeParse(v).success);
}

// -------------------------------------------------------------------------------------------------
// Hostile values
// -------------------------------------------------------------------------------------------------

function nest(depth: number, wrap: (v: unknown) => unknown): unknown {
  let v: unknown = 'bottom';
  for (let i = 0; i < depth; i++) v = wrap(v);
  return v;
}

/** An object whose own enumerable keys are exactly these (even `__proto__`), as JSON.parse makes them. */
function ownKeys(entries: Array<[string, unknown]>): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (const [k, v] of entries) Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
  return o;
}

const HUGE = 'A'.repeat(2 * 1024 * 1024 + 1); // over every string limit, FileText's 1 MiB included
const HUGE_ASTRAL = '\u{1F600}'.repeat(300_000);
const DEEP_OBJECT = nest(5000, (v) => ({ a: v }));
const DEEP_ARRAY = nest(5000, (v) => [v]);

const UNICODE_EDGES = [
  '\ud800', '\udfff', 'a\ud800b', '\udc00\ud800', '\u0000', 'a\u0000b', '\u202eevil', '\ufeff', '\u2028\u2029', '\uffff', '\ufffe',
  '\u{10FFFF}', 'e\u0301', '\u0130', '\u00df', '\u{1F600}', '\u200b', '\x1b]0;pwned\x07', '\x1b[2J', '\u009b31m', '<img src=x onerror=alert(1)>',
  '../../../etc/passwd', '..\\..\\boot.ini', '%00', '%2e%2e%2f', '${7*7}', "'; DROP TABLE hosts; --", `SHA256:${'/'.repeat(43)}`, ' ', '\t', '\n',
  '-1', 'NaN', 'true', 'null', '__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'A'.repeat(65), 'A'.repeat(1025),
];

const NUMBER_EDGES = [
  NaN, Infinity, -Infinity, -0, 0, -1, 0.5, 1.0000001, 1e308, -1e308, 5e-324, Number.EPSILON, Number.MAX_SAFE_INTEGER + 2,
  Number.MIN_SAFE_INTEGER - 2, 2 ** 31, 2 ** 32, 65535, 65536, 1000001, 600001,
];

/** Fresh on every use: the core must not be able to poison later runs through a shared object. */
const SPECIAL_FACTORIES: Array<() => unknown> = [
  () => null,
  () => undefined,
  () => HUGE,
  () => HUGE_ASTRAL,
  () => DEEP_OBJECT,
  () => DEEP_ARRAY,
  () => JSON.parse('{"__proto__":{"polluted":"yes","isAdmin":true,"roles":["admin"]}}'),
  () => JSON.parse('{"constructor":{"prototype":{"polluted":"yes"}}}'),
  () => ownKeys([['__proto__', { polluted: 'yes' }], ['constructor', { prototype: { polluted: 'yes' } }]]),
  () => Object.assign(Object.create(null) as object, { name: 'mallory', polluted: 'yes' }),
  () => new Map<unknown, unknown>([['name', 'mallory'], ['__proto__', { polluted: 'yes' }]]),
  () => new Set(['mallory']),
  () => new Date(NaN),
  () => new Date(8.64e15),
  () => new Uint8Array([0x1b, 0x5b, 0x32, 0x4a]),
  () => new ArrayBuffer(8),
  () => 10n ** 30n,
  () => -1n,
  () => {
    const sparse: unknown[] = [];
    sparse[2] = 'sparse';
    return sparse;
  },
  () => Array.from({ length: 20_000 }, () => 'host1'),
  () => Object.assign(['mallory'], { polluted: 'yes' }),
  () => new String('mallory'),
  () => new Number(22),
  () => new Boolean(false),
  () => ({ toString: 'not a function', valueOf: 42, toJSON: 'x' }),
  () => ({ length: 1e9, 0: 'x' }),
];

const anything = fc.anything({
  withBigInt: true,
  withBoxedValues: true,
  withDate: true,
  withMap: true,
  withSet: true,
  withNullPrototype: true,
  withObjectString: true,
  withTypedArray: true,
  withSparseArray: true,
  stringUnit: 'binary',
  maxDepth: 4,
});

const special = fc.constantFrom(...SPECIAL_FACTORIES).map((f) => f());

const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  { arbitrary: special, weight: 3 },
  { arbitrary: fc.constantFrom(...UNICODE_EDGES), weight: 3 },
  { arbitrary: fc.constantFrom(...NUMBER_EDGES), weight: 3 },
  { arbitrary: fc.string({ unit: 'binary', maxLength: 200 }), weight: 2 },
  { arbitrary: fc.oneof(fc.double(), fc.integer(), fc.bigInt()), weight: 1 },
  { arbitrary: fc.boolean(), weight: 1 },
  { arbitrary: anything, weight: 3 },
);

const EXTRA_KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'valueOf', 'hasOwnProperty', '__defineGetter__', 'polluted', 'isAdmin', 'roles', 'session', ''];

/** The inputs thrown at one channel. */
function inputsFor(def: ChannelDef): fc.Arbitrary<unknown> {
  const shape = shapeOf(def.in);
  const keys = Object.keys(shape);
  const valid = Object.fromEntries(keys.map((k) => [k, candidatesFor(shape[k]!)]));
  const nearValid: fc.Arbitrary<Record<string, unknown>> = keys.length
    ? fc.record(
        Object.fromEntries(keys.map((k) => [k, valid[k]!.length ? fc.constantFrom(...valid[k]!) : hostileValue])) as Record<string, fc.Arbitrary<unknown>>,
        { requiredKeys: [] },
      )
    : fc.constant({});
  const extras = fc.array(fc.tuple(fc.oneof(fc.constantFrom(...EXTRA_KEYS), fc.string({ maxLength: 12 })), hostileValue), { minLength: 1, maxLength: 4 });

  const arbs: Array<fc.WeightedArbitrary<unknown>> = [
    { arbitrary: anything, weight: 4 },
    { arbitrary: special, weight: 2 },
    { arbitrary: hostileValue, weight: 1 },
    // Extra keys on an otherwise plausible input (strict schemas must refuse them all).
    {
      arbitrary: fc.tuple(nearValid, extras).map(([base, extra]) => ownKeys([...Object.entries(base), ...extra])),
      weight: 3,
    },
  ];
  if (keys.length) {
    // The right keys, each with a wrong (or at least hostile) value.
    arbs.push({
      arbitrary: fc.record(Object.fromEntries(keys.map((k) => [k, hostileValue])) as Record<string, fc.Arbitrary<unknown>>, { requiredKeys: [] }),
      weight: 4,
    });
    // Near-valid: plausible everywhere but one key.
    arbs.push({
      arbitrary: fc.tuple(nearValid, fc.constantFrom(...keys), hostileValue).map(([base, k, v]) => ownKeys([...Object.entries(base).filter(([x]) => x !== k), [k, v]])),
      weight: 4,
    });
  }
  return fc.oneof(...arbs);
}

/** Whether a valid input to this channel may be sent at all (see the header). */
function mayBeValid(name: string, def: ChannelDef): boolean {
  if (NETWORK_CHANNELS.has(name)) return false;
  if (SESSION_PREFIXES.some((p) => name.startsWith(p))) return false;
  return ![...allKeys(def.in)].some((k) => REACHING_KEY.test(k));
}

const parses = (def: ChannelDef, input: unknown) => def.in.safeParse(input ?? {}).success;

// -------------------------------------------------------------------------------------------------
// The oracle
// -------------------------------------------------------------------------------------------------

function short(v: unknown): string {
  try {
    const s = fc.stringify(v);
    return s.length > 300 ? `${s.slice(0, 300)}… (${s.length} chars)` : s;
  } catch {
    return '(unprintable)';
  }
}

/**
 * Checks one result; returns what is wrong, or null. `refusedWith`: the codes an invalid input
 * (or every input, for a channel the client may not call) must be refused with.
 */
function judge(name: string, def: ChannelDef, input: unknown, r: unknown, refusedWith: readonly string[] | null): string | null {
  if (!r || typeof r !== 'object' || Array.isArray(r)) return 'result is not an object';
  const res = r as Record<string, unknown>;
  if (res.ok === false) {
    const keys = Object.keys(res).sort().join(',');
    if (keys !== 'error,ok') return `refusal has keys ${keys}`;
    const e = res.error as Record<string, unknown> | null;
    if (!e || typeof e !== 'object' || Object.getPrototypeOf(e) !== Object.prototype) return 'error is not a plain object';
    if (Object.keys(e).sort().join(',') !== 'code,message') return `error has keys ${Object.keys(e).join(',')}`;
    if (typeof e.code !== 'string' || !CODES.has(e.code)) return `error code ${String(e.code)} is not one of ErrorCodes`;
    if (typeof e.message !== 'string') return 'error message is not a string';
    if (e.code === 'INTERNAL') return `INTERNAL error: ${e.message}`;
    if (/\n\s+at |node_modules|\/work\/|\.ts:\d+/.test(e.message)) return `error message leaks a stack or path: ${e.message.slice(0, 200)}`;
    if (refusedWith && !refusedWith.includes(e.code)) return `refused with ${e.code}, expected ${refusedWith.join(' or ')}: ${e.message.slice(0, 200)}`;
    return null;
  }
  if (res.ok === true) {
    if (refusedWith) return `accepted, but should have been refused with ${refusedWith.join(' or ')}`;
    if (Object.keys(res).sort().join(',') !== 'ok,value') return `success has keys ${Object.keys(res).join(',')}`;
    const out = def.out.safeParse(res.value);
    if (!out.success) return `value does not match the ${name} out schema`;
    return null;
  }
  return 'result.ok is not a boolean';
}

// -------------------------------------------------------------------------------------------------
// Prototype pollution watch
// -------------------------------------------------------------------------------------------------

const WATCHED: Array<[string, object]> = [
  ['Object.prototype', Object.prototype],
  ['Array.prototype', Array.prototype],
  ['Function.prototype', Function.prototype],
  ['String.prototype', String.prototype],
];
const baseline = new Map(WATCHED.map(([n, o]) => [n, new Set(Reflect.ownKeys(o))]));

/**
 * What the fuzzing added to the watched prototypes, removed again at once (so that one polluting
 * input is reported as itself instead of breaking every later test and the runner).
 */
function pollution(): string[] {
  const out: string[] = [];
  for (const [n, o] of WATCHED) {
    for (const k of Reflect.ownKeys(o)) {
      if (baseline.get(n)!.has(k)) continue;
      out.push(`${n}.${String(k)} was added`);
      Reflect.deleteProperty(o, k);
    }
  }
  return out;
}

// -------------------------------------------------------------------------------------------------

let t: TestCore;
let admin: TestClient;
let officer: TestClient;
let anon: TestClient;

beforeAll(async () => {
  t = await testCore();
  admin = t.client();
  anon = t.client();
  await admin.ok('session:setup', ADMIN);
  // For the few channels only an officer may call (audit:acknowledgeAlarm).
  await admin.ok('users:create', { name: 'off1', password: 'an officer password here', roles: ['officer'], mustChangePassword: false });
  officer = t.client();
  await officer.ok('session:login', { name: 'off1', password: 'an officer password here' });
});
/** The admin, or an officer for a channel an admin may not call. */
const callerFor = (def: ChannelDef) => (def.roles !== 'public' && !def.roles.includes('admin') ? officer : admin);
afterAll(async () => t?.close());

/**
 * Sends `runs` generated inputs to `name` as `client` and judges each result. `malformedOnly`:
 * only inputs the channel's schema rejects (so exactly `runs` malformed inputs are sent);
 * otherwise valid inputs may be sent too where that is safe (see `mayBeValid`).
 */
async function fuzz(
  client: TestClient,
  name: string,
  opts: { runs: number; malformedOnly: boolean; expect: (def: ChannelDef, input: unknown) => readonly string[] | null },
): Promise<{ sent: number; malformed: number }> {
  const def = (channels as Record<string, ChannelDef>)[name]!;
  const sendValid = !opts.malformedOnly && mayBeValid(name, def);
  let sent = 0;
  let malformed = 0;
  await fc.assert(
    fc.asyncProperty(
      inputsFor(def).filter((input) => sendValid || !parses(def, input)),
      async (input) => {
        sent++;
        if (!parses(def, input)) malformed++;
        let r: unknown;
        try {
          r = await t.core.dispatch(client.ctx, name, input);
        } catch (e) {
          throw new Error(`${name} threw ${String(e)} for ${short(input)}`);
        }
        const polluted = pollution();
        if (polluted.length) throw new Error(`${name}: prototype pollution: ${polluted.join(', ')}\n  input: ${short(input)}`);
        const wrong = judge(name, def, input, r, opts.expect(def, input));
        if (wrong) throw new Error(`${name}: ${wrong}\n  input: ${short(input)}`);
        // Whatever an import added, remove at once: a later scan must have nothing to connect to.
        if (name.startsWith('hosts:import') && (r as { ok: boolean; value?: { added?: unknown[] } }).value?.added?.length) {
          for (const h of await admin.ok('hosts:list', {})) await admin.ok('hosts:remove', { name: h.name });
        }
      },
    ),
    { numRuns: opts.runs, seed: SEED, endOnFailure: true },
  );
  return { sent, malformed };
}

/** Invalid input → INVALID_INPUT (the schema stops it, not the service); valid input → a typed result. */
const bySchema = (def: ChannelDef, input: unknown) => (parses(def, input) ? null : ['INVALID_INPUT']);

describe('fuzzing every channel of the contract', () => {
  const names = channelNames.filter((n) => n !== 'session:logout');
  // A slow, whole-trail channel first, while the trail is short.
  names.sort((a, b) => Number(b === 'audit:verify') - Number(a === 'audit:verify'));

  it('has channels to fuzz, and a working admin session to fuzz them with', async () => {
    expect(names.length).toBeGreaterThan(15);
    expect(await admin.ok('session:status', {})).toMatchObject({ user: { name: ADMIN.admin } });
    expect(await admin.ok('hosts:list', {})).toEqual([]);
  });

  describe.each(names)('%s', (name) => {
    const def = (channels as Record<string, ChannelDef>)[name]!;
    it(`${RUNS} malformed inputs as an admin: each refused INVALID_INPUT, typed, plain`, async () => {
      const { sent, malformed } = await fuzz(callerFor(def), name, { runs: RUNS, malformedOnly: true, expect: bySchema });
      expect([sent, malformed]).toEqual([RUNS, RUNS]);
      expect(pollution()).toEqual([]);
      // Still alive, still signed in, still no host to connect to.
      expect(await admin.ok('session:status', {})).toMatchObject({ user: { name: ADMIN.admin } });
      expect(await admin.ok('hosts:list', {})).toEqual([]);
    });

    it('mixed inputs as an admin (valid ones too, where safe): typed refusals or results valid against the out schema', async () => {
      await fuzz(callerFor(def), name, { runs: MIXED_RUNS, malformedOnly: false, expect: bySchema });
      expect(pollution()).toEqual([]);
      expect(await admin.ok('session:status', {})).toMatchObject({ user: { name: ADMIN.admin } });
      expect(await admin.ok('hosts:list', {})).toEqual([]);
    });

    if (def.roles === 'public') {
      it(`${RUNS} malformed inputs without a session: each refused INVALID_INPUT`, async () => {
        const { malformed } = await fuzz(anon, name, { runs: RUNS, malformedOnly: true, expect: bySchema });
        expect(malformed).toBe(RUNS);
        expect(pollution()).toEqual([]);
      });
    } else {
      it('without a session: refused UNAUTHENTICATED whatever the input', async () => {
        await fuzz(anon, name, { runs: MIXED_RUNS, malformedOnly: false, expect: () => ['UNAUTHENTICATED'] });
        expect(pollution()).toEqual([]);
      });
    }
  });

  it(`${RUNS} unknown channel names: UNKNOWN_CHANNEL`, async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(fc.string({ unit: 'binary' }), fc.constantFrom('__proto__', 'constructor', 'hasOwnProperty', 'hosts:', ':', 'HOSTS:LIST', 'hosts:list\0', ' hosts:list', HUGE), anything).filter((n) => !isChannelName(n)),
        anything,
        async (name, input) => {
          const r = await t.core.dispatch(admin.ctx, name, input);
          expect(r).toMatchObject({ ok: false, error: { code: 'UNKNOWN_CHANNEL' } });
        },
      ),
      { numRuns: RUNS, seed: SEED, endOnFailure: true },
    );
  });

  it('afterwards: the core answers, nothing is polluted, the audit chain verifies', async () => {
    expect(pollution()).toEqual([]);
    expect(await admin.ok('session:status', {})).toMatchObject({ user: { name: ADMIN.admin } });
    const report = await admin.ok('audit:verify', {});
    expect(report).toMatchObject({ ok: true, firstBad: null });
    expect(report.checked).toBeGreaterThan(names.length * RUNS);
  });
});

