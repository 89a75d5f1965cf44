import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { channels } from './index';
import { Address, HostName, SshUser, UserName } from './common';
import { HostLabel } from './hosts';
import { ModelName, ModelVersion, PlaybookName, StepId } from './provision';

/**
 * Names Airlock accepts as identifiers refuse every character that could make one name look like
 * another or steer what is displayed (shared/domain/visible-text.ts), wherever it is put.
 */
const HIDDEN = [
  0xe0001, 0xe0041, 0xe007f, 0x2028, 0x2029, 0x00ad, 0x115f, 0x1160, 0x3164, 0xffa0, 0x200b, 0x200d, 0x200e, 0x202a, 0x202e, 0x2066,
  0x2069, 0xfe0f, 0xe0100, 0x034f, 0x061c, 0x2060, 0xfeff, 0x00, 0x09, 0x0a, 0x0d, 0x1b, 0x7f, 0x85, 0x9b,
].map((c) => String.fromCodePoint(c));

const IDENTIFIERS = { UserName, HostName, HostLabel, SshUser, Address, PlaybookName, StepId, ModelName, ModelVersion } as const;
const SAMPLE: Record<keyof typeof IDENTIFIERS, string> = {
  UserName: 'alice',
  HostName: 'gpu1',
  HostLabel: 'rack-a',
  SshUser: 'ubuntu',
  Address: '10.0.0.1',
  PlaybookName: 'base',
  StepId: 'step-1',
  ModelName: 'llama',
  ModelVersion: '1.0',
};

describe('identifier schemas', () => {
  it('accept the plain name and refuse it with any hidden character inserted anywhere', () => {
    for (const [name, schema] of Object.entries(IDENTIFIERS) as Array<[keyof typeof IDENTIFIERS, (typeof IDENTIFIERS)[keyof typeof IDENTIFIERS]]>) {
      const plain = SAMPLE[name];
      expect(schema.safeParse(plain).success, name).toBe(true);
      fc.assert(
        fc.property(fc.constantFrom(...HIDDEN), fc.integer({ min: 0, max: plain.length }), (c, at) => {
          const spoof = plain.slice(0, at) + c + plain.slice(at);
          expect(schema.safeParse(spoof).success, `${name} with U+${c.codePointAt(0)!.toString(16)} at ${at}`).toBe(false);
        }),
        { numRuns: 300 },
      );
    }
  });

  it('a reason (read by approvers) and a playbook title refuse hidden characters too, naming the first', () => {
    const request = channels['approvals:request'].in;
    const ok = request.safeParse({ channel: 'users:create', input: {}, reason: 'night shift admin' });
    expect(ok.success).toBe(true);
    for (const c of HIDDEN) {
      const r = request.safeParse({ channel: 'users:create', input: {}, reason: `night ${c}shift admin` });
      expect(r.success, `U+${c.codePointAt(0)!.toString(16)}`).toBe(false);
    }
    const bidi = request.safeParse({ channel: 'users:create', input: {}, reason: 'approve \u202eevil' });
    expect(JSON.stringify(bidi.error?.issues)).toContain('U+202E');
  });
});
