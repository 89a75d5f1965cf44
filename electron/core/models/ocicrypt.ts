import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { AirlockError } from '../../../shared/domain/errors';
import { open as aeadOpen, seal as aeadSeal } from '../vault/aead';

/**
 * Encrypted layers in ocicrypt's format (containers/ocicrypt), so that standard tooling sees an
 * encrypted layer for what it is and a key provider named `airlock` can open it:
 *
 * - Media type: the plain one with `+encrypted` appended.
 * - Cipher `AES_256_CTR_HMAC_SHA256`: a fresh random 256-bit key and 16-byte nonce per layer,
 *   AES-256-CTR over the bytes, HMAC-SHA256 keyed with the same key over the ciphertext (what
 *   ocicrypt's AESCTRLayerBlockCipher does).
 * - `org.opencontainers.image.enc.pubopts`: base64 of `{"cipher", "hmac", "cipheroptions"}`.
 * - `org.opencontainers.image.enc.keys.provider.airlock`: base64 of Airlock's wrapped private
 *   options (`{"symkey", "cipheroptions": {"nonce"}, "digest"}` as ocicrypt names them), sealed
 *   with AES-256-GCM under a `models` data key of the key hierarchy, bound (AAD) to the layer's
 *   plaintext digest and the data key's id. Only a host given that data key can open the layer.
 *
 * Decryption checks the HMAC over the whole ciphertext before anything is renamed into place,
 * then the plaintext digest: a tampered layer leaves nothing behind.
 */
export const ENC_SUFFIX = '+encrypted';
export const PUBOPTS = 'org.opencontainers.image.enc.pubopts';
export const KEYS_AIRLOCK = 'org.opencontainers.image.enc.keys.provider.airlock';
export const CIPHER = 'AES_256_CTR_HMAC_SHA256';

const b64 = (b: Buffer) => b.toString('base64');
const Wrapped = z.object({ v: z.literal(1), keyId: z.string().min(1).max(300), sealed: z.string().max(4096) });
const Private = z.object({ symkey: z.string(), digest: z.string().regex(/^sha256:[a-f0-9]{64}$/), cipheroptions: z.object({ nonce: z.string() }) });
const Public = z.object({ cipher: z.literal(CIPHER), hmac: z.string(), cipheroptions: z.record(z.string(), z.string()).optional() });

const aad = (keyId: string, plainDigest: string) => `airlock.ocicrypt/v1|${keyId}|${plainDigest}`;

/** Encrypts `src` into `dest` (created, 0600): the ciphertext's digest and size, and the layer annotations. */
export async function encryptLayer(src: string, dest: string, o: { dataKey: Buffer; keyId: string; plainDigest: string; random: (n: number) => Buffer }): Promise<{ digest: string; size: number; annotations: Record<string, string> }> {
  const symkey = o.random(32);
  const nonce = o.random(16);
  try {
    const cipher = crypto.createCipheriv('aes-256-ctr', symkey, nonce);
    const mac = crypto.createHmac('sha256', symkey);
    const sha = crypto.createHash('sha256');
    const plainSha = crypto.createHash('sha256');
    let size = 0;
    const out = await fs.promises.open(dest, 'wx', 0o600);
    try {
      for await (const part of fs.createReadStream(src, { highWaterMark: 1024 * 1024 })) {
        plainSha.update(part as Buffer);
        const c = cipher.update(part as Buffer);
        mac.update(c);
        sha.update(c);
        size += c.length;
        await out.write(c);
      }
      const tail = cipher.final();
      if (tail.length) {
        mac.update(tail);
        sha.update(tail);
        size += tail.length;
        await out.write(tail);
      }
      await out.sync();
    } finally {
      await out.close();
    }
    if (`sha256:${plainSha.digest('hex')}` !== o.plainDigest) {
      await fs.promises.rm(dest, { force: true });
      throw new AirlockError('HASH_MISMATCH', `${path.basename(src)} changed while it was being encrypted: nothing was kept.`);
    }
    const priv = Buffer.from(JSON.stringify({ symkey: b64(symkey), digest: o.plainDigest, cipheroptions: { nonce: b64(nonce) }, previouslayersdigest: '' }));
    const wrapped = { v: 1, keyId: o.keyId, sealed: b64(aeadSeal(o.dataKey, priv, aad(o.keyId, o.plainDigest), o.random)) };
    priv.fill(0);
    return {
      digest: `sha256:${sha.digest('hex')}`,
      size,
      annotations: {
        [PUBOPTS]: b64(Buffer.from(JSON.stringify({ cipher: CIPHER, hmac: b64(mac.digest()), cipheroptions: {} }))),
        [KEYS_AIRLOCK]: b64(Buffer.from(JSON.stringify(wrapped))),
      },
    };
  } finally {
    symkey.fill(0);
  }
}

/** The data key id an encrypted layer names (to fetch that key before decrypting). */
export function layerKeyId(annotations: Record<string, string> | undefined): string {
  const raw = annotations?.[KEYS_AIRLOCK];
  if (!raw) throw new AirlockError('KEY_UNAVAILABLE', 'The layer is not encrypted for Airlock (no airlock key provider annotation).');
  const w = Wrapped.safeParse(parseB64Json(raw));
  if (!w.success) throw new AirlockError('PARSE_ERROR', 'The layer’s Airlock key annotation is malformed.');
  return w.data.keyId;
}

/**
 * The layer's symmetric key and nonce, unwrapped from its Airlock key annotation with the data
 * key, or a refusal: another key, or a layer whose private options do not name `expectedDigest`.
 * The caller zeroes `key`.
 */
export function openLayerKey(annotations: Record<string, string> | undefined, dataKey: Buffer, expectedDigest: string): { key: Buffer; nonce: Buffer; hmac: Buffer } {
  const w = Wrapped.safeParse(parseB64Json(annotations?.[KEYS_AIRLOCK] ?? ''));
  const pub = Public.safeParse(parseB64Json(annotations?.[PUBOPTS] ?? ''));
  if (!w.success || !pub.success) throw new AirlockError('PARSE_ERROR', 'The encrypted layer’s annotations are missing or malformed.');
  const opened = aeadOpen(dataKey, Buffer.from(w.data.sealed, 'base64'), aad(w.data.keyId, expectedDigest));
  if (!opened) throw new AirlockError('KEY_UNAVAILABLE', 'The layer’s key does not open with this data key (another key, or the layer is not the file the catalog names).');
  try {
    let json: unknown = null;
    try {
      json = JSON.parse(opened.toString('utf8'));
    } catch {
      /* refused below */
    }
    const priv = Private.safeParse(json);
    if (!priv.success || priv.data.digest !== expectedDigest) throw new AirlockError('HASH_MISMATCH', 'The layer’s private options do not name the file the catalog expects.');
    const key = Buffer.from(priv.data.symkey, 'base64');
    const nonce = Buffer.from(priv.data.cipheroptions.nonce, 'base64');
    const hmac = Buffer.from(pub.data.hmac, 'base64');
    if (key.length !== 32 || nonce.length !== 16 || hmac.length !== 32) throw new AirlockError('PARSE_ERROR', 'The layer’s key, nonce or HMAC has the wrong length.');
    return { key, nonce, hmac };
  } finally {
    opened.fill(0);
  }
}

/**
 * Decrypts `src` into `dest` (temporary name, renamed when the HMAC and the plaintext digest
 * both check out). `expectedDigest` is the catalog's digest of the file.
 */
export async function decryptLayer(src: string, dest: string, o: { annotations: Record<string, string> | undefined; dataKey: Buffer; expectedDigest: string }): Promise<{ size: number }> {
  const { key: symkey, nonce, hmac } = openLayerKey(o.annotations, o.dataKey, o.expectedDigest);
  const tmp = `${dest}.${crypto.randomBytes(6).toString('hex')}.part`;
  try {
    // The HMAC covers the whole ciphertext: checked in a first pass, before any plaintext is written.
    const mac = crypto.createHmac('sha256', symkey);
    for await (const part of fs.createReadStream(src, { highWaterMark: 1024 * 1024 })) mac.update(part as Buffer);
    if (!crypto.timingSafeEqual(mac.digest(), hmac)) throw new AirlockError('HASH_MISMATCH', 'The encrypted layer fails its HMAC: it was altered. Nothing was written.');
    const d = crypto.createDecipheriv('aes-256-ctr', symkey, nonce);
    const sha = crypto.createHash('sha256');
    let size = 0;
    const out = await fs.promises.open(tmp, 'wx', 0o600);
    try {
      for await (const part of fs.createReadStream(src, { highWaterMark: 1024 * 1024 })) {
        const p = d.update(part as Buffer);
        sha.update(p);
        size += p.length;
        await out.write(p);
      }
      await out.sync();
    } finally {
      await out.close();
    }
    if (`sha256:${sha.digest('hex')}` !== o.expectedDigest) throw new AirlockError('HASH_MISMATCH', 'The decrypted layer is not the file the catalog names.');
    await fs.promises.rename(tmp, dest);
    return { size };
  } finally {
    symkey.fill(0);
    await fs.promises.rm(tmp, { force: true });
  }
}

function parseB64Json(s: string): unknown {
  try {
    return JSON.parse(Buffer.from(s, 'base64').toString('utf8'));
  } catch {
    return null;
  }
}
