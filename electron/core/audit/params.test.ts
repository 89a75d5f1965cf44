import crypto from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { recordParams } from './params';

const key = crypto.randomBytes(32);
const hmac = (v: string) => `hmac-sha256:${crypto.createHmac('sha256', key).update(v).digest('hex')}`;
const token = 'tok_' + 'x'.repeat(40);

describe('audit parameters', () => {
  it('records a high-entropy secret by HMAC, so two events about it correlate without revealing it', () => {
    const a = recordParams({ name: 'ci', token }, ['token'], hmac);
    const b = recordParams({ name: 'other', token }, ['token'], hmac);
    const c = recordParams({ name: 'ci', token: token + 'y' }, ['token'], hmac);
    expect(a.token).toMatch(/^hmac-sha256:[0-9a-f]{64}$/);
    expect(a.token).toBe(b.token);
    expect(a.token).not.toBe(c.token);
    expect(JSON.stringify(a)).not.toContain(token);
  });

  it('keeps "[redacted]" while the HMAC key is sealed', () => {
    expect(recordParams({ token }, ['token'], null).token).toBe('[redacted]');
    expect(recordParams({ token }, ['token'], () => null).token).toBe('[redacted]');
  });

  it('never HMACs what a person can guess: passwords, codes, short secrets', () => {
    const p = recordParams({ password: 'correct horse battery staple', newPassword: 'x'.repeat(40), code: '123456', recoveryCode: 'abcd-efgh-ijkl-mnop', pin: '12345678901234567', apiKey: 'short' }, ['password', 'newPassword', 'code', 'recoveryCode', 'pin', 'apiKey'], hmac);
    expect(Object.values(p).every((v) => v === '[redacted]')).toBe(true);
  });

  it('records long texts by digest and keeps everything canonicalisable', () => {
    const text = 'k'.repeat(600);
    const p = recordParams({ text, host: 'a\ud800b', nested: { x: ['\udc00'] } }, undefined, hmac);
    expect(p.text).toEqual({ sha256: crypto.createHash('sha256').update(text).digest('hex'), chars: 600 });
    expect(p.host).toBe('a\ufffdb');
    expect(p.nested).toEqual({ x: ['\ufffd'] });
  });
});
