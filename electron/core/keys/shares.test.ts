import crypto from 'node:crypto';
import fc from 'fast-check';
import { combine } from 'shamir-secret-sharing';
import { describe, expect, it } from 'vitest';
import { AirlockError } from '../../../shared/domain/errors';
import { rootMatches } from './hierarchy';
import {
  armorShare,
  dearmorShare,
  MAX_ARMOR_BYTES,
  MAX_SHARES,
  sealingFingerprint,
  sealShareForOfficer,
  shareProblem,
  ShareCollector,
  sharePayload,
  splitRoot,
  unsealShare,
  type RootShare,
} from './shares';

const random = (n: number) => crypto.randomBytes(n);
const KDF = { alg: 'argon2id' as const, memoryKiB: 1024, iterations: 1, parallelism: 1 };
const H = crypto.randomBytes(16).toString('hex');
const N1 = crypto.randomBytes(16).toString('hex');
const officers = ['alice', 'bob', 'carol', 'dave', 'erin'];
const split35 = (root = random(32), nonce = N1, hierarchyId = H) => splitRoot(root, { hierarchyId, nonce, threshold: 3, officers, random });

async function refusal(p: Promise<unknown> | (() => unknown)): Promise<AirlockError> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    expect(e).toBeInstanceOf(AirlockError);
    return e as AirlockError;
  }
  throw new Error('expected a refusal');
}

describe('root shares', () => {
  it('splits 3-of-5: the record carries commitments, canary and KCV but no share; any 3 combine to the root', async () => {
    const root = random(32);
    const { record, shares } = await split35(root);
    expect(record).toMatchObject({ hierarchyId: H, nonce: N1, threshold: 3, count: 5, officers });
    expect(record.commitments).toHaveLength(5);
    const json = JSON.stringify(record);
    for (const s of shares) expect(json).not.toContain(s.share.toString('base64'));
    expect(json).not.toContain(root.toString('base64'));
    const c = new ShareCollector(record);
    expect(c.add(shares[4]!)).toEqual({ collected: 1, threshold: 3, contributors: ['erin'] });
    c.add(shares[0]!);
    expect(c.add(shares[2]!, 'carol (witnessed)').contributors).toEqual(['erin', 'alice', 'carol (witnessed)']);
    expect((await c.combine()).equals(root)).toBe(true);
    c.clear();
    expect(c.progress().collected).toBe(0);
  });

  it('refuses m and n out of range and duplicate officers', async () => {
    const cases: Array<[number, string[], string]> = [
      [1, ['a', 'b'], 'at least 2'],
      [3, ['a', 'b'], 'cannot exceed'],
      [2, Array.from({ length: MAX_SHARES + 1 }, (_, i) => `o${i}`), `At most ${MAX_SHARES}`],
      [2, ['a', 'a', 'b'], 'named twice'],
      [2, ['a', 'b\nc'], 'control characters'],
    ];
    expect((await refusal(splitRoot(random(32), { hierarchyId: H, nonce: N1, threshold: 2, count: 4, officers: ['a', 'b', 'c'], random }))).message).toContain('4 shares were asked for but 3 officers');
    for (const [threshold, os, text] of cases) {
      const e = await refusal(splitRoot(random(32), { hierarchyId: H, nonce: N1, threshold, officers: os, random }));
      expect(e.code).toBe('INVALID_INPUT');
      expect(e.message).toContain(text);
    }
  });

  it('a foreign, stale, altered or moved share is refused with its own message; a duplicate is a conflict; nothing collected is lost', async () => {
    const root = random(32);
    const { record, shares } = await split35(root);
    const stale = await split35(root, crypto.randomBytes(16).toString('hex'));
    const foreign = await split35(random(32), N1, crypto.randomBytes(16).toString('hex'));
    const c = new ShareCollector(record);
    c.add(shares[0]!);
    const e1 = await refusal(() => c.add(foreign.shares[1]!));
    expect(e1.message).toContain('another key hierarchy');
    const e2 = await refusal(() => c.add(stale.shares[1]!));
    expect(e2.message).toContain('earlier ceremony');
    const altered: RootShare = { ...shares[1]!, share: Buffer.from(shares[1]!.share) };
    altered.share[3]! ^= 0x40;
    expect((await refusal(() => c.add(altered))).message).toContain('altered');
    const moved: RootShare = { ...shares[1]!, index: 3 };
    expect(shareProblem(record, moved)).toBe('wrong');
    expect(shareProblem(record, { ...shares[1]!, threshold: 2 })).toBe('wrong');
    const dup = await refusal(() => c.add(shares[0]!));
    expect(dup.code).toBe('CONFLICT');
    expect(dup.message).toContain('2 more share(s)');
    expect(c.progress()).toEqual({ collected: 1, threshold: 3, contributors: ['alice'] });
    const early = await refusal(c.combine());
    expect(early.code).toBe('KEY_UNAVAILABLE');
    expect(early.message).toContain('2 more officer share(s)');
    c.add(shares[1]!);
    c.add(shares[3]!);
    expect((await c.combine()).equals(root)).toBe(true);
  });

  it('property: any m of n shares combine to the root; m − 1 of them never pass the canary', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 2, max: 6 }).chain((n) => fc.record({ n: fc.constant(n), m: fc.integer({ min: 2, max: n }), perm: fc.shuffledSubarray([...Array(n).keys()], { minLength: n, maxLength: n }) })),
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        async ({ n, m, perm }, rootBytes) => {
          const root = Buffer.from(rootBytes);
          const os = Array.from({ length: n }, (_, i) => `officer-${i}`);
          const { record, shares } = await splitRoot(root, { hierarchyId: H, nonce: N1, threshold: m, officers: os, random });
          const c = new ShareCollector(record);
          for (const i of perm.slice(0, m)) c.add(shares[i]!);
          expect((await c.combine()).equals(root)).toBe(true);
          // m − 1 shares: Shamir gives a key (garbage, no error), and the canary refuses it.
          // (One share alone is refused by combine; its y bytes are the best an attacker has.)
          const few = perm.slice(0, m - 1).map((i) => new Uint8Array(shares[i]!.share));
          const fewer = few.length >= 2 ? await combine(few) : few[0]!.subarray(0, 32);
          expect(rootMatches(Buffer.from(fewer), H, Buffer.from(record.canary, 'base64'))).toBe(false);
          // And the collector will not even try below the threshold.
          const short = new ShareCollector(record);
          for (const i of perm.slice(0, m - 1)) short.add(shares[i]!);
          expect((await refusal(short.combine())).code).toBe('KEY_UNAVAILABLE');
        },
      ),
      { numRuns: 40 },
    );
  });

  it('armor round-trips a plain share and is refused when any character is changed', async () => {
    const { shares } = await split35();
    const text = armorShare(sharePayload(shares[1]!));
    expect(text.startsWith('-----BEGIN AIRLOCK ROOT KEY SHARE-----\nOfficer: bob\nShare: 2 of 5, 3 needed')).toBe(true);
    expect(text.trimEnd().endsWith('-----END AIRLOCK ROOT KEY SHARE-----')).toBe(true);
    const back = await unsealShare(dearmorShare(text));
    expect(back.share.equals(shares[1]!.share)).toBe(true);
    expect(dearmorShare(text.trimEnd())).toEqual(dearmorShare(text));
    expect(dearmorShare(text.split('\n').join('\r\n'))).toEqual(dearmorShare(text));
    fc.assert(
      fc.property(fc.nat({ max: text.length - 1 }), fc.integer({ min: 1, max: 0x7e }), (pos, code) => {
        const ch = String.fromCharCode(code);
        fc.pre(ch !== text[pos] && !(pos === text.length - 1 && /\s/.test(ch)));
        const tampered = text.slice(0, pos) + ch + text.slice(pos + 1);
        let err: unknown;
        try {
          dearmorShare(tampered);
        } catch (e) {
          err = e;
        }
        expect(err).toBeInstanceOf(AirlockError);
        expect((err as AirlockError).code).toBe('PARSE_ERROR');
      }),
      { numRuns: 2000 },
    );
  });

  it('hostile input is PARSE_ERROR, never a crash', () => {
    const { BEGIN, END } = { BEGIN: '-----BEGIN AIRLOCK ROOT KEY SHARE-----', END: '-----END AIRLOCK ROOT KEY SHARE-----' };
    const hostile: unknown[] = [
      undefined,
      42,
      '',
      'x'.repeat(MAX_ARMOR_BYTES + 1),
      `${BEGIN}\n\n${END}\n`,
      `${BEGIN}\nOfficer: a\n\n!!!!\n=00\n${END}\n`,
      `${BEGIN}\n\n${Buffer.from('{"__proto__":{"x":1}}').toString('base64')}\n=${crypto.createHash('sha256').update('{"__proto__":{"x":1}}').digest('hex').slice(0, 16)}\n${END}\n`,
    ];
    for (const h of hostile) {
      let err: unknown;
      try {
        dearmorShare(h);
      } catch (e) {
        err = e;
      }
      expect((err as AirlockError).code).toBe('PARSE_ERROR');
    }
    // Any JSON body with a correct checksum: refused as PARSE_ERROR unless it is exactly a share.
    const wrap = (json: string) => {
      const body = Buffer.from(json, 'utf8');
      const b64 = body.toString('base64').match(/.{1,64}/g) ?? [];
      return [BEGIN, 'Officer: x', '', ...b64, `=${crypto.createHash('sha256').update(body).digest('hex').slice(0, 16)}`, END, ''].join('\n');
    };
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        let err: unknown;
        try {
          dearmorShare(wrap(JSON.stringify(v) ?? 'null'));
        } catch (e) {
          err = e;
        }
        expect((err as AirlockError).code).toBe('PARSE_ERROR');
      }),
    );
    fc.assert(
      fc.property(fc.string({ maxLength: 400 }), (s) => {
        try {
          dearmorShare(`-----BEGIN AIRLOCK ROOT KEY SHARE-----\n${s}`);
        } catch (e) {
          expect((e as AirlockError).code).toBe('PARSE_ERROR');
        }
      }),
    );
  });

  it('a share sealed to an officer: the fingerprint is shown, carried in the file, and a wrong passphrase is BAD_CREDENTIALS', async () => {
    const { record, shares } = await split35();
    const sealed = await sealShareForOfficer(shares[2]!, 'correct horse battery', KDF, random);
    expect(sealed.fingerprint).toMatch(/^[0-9a-f]{4}(-[0-9a-f]{4}){3}$/);
    const text = armorShare(sharePayload(shares[2]!, sealed));
    expect(text).toContain(`fingerprint ${sealed.fingerprint}`);
    expect(text).not.toContain(shares[2]!.share.toString('base64'));
    const p = dearmorShare(text);
    expect(p.fingerprint).toBe(sealed.fingerprint);
    const wrong = await refusal(unsealShare(p, 'correct horse battery!'));
    expect(wrong.code).toBe('BAD_CREDENTIALS');
    expect(wrong.message).toContain('wrong');
    expect((await refusal(unsealShare(p))).code).toBe('BAD_CREDENTIALS');
    const share = await unsealShare(p, 'correct horse battery');
    expect(share.share.equals(shares[2]!.share)).toBe(true);
    expect(shareProblem(record, share)).toBeNull();
    // The fingerprint depends on officer, salt and key.
    const key = random(32);
    expect(sealingFingerprint('carol', sealed.salt, key)).not.toBe(sealingFingerprint('dave', sealed.salt, key));
    expect((await refusal(sealShareForOfficer(shares[2]!, 'short', KDF, random))).code).toBe('INVALID_INPUT');
    // KDF parameters argon2 rejects (memory below 8 × parallelism), in a consistently re-armored file: PARSE_ERROR, not a crash.
    const odd = dearmorShare(armorShare({ ...p, kdf: { ...p.kdf!, memoryKiB: 8, parallelism: 8 } }));
    expect((await refusal(unsealShare(odd, 'correct horse battery'))).code).toBe('PARSE_ERROR');
  });
});
