import type { PlaybookInfo } from '../../../shared/contract/provision';
import type { Overrides } from './model';

/**
 * The playbook's parameters as a form (issue 11): fields are generated from each step type's JSON
 * Schema (PlaybookInfo.steps[].paramsSchema, made by the core from the step's zod schema), values
 * are checked here before Plan, in words next to the field. The form edits the same overrides
 * object the "Advanced: JSON" view shows, so the two round-trip. The core checks everything again
 * (and what JSON Schema cannot say, such as a CIDR's syntax, only there).
 */

/** The part of JSON Schema the form reads. */
export interface JsonSchema {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean | JsonSchema;
  items?: JsonSchema;
  enum?: unknown[];
  const?: unknown;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  minItems?: number;
  maxItems?: number;
  default?: unknown;
  description?: string;
  anyOf?: JsonSchema[];
}

export type FieldKind = 'boolean' | 'enum' | 'integer' | 'number' | 'string' | 'strings' | 'json';

export interface ParamField {
  name: string;
  kind: FieldKind;
  schema: JsonSchema;
  required: boolean;
  /** For enum fields. */
  options: string[];
}

type Step = PlaybookInfo['steps'][number];

function typeOf(s: JsonSchema): string | undefined {
  return Array.isArray(s.type) ? s.type.find((t) => t !== 'null') : s.type;
}

export function kindOf(s: JsonSchema): FieldKind {
  if (Array.isArray(s.enum) && s.enum.every((v) => typeof v === 'string')) return 'enum';
  const t = typeOf(s);
  if (t === 'boolean' || t === 'integer' || t === 'number' || t === 'string') return t;
  if (t === 'array' && s.items && typeOf(s.items) === 'string' && !s.items.enum) return 'strings';
  return 'json';
}

/** The form's fields for one step, in the schema's order (empty when the step has no schema). */
export function fieldsOf(step: Pick<Step, 'paramsSchema'>): ParamField[] {
  const schema = step.paramsSchema as JsonSchema | null | undefined;
  if (!schema?.properties) return [];
  const required = new Set(schema.required ?? []);
  return Object.entries(schema.properties).map(([name, s]) => ({
    name,
    kind: kindOf(s),
    schema: s,
    required: required.has(name),
    options: kindOf(s) === 'enum' ? (s.enum as string[]) : [],
  }));
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function range(s: JsonSchema, unit = ''): string {
  const lo = s.minimum ?? (s.exclusiveMinimum !== undefined ? s.exclusiveMinimum + 1 : undefined);
  const hi = s.maximum ?? (s.exclusiveMaximum !== undefined ? s.exclusiveMaximum - 1 : undefined);
  if (lo !== undefined && hi !== undefined) return ` from ${lo} to ${hi}${unit}`;
  if (lo !== undefined) return ` of at least ${lo}${unit}`;
  if (hi !== undefined) return ` of at most ${hi}${unit}`;
  return '';
}

const plural = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;

/** What is wrong with `value` for `schema`, in words (no patterns, no schema jargon), or null. */
export function problemOf(schema: JsonSchema, value: unknown): string | null {
  if (value === undefined) return null;
  if (schema.anyOf) {
    const problems = schema.anyOf.map((s) => problemOf(s, value));
    return problems.some((p) => p === null) ? null : (problems[0] ?? null);
  }
  if (value === null) return Array.isArray(schema.type) && schema.type.includes('null') ? null : 'a value is needed';
  if (Array.isArray(schema.enum)) {
    return schema.enum.includes(value) ? null : `one of: ${schema.enum.map((v) => String(v)).join(', ')}`;
  }
  switch (typeOf(schema)) {
    case 'boolean':
      return typeof value === 'boolean' ? null : 'yes or no (true or false)';
    case 'integer':
    case 'number': {
      const whole = typeOf(schema) === 'integer';
      const want = `${whole ? 'a whole number' : 'a number'}${range(schema)}`;
      if (typeof value !== 'number' || !Number.isFinite(value)) return want;
      if (whole && !Number.isInteger(value)) return want;
      if (schema.minimum !== undefined && value < schema.minimum) return want;
      if (schema.maximum !== undefined && value > schema.maximum) return want;
      if (schema.exclusiveMinimum !== undefined && value <= schema.exclusiveMinimum) return want;
      if (schema.exclusiveMaximum !== undefined && value >= schema.exclusiveMaximum) return want;
      return null;
    }
    case 'string': {
      if (typeof value !== 'string') return 'text';
      if (schema.minLength !== undefined && value.length < schema.minLength) return schema.minLength === 1 ? 'cannot be empty' : `at least ${plural(schema.minLength, 'character')}`;
      if (schema.maxLength !== undefined && value.length > schema.maxLength) return `at most ${plural(schema.maxLength, 'character')}`;
      if (schema.pattern !== undefined) {
        let re: RegExp | null = null;
        try {
          re = new RegExp(schema.pattern);
        } catch {
          re = null;
        }
        if (re && !re.test(value)) return value === '' ? 'cannot be empty' : `"${value.length > 40 ? value.slice(0, 40) + '…' : value}" is not in the form this parameter takes`;
      }
      return null;
    }
    case 'array': {
      if (!Array.isArray(value)) return 'a list';
      if (schema.minItems !== undefined && value.length < schema.minItems) return `at least ${plural(schema.minItems, 'item')}`;
      if (schema.maxItems !== undefined && value.length > schema.maxItems) return `at most ${plural(schema.maxItems, 'item')}`;
      if (schema.items) {
        for (let i = 0; i < value.length; i++) {
          const p = problemOf(schema.items, value[i]);
          if (p) return `item ${i + 1}: ${p}`;
        }
      }
      return null;
    }
    case 'object': {
      if (!isPlainObject(value)) return 'an object of named fields';
      for (const r of schema.required ?? []) if (value[r] === undefined) return `"${r}" is needed`;
      for (const [k, v] of Object.entries(value)) {
        const s = schema.properties?.[k];
        if (!s) {
          if (schema.additionalProperties === false) return `has no field "${k}"`;
          continue;
        }
        const p = problemOf(s, v);
        if (p) return `${k}: ${p}`;
      }
      return null;
    }
    default:
      return null;
  }
}

/** Each step's problems, by parameter, for the playbook's parameters with `overrides` over them. */
export function validateOverrides(pb: Pick<PlaybookInfo, 'steps'>, overrides: Overrides): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {};
  for (const step of pb.steps) {
    const schema = step.paramsSchema as JsonSchema | null | undefined;
    if (!schema?.properties) continue;
    const mine = overrides[step.id] ?? {};
    const merged: Record<string, unknown> = { ...step.params, ...mine };
    const problems: Record<string, string> = {};
    const required = new Set(schema.required ?? []);
    for (const [name, s] of Object.entries(schema.properties)) {
      if (merged[name] === undefined) {
        if (required.has(name)) problems[name] = 'a value is needed';
        continue;
      }
      const p = problemOf(s, merged[name]);
      if (p) problems[name] = p;
    }
    if (schema.additionalProperties === false) {
      for (const k of Object.keys(mine)) if (!schema.properties[k]) problems[k] = `this step has no parameter "${k}" (it has: ${Object.keys(schema.properties).join(', ')})`;
    }
    if (Object.keys(problems).length) out[step.id] = problems;
  }
  return out;
}

export function problemCount(problems: Record<string, Record<string, string>>): number {
  return Object.values(problems).reduce((n, p) => n + Object.keys(p).length, 0);
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * Set (or, with undefined or the playbook's own value, drop) one override; steps left without an
 * override disappear, so an untouched form is `{}`.
 */
export function setOverride(overrides: Overrides, step: Pick<Step, 'id' | 'params'>, name: string, value: unknown): Overrides {
  const mine = { ...(overrides[step.id] ?? {}) };
  if (value === undefined || same(value, step.params[name])) delete mine[name];
  else mine[name] = value;
  const { [step.id]: _old, ...rest } = overrides;
  return Object.keys(mine).length ? { ...rest, [step.id]: mine } : rest;
}

/** The value the form shows for a parameter: the override, else the playbook's (with its defaults). */
export function valueOf(overrides: Overrides, step: Pick<Step, 'id' | 'params'>, name: string): unknown {
  const mine = overrides[step.id];
  return mine && name in mine ? mine[name] : step.params[name];
}

/** A number field's text: empty → no override; a number → that number; anything else stays text (and is reported). */
export function numberFromText(text: string): number | string | undefined {
  const t = text.trim();
  if (t === '') return undefined;
  return /^-?\d+(\.\d+)?$/.test(t) ? Number(t) : t;
}

/** A list-of-text field: one item per line, blank lines ignored. */
export function linesToList(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
}

/** The JSON view's text for an overrides object ({} when nothing is overridden). */
export function overridesText(overrides: Overrides): string {
  return Object.keys(overrides).length ? JSON.stringify(overrides, null, 2) : '{}';
}
