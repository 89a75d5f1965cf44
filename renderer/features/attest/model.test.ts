import { describe, expect, it } from 'vitest';
import { attestationFileName } from './model';

describe('formatting', () => {
  it('names exported attestation files after the host and id', () => {
    expect(attestationFileName('host1', 'att-0123456789abcdef')).toBe('attestation-host1-att-0123456789abcdef.json');
    expect(attestationFileName('../x', 'att-1')).toBe('attestation-.._x-att-1.json');
  });
});
