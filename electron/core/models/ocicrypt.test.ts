/**
 * ocicrypt-format layer encryption: round trip, the ocicrypt annotations, and the refusals — a
 * flipped ciphertext byte (HMAC), another data key, a layer passed off as another file — each
 * leaving nothing behind. The cipher is checked against the real `openssl enc -aes-256-ctr`.
 */
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AirlockError } from '../../../shared/domain/errors';
import { CIPHER, decryptLayer, encryptLayer, KEYS_AIRLOCK, layerKeyId, openLayerKey, PUBOPTS } from './ocicrypt';

let dir: string;
beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-ocicrypt-'))));
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));
const random = (n: number) => crypto.randomBytes(n);
const sha = (b: Buffer) => `sha256:${crypto.createHash('sha256').update(b).digest('hex')}`;
const code = async (p: Promise<unknown>) => p.then(() => 'ok', (e: unknown) => (e instanceof AirlockError ? e.code : String(e)));

describe('ocicrypt layers', () => {
  it('round-trips, in ocicrypt’s format, with the same cipher openssl computes', async () => {
    const plain = crypto.randomBytes(3 * 1024 * 1024 + 5);
    const src = path.join(dir, 'w.bin');
    fs.writeFileSync(src, plain);
    const dataKey = random(32);
    const enc = await encryptLayer(src, path.join(dir, 'w.enc'), { dataKey, keyId: 'model-layers/m/v1', plainDigest: sha(plain), random });
    const cipherBytes = fs.readFileSync(path.join(dir, 'w.enc'));
    expect(enc).toMatchObject({ digest: sha(cipherBytes), size: plain.length });
    expect(cipherBytes.includes(plain.subarray(1000, 1064))).toBe(false);
    const pub = JSON.parse(Buffer.from(enc.annotations[PUBOPTS]!, 'base64').toString()) as { cipher: string; hmac: string };
    expect(pub.cipher).toBe(CIPHER);
    expect(layerKeyId(enc.annotations)).toBe('model-layers/m/v1');
    expect(enc.annotations[KEYS_AIRLOCK]).toBeDefined();

    const out = path.join(dir, 'w.out');
    expect(await decryptLayer(path.join(dir, 'w.enc'), out, { annotations: enc.annotations, dataKey, expectedDigest: sha(plain) })).toEqual({ size: plain.length });
    expect(fs.readFileSync(out).equals(plain)).toBe(true);

    // The same AES-256-CTR as OpenSSL's, with the key and nonce from the private options.
    const priv = openLayerKey(enc.annotations, dataKey, sha(plain));
    const viaOpenssl = execFileSync('openssl', ['enc', '-d', '-aes-256-ctr', '-K', priv.key.toString('hex'), '-iv', priv.nonce.toString('hex'), '-in', path.join(dir, 'w.enc')], { maxBuffer: 64 * 1024 * 1024 });
    expect(viaOpenssl.equals(plain)).toBe(true);
    expect(crypto.createHmac('sha256', priv.key).update(cipherBytes).digest('base64')).toBe(pub.hmac);
  });

  it('refuses an altered layer, another key, or a layer passed off as another file, writing nothing', async () => {
    const plain = crypto.randomBytes(100_000);
    const src = path.join(dir, 'w.bin');
    fs.writeFileSync(src, plain);
    const dataKey = random(32);
    const enc = await encryptLayer(src, path.join(dir, 'w.enc'), { dataKey, keyId: 'k', plainDigest: sha(plain), random });
    const out = path.join(dir, 'out');
    expect(await code(decryptLayer(path.join(dir, 'w.enc'), out, { annotations: enc.annotations, dataKey: random(32), expectedDigest: sha(plain) }))).toBe('KEY_UNAVAILABLE');
    expect(await code(decryptLayer(path.join(dir, 'w.enc'), out, { annotations: enc.annotations, dataKey, expectedDigest: sha(Buffer.from('other')) }))).toBe('KEY_UNAVAILABLE');
    const bad = fs.readFileSync(path.join(dir, 'w.enc'));
    bad[5000] = bad[5000]! ^ 1;
    fs.writeFileSync(path.join(dir, 'bad.enc'), bad);
    expect(await code(decryptLayer(path.join(dir, 'bad.enc'), out, { annotations: enc.annotations, dataKey, expectedDigest: sha(plain) }))).toBe('HASH_MISMATCH');
    expect(await code(decryptLayer(path.join(dir, 'w.enc'), out, { annotations: {}, dataKey, expectedDigest: sha(plain) }))).toBe('PARSE_ERROR');
    expect(fs.readdirSync(dir).filter((f) => f.startsWith('out'))).toEqual([]);
    // A source that is not the file the catalog names is refused at encryption too.
    expect(await code(encryptLayer(src, path.join(dir, 'x.enc'), { dataKey, keyId: 'k', plainDigest: sha(Buffer.from('no')), random }))).toBe('HASH_MISMATCH');
    expect(fs.existsSync(path.join(dir, 'x.enc'))).toBe(false);
  });
});
