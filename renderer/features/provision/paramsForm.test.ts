import { describe, expect, it } from 'vitest';
import type { PlaybookInfo } from '../../../shared/contract/provision';
import { parseOverrides } from './model';
import { fieldsOf, numberFromText, overridesText, problemOf, setOverride, validateOverrides, valueOf, type JsonSchema } from './paramsForm';

/** What the core sends for a step like models.ts's (z.toJSONSchema, io: 'input'). */
const modelSchema: JsonSchema = {
  type: 'object',
  properties: {
    model: { type: 'string', minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]*$' },
    connections: { type: 'integer', minimum: 1, maximum: 8, default: 2 },
    rehash: { type: 'boolean', default: false },
    mode: { type: 'string', enum: ['fast', 'safe'] },
    tags: { type: 'array', items: { type: 'string' }, maxItems: 2 },
    probes: { type: 'array', items: { type: 'object', properties: { host: { type: 'string' }, port: { type: 'integer', minimum: 1, maximum: 65535 } }, required: ['host', 'port'], additionalProperties: false } },
  },
  required: ['model'],
  additionalProperties: false,
};
const step = { id: 'model', type: 'model-weights', title: 'Model', needs: { root: true, store: [] }, params: { model: 'tiny-llm', connections: 2, rehash: false }, paramsSchema: modelSchema as Record<string, unknown> };
const pb: Pick<PlaybookInfo, 'steps'> = { steps: [step] };

describe('the parameters form', () => {
  it('generates a field per parameter with its kind', () => {
    expect(fieldsOf(step).map((f) => [f.name, f.kind, f.required])).toEqual([
      ['model', 'string', true],
      ['connections', 'integer', false],
      ['rehash', 'boolean', false],
      ['mode', 'enum', false],
      ['tags', 'strings', false],
      ['probes', 'json', false],
    ]);
    expect(fieldsOf(step)[3]!.options).toEqual(['fast', 'safe']);
    expect(fieldsOf({ paramsSchema: null })).toEqual([]);
  });

  it('says in words what is wrong, without patterns or schema words', () => {
    expect(problemOf(modelSchema.properties!.connections!, 9)).toBe('a whole number from 1 to 8');
    expect(problemOf(modelSchema.properties!.connections!, 'abc')).toBe('a whole number from 1 to 8');
    expect(problemOf(modelSchema.properties!.connections!, 1.5)).toBe('a whole number from 1 to 8');
    expect(problemOf(modelSchema.properties!.connections!, 8)).toBeNull();
    expect(problemOf(modelSchema.properties!.mode!, 'slow')).toBe('one of: fast, safe');
    expect(problemOf(modelSchema.properties!.rehash!, 'yes')).toBe('yes or no (true or false)');
    expect(problemOf(modelSchema.properties!.tags!, ['a', 'b', 'c'])).toBe('at most 2 items');
    expect(problemOf(modelSchema.properties!.probes!, [{ host: 'x', port: 0 }])).toBe('item 1: port: a whole number from 1 to 65535');
    expect(problemOf(modelSchema.properties!.probes!, [{ host: 'x' }])).toBe('item 1: "port" is needed');
    const bad = problemOf(modelSchema.properties!.model!, 'no spaces please')!;
    expect(bad).toContain('not in the form');
    expect(bad).not.toMatch(/\^|\$|\[|pattern|regex|expected/i);
    expect(problemOf(modelSchema.properties!.model!, '')).toBe('cannot be empty');
  });

  it('edits overrides only: the playbook value drops the override, and the JSON view round-trips', () => {
    let o = setOverride({}, step, 'connections', 4);
    o = setOverride(o, step, 'tags', ['a']);
    expect(o).toEqual({ model: { connections: 4, tags: ['a'] } });
    expect(valueOf(o, step, 'connections')).toBe(4);
    expect(valueOf(o, step, 'rehash')).toBe(false);
    // Back to the playbook's value: no override left, and no empty step object.
    o = setOverride(o, step, 'connections', 2);
    o = setOverride(o, step, 'tags', undefined);
    expect(o).toEqual({});
    expect(overridesText(o)).toBe('{}');
    // Form → JSON text → parsed (what the JSON view shows and the form reads back).
    const edited = setOverride(setOverride({}, step, 'mode', 'safe'), step, 'probes', [{ host: '10.0.0.1', port: 22 }]);
    const back = parseOverrides(overridesText(edited), pb);
    expect('value' in back && back.value).toEqual(edited);
  });

  it('validates the merged values before Plan, naming the step and the parameter', () => {
    expect(validateOverrides(pb, {})).toEqual({});
    expect(validateOverrides(pb, { model: { connections: numberFromText('twelve') } })).toEqual({ model: { connections: 'a whole number from 1 to 8' } });
    expect(validateOverrides(pb, { model: { conections: 3 } }).model!.conections).toMatch(/^this step has no parameter "conections"/);
    expect(validateOverrides(pb, { model: { model: '' } })).toEqual({ model: { model: 'cannot be empty' } });
    expect(numberFromText(' 3 ')).toBe(3);
    expect(numberFromText('')).toBeUndefined();
  });
});
