/**
 * Rotation of Airlock's own audit signing, audit HMAC and attestation keys from the `airlock` CLI
 * (run in-process: the same runCli the bundled command runs), on a real SQLite file: every
 * invocation is its own console process. Across the rotations `audit verify` passes, a bundle
 * exported after them verifies offline with only the ORIGINAL audit key fingerprint pinned, and
 * an attestation signed before verifies after (online, and offline with its version's key).
 * Tampering the way someone holding the file would — a key row added without a handover, an
 * edited bundle, a stranger's pin, an edited attestation — fails with a message that names it.
 */
import Database from 'better-sqlite3';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Attestations } from '../../electron/core/attest/attest';
import { canonical } from '../../electron/core/audit/canonical';
import { CHECKPOINT_CHANNEL, chainHash, checkpointPayload, SYSTEM_ACTOR } from '../../electron/core/audit/chain';
import { keyFingerprint } from '../../electron/core/keys/ed25519';
import { KeyRegistry } from '../../electron/core/keys/registry';
import { Vault } from '../../electron/core/vault/vault';
import { EXIT } from '../../electron/shells/cli';
import { ALICE, inProcessCli } from '../support/cli';
import { TEST_KDF, testCore } from '../support/core';

let data: string;
let work: string;
beforeEach(() => {
  data = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-ownkeys-'));
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-ownkeys-work-'));
});
afterEach(() => {
  fs.rmSync(data, { recursive: true, force: true });
  fs.rmSync(work, { recursive: true, force: true });
});

const airlock = inProcessCli(() => data);
const DB = () => path.join(data, 'airlock.db');

/** Some audited activity by a console that checkpoints every 5 events (the CLI's default is 1000). */
async function activity(n: number) {
  const t = await testCore({ dataDir: data, auditCheckpointEvery: 5 });
  try {
    const c = t.client();
    await c.ok('session:login', { name: 'alice', password: ALICE });
    for (let i = 0; i < n; i++) await c.ok('keys:status', {});
  } finally {
    await t.close();
  }
}

/** An attestation signed by the console's current attestation key, stored in the file as a provisioning run would. */
async function attest(): Promise<{ id: string; text: string }> {
  const db = new Database(DB());
  try {
    const vault = new Vault({ db, kdf: { alg: 'argon2id', parallelism: 1, ...TEST_KDF }, random: crypto.randomBytes, now: () => new Date().toISOString() });
    const vk = await vault.unlock(db.prepare("SELECT id FROM users WHERE name = 'alice'").pluck().get() as number, ALICE);
    const a = new Attestations({ db, keys: new KeyRegistry({ db, vault, random: crypto.randomBytes }), now: () => new Date().toISOString() });
    const signed = a.create(
      {
        format: 'airlock.attestation/v1',
        id: `att-${crypto.randomBytes(8).toString('hex')}`,
        host: { name: 'gpu-1', address: '10.0.0.1', port: 22, hostKey: { fingerprint: `SHA256:${'A'.repeat(43)}`, type: 'ssh-ed25519' } },
        playbook: { name: 'base', version: '1', digest: '0'.repeat(64) },
        run: `run-${crypto.randomBytes(8).toString('hex')}`,
        operator: 'alice',
        createdAt: new Date().toISOString(),
        facts: {},
      },
      vk,
    );
    return { id: signed.attestation.id, text: JSON.stringify(signed) };
  } finally {
    db.close();
  }
}

describe('airlock keys rotate-own', () => {
  it('rotates each own key; audit verify, a bundle pinned at the original key and an old attestation all verify across the rotations', async () => {
    expect((await airlock(['init', '--admin', 'alice'])).code).toBe(EXIT.ok);
    await activity(6);
    const first = await airlock(['audit', 'verify', '--json']);
    expect(first.code, first.stdout).toBe(EXIT.ok);
    const original = first.json<{ keyFingerprint: string }>().keyFingerprint;
    expect(original).toMatch(/^SHA256:/);
    const att = await attest();
    const attKeyV1 = path.join(work, 'attest-v1.pem');
    fs.writeFileSync(attKeyV1, (await airlock(['attest', 'key', '--json'])).json<{ publicKey: string }>().publicKey);

    // The SSH identity is not rotated here: the pointer to its fleet rotation.
    const ssh = await airlock(['keys', 'rotate-own', '--purpose', 'ssh.identity']);
    expect(ssh.code).not.toBe(EXIT.ok);
    expect(ssh.stderr).toMatch(/rotate-ssh-identity all/);
    const unknown = await airlock(['keys', 'rotate-own', '--purpose', 'root']);
    expect(unknown.code).toBe(EXIT.usage);

    // Audit signing key, twice, with activity between; HMAC and attestation keys once.
    const r1 = await airlock(['keys', 'rotate-own', '--purpose', 'audit.signing', '--json']);
    expect(r1.code, r1.stderr).toBe(EXIT.ok);
    const rot1 = r1.json<{ oldFingerprint: string; newFingerprint: string; handoverSeq: number; checkpointSeq: number }>();
    expect(rot1.oldFingerprint).toBe(original);
    await activity(7);
    const human = await airlock(['keys', 'rotate-own', '--purpose', 'audit.signing']);
    expect(human.code, human.stderr).toBe(EXIT.ok);
    expect(human.stdout).toMatch(/^Rotated audit\.signing: version 2 → 3 \(SHA256:\S+ → SHA256:\S+\); old version retired\.\nHandover recorded at audit event \d+, covered by checkpoint \d+ signed by the old key\.\n$/);
    const hm = await airlock(['keys', 'rotate-own', '--purpose', 'audit.hmac', '--json']);
    expect(hm.code, hm.stderr).toBe(EXIT.ok);
    expect(hm.json()).toMatchObject({ purpose: 'audit.hmac', oldVersion: 1, newVersion: 2, newFingerprint: null });
    const ar = await airlock(['keys', 'rotate-own', '--purpose', 'attest.signing', '--json']);
    expect(ar.code, ar.stderr).toBe(EXIT.ok);
    expect(ar.json()).toMatchObject({ purpose: 'attest.signing', oldVersion: 1, newVersion: 2 });
    await activity(6);

    // Every version in the status, the retired ones with their dates.
    const st = (await airlock(['keys', 'status', '--json'])).json<{ ownKeys: Array<{ purpose: string; version: number; retiredAt: string | null }> }>();
    expect(st.ownKeys.filter((k) => k.purpose === 'audit.signing').map((k) => [k.version, k.retiredAt !== null])).toEqual([
      [1, true],
      [2, true],
      [3, false],
    ]);

    // The trail verifies across both handovers, from the original key.
    const v = await airlock(['audit', 'verify', '--json']);
    expect(v.code, v.stdout).toBe(EXIT.ok);
    const rep = v.json<{ ok: boolean; keyFingerprint: string; keyFingerprints: string[]; checkpoints: number; warnings: string[] }>();
    expect(rep.keyFingerprint).toBe(original);
    expect(rep.keyFingerprints).toHaveLength(3);
    expect(rep.keyFingerprints[1]).toBe(rot1.newFingerprint);
    expect(rep.warnings.join('\n')).toMatch(/audit signing key was rotated/);
    expect((await airlock(['audit', 'verify', '--trust', original])).stdout).toMatch(/^Audit chain OK: .* verified with SHA256:\S+ → SHA256:\S+ → SHA256:\S+, head/);

    // A bundle of the whole trail, verified offline with only the original fingerprint.
    const bundle = path.join(work, 'audit.bundle');
    const ex = await airlock(['audit', 'export', '--format', 'bundle', '--out', bundle]);
    expect(ex.code, ex.stderr).toBe(EXIT.ok);
    const vb = await airlock(['audit', 'verify-bundle', bundle, '--trust', original, '--json']);
    expect(vb.code, vb.stdout).toBe(EXIT.ok);
    expect(vb.json()).toMatchObject({ ok: true, fromSeq: 1, keyFingerprints: rep.keyFingerprints });
    const vbh = await airlock(['audit', 'verify-bundle', bundle, '--trust', original]);
    expect(vbh.stdout).toMatch(/^Audit bundle OK: \d+ events \(1–\d+\), \d+ checkpoint signature\(s\) verified with SHA256:/);
    // And a partial one that starts after both handovers, still pinned at the original (the header carries them).
    const part = path.join(work, 'part.bundle');
    expect((await airlock(['audit', 'export', '--format', 'bundle', '--from', String(rot1.checkpointSeq + 20), '--out', part])).code).toBe(EXIT.ok);
    expect((await airlock(['audit', 'verify-bundle', part, '--trust', original, '--json'])).json()).toMatchObject({ ok: true });

    // The attestation signed by version 1 verifies after the rotation: in the console, and offline with v1's key.
    const file = path.join(work, 'att.json');
    expect((await airlock(['attest', 'show', att.id, '--out', file])).code).toBe(EXIT.ok);
    const av = await airlock(['attest', 'verify', file, '--json']);
    expect(av.code, av.stdout).toBe(EXIT.ok);
    expect(av.json()).toMatchObject({ ok: true, trustedKey: true, keyFingerprint: keyFingerprint(fs.readFileSync(attKeyV1, 'utf8')) });
    expect((await airlock(['attest', 'verify', file, '--key', attKeyV1])).code).toBe(EXIT.ok);
    // `attest key` lists the retired version with its public key, for auditors who did not keep it.
    const keyNow = (await airlock(['attest', 'key', '--json'])).json<{ versions: Array<{ version: number; publicKey: string; retiredAt: string | null }> }>();
    expect(keyNow.versions.map((k) => [k.version, k.retiredAt !== null])).toEqual([
      [1, true],
      [2, false],
    ]);
    expect(keyNow.versions[0]!.publicKey).toBe(fs.readFileSync(attKeyV1, 'utf8'));
    // An attestation made now is signed by version 2.
    const now = await attest();
    const nowFile = path.join(work, 'att2.json');
    fs.writeFileSync(nowFile, now.text);
    expect((await airlock(['attest', 'verify', nowFile, '--json'])).json()).toMatchObject({ ok: true, keyFingerprint: ar.json<{ newFingerprint: string }>().newFingerprint });

    // ---- tampering ----
    // An edited bundle: the edited event is named.
    const lines = fs.readFileSync(bundle, 'utf8').trimEnd().split('\n');
    const e = JSON.parse(lines[5]!) as Record<string, unknown>;
    e.target = 'someone else';
    lines[5] = JSON.stringify(e);
    const edited = path.join(work, 'edited.bundle');
    fs.writeFileSync(edited, lines.join('\n') + '\n');
    const be = await airlock(['audit', 'verify-bundle', edited, '--trust', original]);
    expect(be.code).toBe(EXIT.failed);
    expect(be.stdout).toMatch(/^Audit bundle NOT VERIFIED at event 5 \(edited\): event 5 does not match its hash: edited/);
    // A pin that is not the console's key.
    const stranger = keyFingerprint(crypto.generateKeyPairSync('ed25519').publicKey);
    const bs = await airlock(['audit', 'verify-bundle', bundle, '--trust', stranger]);
    expect(bs.code).toBe(EXIT.failed);
    expect(bs.stdout).toMatch(/carries no public key with the pinned fingerprint/);
    // An edited attestation.
    const doc = JSON.parse(fs.readFileSync(file, 'utf8')) as { attestation: { operator: string } };
    doc.attestation.operator = 'mallory';
    fs.writeFileSync(path.join(work, 'att-edited.json'), JSON.stringify(doc));
    const ae = await airlock(['attest', 'verify', path.join(work, 'att-edited.json')]);
    expect(ae.code).toBe(EXIT.failed);
    expect(ae.stdout).toMatch(/the signature does not match the attestation/);

    // Someone holding the file adds their own audit key as the newest version, and signs a checkpoint with it.
    const attacker = crypto.generateKeyPairSync('ed25519');
    const pem = attacker.publicKey.export({ format: 'pem', type: 'spki' }).toString();
    const db = new Database(DB());
    let forgedSeq = 0;
    try {
      db.prepare("UPDATE console_keys SET sealed = NULL, retired_at = '2030-01-01T00:00:00.000Z' WHERE purpose = 'audit.signing' AND retired_at IS NULL").run();
      db.prepare("INSERT INTO console_keys (purpose, version, kek_version, sealed, public, fingerprint, staged_for, created_at) VALUES ('audit.signing', 4, 1, ?, ?, ?, NULL, '2030-01-01T00:00:00.000Z')").run(
        crypto.randomBytes(64),
        pem,
        keyFingerprint(pem),
      );
      const last = db.prepare('SELECT seq, hash, ts FROM audit_events ORDER BY seq DESC LIMIT 1').get() as { seq: number; hash: string; ts: string };
      forgedSeq = last.seq + 1;
      const ts = new Date(Date.parse(last.ts) + 1000).toISOString();
      const cp = canonical({
        actor: SYSTEM_ACTOR,
        roles: [],
        session: null,
        shell: 'core',
        channel: CHECKPOINT_CHANNEL,
        phase: 'outcome',
        target: null,
        params: { headSeq: last.seq, headHash: last.hash, headTs: last.ts, signature: crypto.sign(null, checkpointPayload(last), attacker.privateKey).toString('base64'), keyFingerprint: keyFingerprint(pem) },
        outcome: 'ok',
        errorCode: null,
        seq: forgedSeq,
        ts,
      });
      db.prepare('INSERT INTO audit_events (seq, ts, actor, channel, body, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?)').run(forgedSeq, ts, SYSTEM_ACTOR, CHECKPOINT_CHANNEL, cp, last.hash, chainHash(last.hash, cp));
    } finally {
      db.close();
    }
    const fv = await airlock(['audit', 'verify', '--json']);
    expect(fv.code).toBe(EXIT.failed);
    expect(fv.json()).toMatchObject({
      ok: false,
      firstBad: { seq: forgedSeq, kind: 'bad-signature', reason: expect.stringMatching(/a key on record that no handover signed by its predecessor introduces: not trusted/) },
    });
  }, 120_000);
});

/** The bundled CLI (bin/airlock.mjs) in a process of its own, so that it can be SIGKILLed. */
function bundled(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [path.resolve(__dirname, '../../bin/airlock.mjs'), ...args, '--data', data], {
    encoding: 'utf8',
    env: { ...process.env, AIRLOCK_USER: 'alice', AIRLOCK_PASSWORD: ALICE, AIRLOCK_TOTP_POLICY: 'off', ...env },
    input: '',
    timeout: 60_000,
  });
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

describe('a console killed during the rotation of its audit signing key', () => {
  it('leaves the old key current or the new one, never neither; the trail verifies either way and the next console signs with the current key', async () => {
    expect(spawnSync(process.execPath, [path.resolve(__dirname, '../../scripts/build.mjs')], { stdio: 'inherit' }).status).toBe(0);
    // The boundaries (keys/own-rotation.ts): 0 inside the transaction, 1 after the commit before the swap, 2 after audit.head.
    for (const at of [0, 1, 2]) {
      fs.rmSync(data, { recursive: true, force: true });
      fs.mkdirSync(data, { recursive: true });
      expect((await airlock(['init', '--admin', 'alice'])).code).toBe(EXIT.ok);
      await activity(6);
      const original = (await airlock(['audit', 'verify', '--json'])).json<{ keyFingerprint: string }>().keyFingerprint;
      const killed = bundled(['keys', 'rotate-own', '--purpose', 'audit.signing'], { AIRLOCK_TEST_KILL_AT: String(at) });
      expect(killed.signal, `boundary ${at}: ${killed.stderr}`).toBe('SIGKILL');

      const versions = (await airlock(['keys', 'status', '--json'])).json<{ ownKeys: Array<{ purpose: string; version: number; retiredAt: string | null }> }>().ownKeys.filter((k) => k.purpose === 'audit.signing');
      const current = versions.filter((k) => k.retiredAt === null);
      // Exactly one current version: the old one (killed before the commit) or the new one.
      expect(current, `boundary ${at}`).toHaveLength(1);
      expect(current[0]!.version, `boundary ${at}`).toBe(at === 0 ? 1 : 2);
      expect(versions, `boundary ${at}`).toHaveLength(at === 0 ? 1 : 2);

      // The trail verifies, and a console started now signs its checkpoints with the current key.
      await activity(7);
      const v = await airlock(['audit', 'verify', '--trust', original, '--json']);
      expect(v.code, `boundary ${at}: ${v.stdout}`).toBe(EXIT.ok);
      const rep = v.json<{ keyFingerprints: string[]; checkpoints: number }>();
      expect(rep.keyFingerprints, `boundary ${at}`).toHaveLength(at === 0 ? 1 : 2);
      const db = new Database(DB(), { readonly: true });
      try {
        const lastCp = JSON.parse(db.prepare("SELECT body FROM audit_events WHERE channel = 'audit:checkpoint' ORDER BY seq DESC LIMIT 1").pluck().get() as string) as { params: { keyFingerprint: string } };
        expect(lastCp.params.keyFingerprint, `boundary ${at}`).toBe(rep.keyFingerprints[rep.keyFingerprints.length - 1]);
      } finally {
        db.close();
      }
      // And the rotation can be run (again) to completion.
      const again = await airlock(['keys', 'rotate-own', '--purpose', 'audit.signing', '--json']);
      expect(again.code, again.stderr).toBe(EXIT.ok);
      expect((await airlock(['audit', 'verify', '--trust', original, '--json'])).code).toBe(EXIT.ok);
    }
  }, 300_000);
});
