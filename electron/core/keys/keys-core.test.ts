import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ADMIN, testCore } from '../../../test/support/core';

/**
 * The keys area through the whole core (the composition root, the dispatcher, the audit trail):
 * a genesis ceremony by channel calls, every step audited with no share or passphrase in the
 * trail, the hierarchy sealed when the console locks (the last session ends).
 */
describe('keys through the core', () => {
  it('audits every ceremony step without a share or passphrase, and seals when the last session ends', async () => {
    const t = await testCore();
    try {
      const a = t.client();
      await a.ok('session:setup', ADMIN);
      let cer = await a.ok('keys:begin', { kind: 'genesis', officers: ['Ann', 'Ben', 'Cy'], witnesses: ['Wanda'], threshold: 2 });
      cer = await a.ok('keys:acknowledge', { ceremony: cer.id, step: 1, by: 'alice' });
      cer = await a.ok('keys:acknowledge', { ceremony: cer.id, step: 2, by: 'Wanda' });
      const g = await a.ok('keys:genesis', { ceremony: cer.id, passphrases: { Ben: 'ben has a long passphrase' } });
      expect(g.shares.find((s) => s.officer === 'Ben')).toMatchObject({ sealing: 'passphrase' });
      const armored: string[] = [];
      for (const [k, o] of ['Ann', 'Ben', 'Cy'].entries()) {
        await a.ok('keys:acknowledge', { ceremony: cer.id, step: 4 + k, by: o });
        armored.push((await a.ok('keys:issueShare', { ceremony: cer.id, officer: o })).armored);
      }
      // Every share file names this ceremony's nonce (vault#844): the nonce shown and transcribed is the one the shares carry.
      for (const s of armored) expect(s).toContain(`Ceremony: ${cer.nonce}`);
      const done = await a.ok('keys:acknowledge', { ceremony: cer.id, step: 7, by: 'Wanda' });
      expect(done.status).toBe('completed');
      expect((await a.ok('keys:verifyTranscript', { text: (await a.ok('keys:transcript', { ceremony: cer.id })).text })).ok).toBe(true);
      expect(await a.ok('keys:status', {})).toMatchObject({ initialised: true, sealed: false, threshold: 2, count: 3 });

      // Unseal needs the passphrase for Ben's share; a refused share is audited as a refusal.
      await a.ok('keys:seal', {});
      let un = await a.ok('keys:begin', { kind: 'unseal' });
      un = await a.ok('keys:acknowledge', { ceremony: un.id, step: 1, by: 'alice' });
      expect((await a.ok('keys:status', {})).unsealing?.nonce).toBe(un.nonce);
      const wrong = await a.call('keys:addShare', { ceremony: un.id, share: armored[1]!, passphrase: 'not it at all, sorry' });
      expect(wrong, JSON.stringify(wrong)).toMatchObject({ ok: false, error: { code: 'BAD_CREDENTIALS' } });
      await a.ok('keys:addShare', { ceremony: un.id, share: armored[1]!, passphrase: 'ben has a long passphrase' });
      const p = await a.ok('keys:addShare', { ceremony: un.id, share: armored[2]! });
      expect(p).toMatchObject({ done: true, contributors: ['Ben', 'Cy'] });
      expect((await a.ok('keys:status', {})).sealed).toBe(false);

      // The trail has every step, and none of the secrets.
      const events = await a.ok('audit:list', { limit: 500 });
      const text = JSON.stringify(events);
      for (const ch of ['keys:begin', 'keys:acknowledge', 'keys:genesis', 'keys:issueShare', 'keys:addShare', 'keys:seal']) expect(text, ch).toContain(ch);
      expect(text).not.toContain('ben has a long passphrase');
      expect(text).not.toContain('not it at all');
      for (const s of armored) expect(text).not.toContain(s.split('\n').find((l) => l.length > 40 && !l.startsWith('-'))!);
      const db = fs.readFileSync(path.join(t.dir, 'airlock.db'));
      for (const s of armored) expect(db.includes(Buffer.from(s.split('\n').find((l) => l.length > 40 && !l.includes(':') && !l.startsWith('-'))!))).toBe(false);

      // The console locks when its last session ends: the hierarchy seals.
      const b = t.client();
      await b.ok('session:login', { name: 'alice', password: ADMIN.password });
      await a.ok('session:logout', {});
      expect((await b.ok('keys:status', {})).sealed).toBe(false); // another session is still signed in
      await b.ok('session:logout', {});
      const c = t.client();
      await c.ok('session:login', { name: 'alice', password: ADMIN.password });
      expect((await c.ok('keys:status', {})).sealed).toBe(true);
    } finally {
      await t.close();
    }
  });
});
