/**
 * Messages in people's words (issue 11): no error a person sees names a channel
 * (`session:stepUp`, `approvals:request`) or carries schema jargon (zod's defaults, patterns).
 * (The check itself is test/support/words.ts; the CLI's usage errors have their walk in
 * electron/shells/cli/messages.test.ts.)
 * Three walks: every error code's messages as written in the source; every channel's input schema
 * fed wrong values; and the dispatcher's own refusals through a real core.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { channelNames, channels } from '../../shared/contract/index';
import { ErrorCodes } from '../../shared/domain/errors';
import { ADMIN, testCore, type TestCore } from '../../test/support/core';
import { problems } from '../../test/support/words';

const root = path.resolve(__dirname, '../..');

/** Every `new AirlockError('CODE', <string or template>)` in production code, with its text (interpolations as «…»). */
function errorSites(): Array<{ code: string; file: string; text: string }> {
  const out: Array<{ code: string; file: string; text: string }> = [];
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) {
        if (e.name !== 'node_modules' && e.name !== 'fixtures') walk(p);
      } else if (/\.tsx?$/.test(e.name) && !/\.test\.tsx?$/.test(e.name)) {
        const src = fs.readFileSync(p, 'utf8');
        const re = /new AirlockError\(\s*'([A-Z_]+)',\s*(['"`])((?:\\.|(?!\2)[\s\S])*)\2/g;
        for (const m of src.matchAll(re)) out.push({ code: m[1]!, file: path.relative(root, p), text: m[3]!.replace(/\$\{[^}]*\}/g, '«…»') });
      }
    }
  };
  for (const d of ['electron', 'shared', 'renderer']) walk(path.join(root, d));
  return out;
}

describe('error messages in people words', () => {
  const sites = errorSites();

  it('finds the messages it checks (the walk itself works)', () => {
    expect(sites.length).toBeGreaterThan(100);
    expect(sites.some((s) => s.code === 'STEP_UP_REQUIRED')).toBe(true);
  });

  it.each([...ErrorCodes])('%s: no message names a channel or carries schema jargon', (code) => {
    const bad = sites.filter((s) => s.code === code).flatMap((s) => problems(s.text).map((why) => `${s.file}: "${s.text.slice(0, 120)}" ${why}`));
    expect(bad).toEqual([]);
  });

  it("every channel's input schema refuses wrong values in plain words", () => {
    const long = 'x'.repeat(5_000_000);
    const bad: string[] = [];
    let checked = 0;
    for (const name of channelNames) {
      const schema = channels[name].in as z.ZodType;
      const shape = schema instanceof z.ZodObject ? (schema.shape as Record<string, unknown>) : {};
      const tries: unknown[] = [42, 'text', [], { surplus: 1 }, { ...Object.fromEntries(Object.keys(shape).map((k) => [k, 12345])) }];
      for (const k of Object.keys(shape)) tries.push({ [k]: long }, { [k]: '' }, { [k]: -1 }, { [k]: [long] }, { [k]: 'bad value !' }, { [k]: null });
      for (const t of tries) {
        const r = schema.safeParse(t);
        if (r.success) continue;
        for (const i of r.error.issues) {
          checked++;
          for (const why of problems(i.message)) bad.push(`${name} ${JSON.stringify(t).slice(0, 60)} → "${i.message.slice(0, 120)}" ${why}`);
        }
      }
    }
    expect(checked).toBeGreaterThan(500);
    expect(bad).toEqual([]);
  });
});

describe("the dispatcher's refusals, through a real core", () => {
  let t: TestCore;
  beforeAll(async () => {
    t = await testCore();
    const a = t.client();
    await a.ok('session:setup', { admin: ADMIN.admin, password: ADMIN.password });
    await a.ok('users:create', { name: 'ann', password: 'ann initial password', roles: ['auditor'], mustChangePassword: false });
  });
  afterAll(() => t.close());

  it('invalid input and a missing role each say what happened in words', async () => {
    const a = t.client();
    await a.ok('session:login', { name: ADMIN.admin, password: ADMIN.password });
    const invalid = await a.call('hosts:add', { name: 'Bad Name!', address: 'x'.repeat(5000), port: 70000, surplus: true });
    expect(invalid.ok).toBe(false);
    const msg = !invalid.ok ? invalid.error.message : '';
    expect(msg).toMatch(/^Not accepted — /);
    expect(msg).toMatch(/port: must be at most 65535/);
    expect(msg).toMatch(/has a field it does not take: "surplus"/);
    expect(problems(msg)).toEqual([]);

    const ann = t.client();
    await ann.ok('session:login', { name: 'ann', password: 'ann initial password' });
    const forbidden = await ann.call('hosts:remove', { name: 'gpu1' });
    expect(forbidden).toMatchObject({ ok: false, error: { code: 'FORBIDDEN', message: 'Only an administrator can do this; you are signed in as an auditor.' } });
  });
});
