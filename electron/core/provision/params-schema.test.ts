import { describe, expect, it } from 'vitest';
import { paramsSchemaOf } from './playbooks';
import { STEPS } from './steps/index';

/** The console's parameters form is generated from these (renderer/features/provision/paramsForm.ts). */
describe('paramsSchemaOf', () => {
  it('expresses every step type as a JSON Schema object the form can read', () => {
    for (const [type, impl] of STEPS) {
      const s = paramsSchemaOf(impl.params) as { type?: string; properties?: Record<string, unknown>; additionalProperties?: unknown };
      expect(s.type, type).toBe('object');
      expect(Object.keys(s.properties ?? {}).length, type).toBeGreaterThan(0);
      expect(s.additionalProperties, type).toBe(false);
    }
  });

  it('keeps bounds, choices and defaults (input side: a defaulted parameter is not required)', () => {
    const model = paramsSchemaOf(STEPS.get('model-weights')!.params) as { properties: Record<string, Record<string, unknown>>; required: string[] };
    expect(model.properties.connections).toMatchObject({ type: 'integer', minimum: 1, maximum: 8, default: 2 });
    expect(model.required).toEqual(['model', 'version']);
    const sshd = paramsSchemaOf(STEPS.get('ssh-hardening')!.params) as { properties: Record<string, Record<string, unknown>> };
    expect(sshd.properties.permitRootLogin).toMatchObject({ enum: ['no', 'prohibit-password', 'forced-commands-only', 'yes'] });
  });
});
