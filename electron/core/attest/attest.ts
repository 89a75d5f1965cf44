import crypto from 'node:crypto';
import { AttestationBody, SignedAttestation, type AttestationBody as Body } from '../../../shared/contract/attest';
import { AirlockError } from '../../../shared/domain/errors';
import { canonical } from '../audit/canonical';
import { SYSTEM_ACTOR } from '../audit/chain';
import { HANDOVER_CHANNEL } from '../audit/key-chain';
import type { Db } from '../db/db';
import { keyFingerprint } from '../keys/ed25519';
import { OWN_KEYS, type KeyRegistry } from '../keys/registry';

export const ATTEST_SECRET = OWN_KEYS['attest.signing'].secret;
export const ATTEST_PUBLIC_META = OWN_KEYS['attest.signing'].public;

/**
 * As-built attestations: canonical JSON (RFC 8785) signed with the console's Ed25519 attestation
 * key. The private key is sealed in the vault (unsealed only with a signed-in user's vault key);
 * the public key is in `meta` and inside every exported attestation, so an auditor can check the
 * signature offline and compare the key's fingerprint with the one the console shows.
 */
export class Attestations {
  constructor(private readonly deps: { db: Db; keys: KeyRegistry; now: () => string }) {}

  publicKeyPem(): string | null {
    return this.deps.keys.publicKey('attest.signing');
  }

  /** The attestation key, minted (through the key registry) at the first attestation. */
  private signingKey(vaultKey: Buffer): crypto.KeyObject {
    let sealed = this.deps.keys.unseal(vaultKey, 'attest.signing');
    if (!sealed) {
      this.deps.keys.mint(vaultKey, 'attest.signing');
      sealed = this.deps.keys.unseal(vaultKey, 'attest.signing')!;
    }
    return crypto.createPrivateKey({ key: sealed, format: 'der', type: 'pkcs8' });
  }

  /** Sign and store. Attestations are append-only (triggers refuse edits). */
  create(body: Body, vaultKey: Buffer): SignedAttestation {
    const parsed = AttestationBody.parse(body);
    const key = this.signingKey(vaultKey);
    const pub = crypto.createPublicKey(key);
    const text = canonical(parsed);
    const signature = crypto.sign(null, Buffer.from(text, 'utf8'), key).toString('base64');
    const fp = keyFingerprint(pub);
    this.deps.db
      .prepare('INSERT INTO attestations (id, host, run_id, created_at, playbook, body, digest, signature, key_fingerprint) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)')
      .run(parsed.id, parsed.host.name, parsed.run, parsed.createdAt, parsed.playbook.name, text, sha256(text), signature, fp);
    return this.get(parsed.id);
  }

  list(host?: string) {
    // `digest` is the SHA-256 of the signed body; the playbook's own digest lives inside the body.
    const cols = "id, host, run_id, created_at, playbook, json_extract(body, '$.playbook.digest') AS playbook_digest, digest";
    const rows = (
      host
        ? this.deps.db.prepare(`SELECT ${cols} FROM attestations WHERE host = ? ORDER BY created_at DESC, rowid DESC`).all(host)
        : this.deps.db.prepare(`SELECT ${cols} FROM attestations ORDER BY created_at DESC, rowid DESC LIMIT 1000`).all()
    ) as Array<{ id: string; host: string; run_id: string; created_at: string; playbook: string; playbook_digest: string; digest: string }>;
    return rows.map((r) => ({ id: r.id, host: r.host, run: r.run_id, createdAt: r.created_at, playbook: r.playbook, playbookDigest: r.playbook_digest, digest: r.digest }));
  }

  /**
   * The public parts of every attestation key version this console trusts, by fingerprint: the
   * first version, and each later one that an `audit:keyHandover` event of the trail introduces
   * (the rotation writes it, covered by a signed checkpoint; `audit verify` checks that chain). A
   * version row added to the database without its handover is not trusted.
   */
  trustedKeys(): Record<string, string> {
    const versions = this.deps.keys.versions('attest.signing').filter((v) => v.publicKey && v.fingerprint);
    const out: Record<string, string> = {};
    const handedOver = new Set(
      this.deps.db
        .prepare("SELECT json_extract(body, '$.params.newFingerprint') FROM audit_events WHERE channel = ? AND json_extract(body, '$.params.purpose') = 'attest.signing' AND json_extract(body, '$.actor') = ?")
        .pluck()
        .all(HANDOVER_CHANNEL, SYSTEM_ACTOR) as string[],
    );
    versions.forEach((v, i) => {
      if (i === 0 || handedOver.has(v.fingerprint!)) out[v.fingerprint!] = v.publicKey!;
    });
    // A database from before the entries: the key mirrored in meta.
    const legacy = this.publicKeyPem();
    if (versions.length === 0 && legacy) out[keyFingerprint(legacy)] = legacy;
    return out;
  }

  /** Every trusted version with its public part, oldest first (`attest key`). */
  versions(): Array<{ version: number; fingerprint: string; publicKey: string; createdAt: string; retiredAt: string | null }> {
    const trusted = this.trustedKeys();
    return this.deps.keys
      .versions('attest.signing')
      .filter((v) => v.fingerprint && v.publicKey && trusted[v.fingerprint])
      .map((v) => ({ version: v.version, fingerprint: v.fingerprint!, publicKey: v.publicKey!, createdAt: v.createdAt, retiredAt: v.retiredAt }));
  }

  get(id: string): SignedAttestation {
    const r = this.deps.db.prepare('SELECT body, signature, key_fingerprint AS fp FROM attestations WHERE id = ?').get(id) as { body: string; signature: string; fp: string } | undefined;
    if (!r) throw new AirlockError('NOT_FOUND', `No attestation ${id}.`);
    // The version that signed it (retired versions keep their public part), not merely the current one.
    const pem = this.deps.keys.versions('attest.signing').find((v) => v.fingerprint === r.fp)?.publicKey ?? this.publicKeyPem();
    if (!pem) throw new AirlockError('INTERNAL', 'The attestation public key is missing from the database.');
    const pub = crypto.createPublicKey(pem);
    return {
      attestation: AttestationBody.parse(JSON.parse(r.body)),
      signature: { alg: 'Ed25519', publicKey: pub.export({ format: 'der', type: 'spki' }).toString('base64'), keyFingerprint: keyFingerprint(pub), value: r.signature },
    };
  }

  latest(host: string): SignedAttestation | null {
    const r = this.deps.db.prepare('SELECT id FROM attestations WHERE host = ? ORDER BY created_at DESC, rowid DESC LIMIT 1').get(host) as { id: string } | undefined;
    return r ? this.get(r.id) : null;
  }

  /** Verify an exported attestation file: well-formed, signature valid, and made with one of this console's trusted attestation key versions. */
  verify(text: string) {
    return verifyAttestationText(text, Object.values(this.trustedKeys()));
  }
}

const sha256 = (s: string) => crypto.createHash('sha256').update(s).digest('hex');

/**
 * Pure: usable offline by `airlock attest verify FILE` (with the console's public key when known).
 * `trusted`: one PEM, or every key version trusted (an attestation signed before a rotation
 * verifies with the version that signed it).
 */
export function verifyAttestationText(text: string, trusted: string | readonly string[] | null) {
  const trustedPems = trusted === null ? [] : typeof trusted === 'string' ? [trusted] : [...trusted];
  const problems: string[] = [];
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return { ok: false, signatureValid: false, trustedKey: false, keyFingerprint: null, host: null, problems: ['not JSON'] };
  }
  const r = SignedAttestation.safeParse(doc);
  if (!r.success) {
    return { ok: false, signatureValid: false, trustedKey: false, keyFingerprint: null, host: null, problems: [`not an attestation: ${r.error.issues[0]?.path.join('.')}: ${r.error.issues[0]?.message}`] };
  }
  const a = r.data;
  let signatureValid = false;
  let fp: string | null = null;
  try {
    const pub = crypto.createPublicKey({ key: Buffer.from(a.signature.publicKey, 'base64'), format: 'der', type: 'spki' });
    fp = keyFingerprint(pub);
    // The signed bytes are the canonical form of the body as read: any edit to any field breaks it.
    signatureValid = crypto.verify(null, Buffer.from(canonical((doc as { attestation: unknown }).attestation), 'utf8'), pub, Buffer.from(a.signature.value, 'base64'));
  } catch (e) {
    problems.push(`the public key or signature cannot be read: ${(e as Error).message}`);
  }
  if (!signatureValid) problems.push('the signature does not match the attestation (it was changed, or signed by another key)');
  if (fp && fp !== a.signature.keyFingerprint) problems.push(`the file names key ${a.signature.keyFingerprint} but carries ${fp}`);
  let trustedKey = false;
  if (trustedPems.length > 0) {
    const fps = trustedPems.map((p) => keyFingerprint(p));
    trustedKey = fp !== null && fps.includes(fp);
    if (!trustedKey) problems.push(`signed by ${fp ?? 'an unreadable key'}, not by ${fps.length > 1 ? `any of this console's attestation key versions (${fps.join(', ')})` : `this console's attestation key ${fps[0]}`}`);
  } else {
    problems.push("this console has no attestation key to compare with (pass the console's public key)");
  }
  return { ok: problems.length === 0, signatureValid, trustedKey, keyFingerprint: fp, host: a.attestation.host.name, problems };
}
