/**
 * Key ceremonies drilled from the `airlock` CLI, run in-process (the same runCli the bundled
 * command runs) on a temp data dir, every invocation its own console process as far as the key
 * hierarchy goes: genesis 3-of-5 into share files, verify-shares, KEK rotation with the shares,
 * the refusals (too few, tampered, duplicated, foreign, stale shares), reshare under the
 * two-person rule, and transcripts verified offline with only the root CA certificate — by
 * Airlock and by the real `openssl`.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EXIT, runCli } from '../../electron/shells/cli';
import { asOlga, inProcessCli } from '../support/cli';

let data: string;
let work: string;
beforeEach(() => {
  data = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-keys-cli-'));
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-keys-work-'));
});
afterEach(() => {
  fs.rmSync(data, { recursive: true, force: true });
  fs.rmSync(work, { recursive: true, force: true });
});

const airlock = inProcessCli(() => data);

async function genesis(dir = path.join(work, 'shares')) {
  expect((await airlock(['init', '--admin', 'alice'])).code).toBe(EXIT.ok);
  const g = await airlock(['keys', 'genesis', '--threshold', '3', '--shares', '5', '--share-dir', dir, '--witness', 'Wanda', '--transcript', path.join(work, 'genesis.json'), '--json']);
  expect(g.code, g.stderr + g.stdout).toBe(EXIT.ok);
  const files = (g.json().shareFiles as string[]).map((f) => path.resolve(f));
  return { files, json: g.json() };
}

describe('airlock keys (ceremonies from the CLI)', () => {
  it('genesis 3-of-5 writes five 0600 share files and a transcript that verifies offline, also with openssl', async () => {
    const { files, json } = await genesis();
    expect(files).toHaveLength(5);
    for (const f of files) {
      expect(fs.statSync(f).mode & 0o777).toBe(0o600);
      expect(fs.readFileSync(f, 'utf8')).toMatch(/^-----BEGIN AIRLOCK ROOT KEY SHARE-----/);
    }
    expect((json.ceremony as { status: string }).status).toBe('completed');

    const status = await airlock(['keys', 'status', '--json']);
    const st = status.json() as { initialised: boolean; sealed: boolean; threshold: number; count: number; domains: { domain: string; currentVersion: number }[] };
    // This process's hierarchy is sealed: genesis ran in another one, which ended.
    expect(st).toMatchObject({ initialised: true, sealed: true, threshold: 3, count: 5 });
    expect(st.domains.map((d) => d.domain).sort()).toEqual(['console', 'datasets', 'host-secrets', 'models']);

    // Offline: only the transcript and the root CA certificate.
    const ca = path.join(work, 'root.pem');
    expect((await airlock(['keys', 'ca-certificate', '--out', ca])).code).toBe(EXIT.ok);
    const off = await runCli(['keys', 'verify-transcript', path.join(work, 'genesis.json'), '--ca', ca], { stdout: () => {}, stderr: () => {}, env: {}, prompt: null, rendererDir: work, version: 'test' });
    expect(off).toBe(EXIT.ok);
    const v = await airlock(['keys', 'verify-transcript', path.join(work, 'genesis.json'), '--ca', ca, '--json']);
    expect(v.json()).toMatchObject({ ok: true, kind: 'genesis' });

    // The real openssl accepts the detached CMS over the canonical transcript bytes.
    const file = JSON.parse(fs.readFileSync(path.join(work, 'genesis.json'), 'utf8')) as { transcript: unknown; signature: { cms: string } };
    const content = path.join(work, 'content.json');
    fs.writeFileSync(content, execFileSync('jq', ['-j', '-c', '-S', '.transcript', path.join(work, 'genesis.json')]));
    fs.writeFileSync(path.join(work, 'sig.der'), Buffer.from(file.signature.cms, 'base64'));
    const at = String(Math.floor(Date.parse((file.transcript as { finishedAt: string }).finishedAt) / 1000));
    execFileSync('openssl', ['cms', '-verify', '-binary', '-purpose', 'any', '-inform', 'DER', '-in', path.join(work, 'sig.der'), '-content', content, '-CAfile', ca, '-attime', at, '-out', '/dev/null'], { stdio: 'pipe' });

    // One byte changed in the transcript: refused.
    const t = fs.readFileSync(path.join(work, 'genesis.json'), 'utf8').replace('"genesis"', '"unseal"');
    fs.writeFileSync(path.join(work, 'tampered.json'), t);
    const bad = await airlock(['keys', 'verify-transcript', path.join(work, 'tampered.json'), '--ca', ca]);
    expect(bad.code).toBe(EXIT.failed);
    expect(bad.stdout).toMatch(/NOT VERIFIED/);
    // No share is in the database file, the trail or the transcript.
    const db = fs.readFileSync(path.join(data, 'airlock.db'));
    const transcript = fs.readFileSync(path.join(work, 'genesis.json'), 'utf8');
    for (const f of files) {
      const body = fs.readFileSync(f, 'utf8').split('\n').filter((l) => l && !l.startsWith('-----')).join('');
      expect(db.includes(Buffer.from(body.slice(0, 40)))).toBe(false);
      expect(transcript).not.toContain(body.slice(0, 40));
    }
  }, 60_000);

  it('verify-shares reports each share; unseal refuses too few, tampered and duplicated shares; rotate raises the KEK version', async () => {
    const { files } = await genesis();
    const ok = await airlock(['keys', 'verify-shares', '--share', files[0]!, '--share', files[2]!, '--share', files[4]!]);
    expect(ok.code, ok.stderr).toBe(EXIT.ok);
    expect(ok.stdout).toMatch(/the set opens the root/);

    const tampered = path.join(work, 'tampered.txt');
    const lines = fs.readFileSync(files[1]!, 'utf8').split('\n');
    lines[2] = lines[2]!.slice(0, 10) + (lines[2]![10] === 'A' ? 'B' : 'A') + lines[2]!.slice(11);
    fs.writeFileSync(tampered, lines.join('\n'));
    const mixed = await airlock(['keys', 'verify-shares', '--share', files[0]!, '--share', tampered]);
    expect(mixed.code).toBe(EXIT.failed);
    expect(mixed.stdout).toMatch(/REFUSED/);

    const few = await airlock(['keys', 'unseal', '--share', files[0]!, '--share', files[1]!]);
    expect(few.code).toBe(EXIT.failed);
    expect(few.stderr).toMatch(/KEY_UNAVAILABLE/);
    const dup = await airlock(['keys', 'unseal', '--share', files[0]!, '--share', files[0]!, '--share', tampered]);
    expect(dup.code).toBe(EXIT.failed);
    expect(dup.stderr).toMatch(/refused/);

    const un = await airlock(['keys', 'unseal', '--share', files[0]!, '--share', files[0]!, '--share', files[1]!, '--share', files[3]!]);
    expect(un.code, un.stderr).toBe(EXIT.ok);
    expect(un.stdout).toMatch(/refused/); // the duplicate, listed; the other three unseal

    const rot = await airlock(['keys', 'rotate', '--domain', 'models', '--share', files[1]!, '--share', files[2]!, '--share', files[3]!, '--json']);
    expect(rot.code, rot.stderr).toBe(EXIT.ok);
    expect(rot.json()).toMatchObject({ domain: 'models', version: 2 });
    const st = (await airlock(['keys', 'status', '--json'])).json() as { domains: { domain: string; currentVersion: number }[] };
    expect(st.domains.find((d) => d.domain === 'models')!.currentVersion).toBe(2);
    // min_decryption_version: refused past the current version; after the rotation (every key rewrapped) 2 retires v1.
    const tooHigh = await airlock(['keys', 'set-min-version', '--domain', 'models', '--version', '3', '--json']);
    expect(tooHigh.code).not.toBe(EXIT.ok);
    expect(`${tooHigh.stdout}${tooHigh.stderr}`).toContain('between 1 and the current version 2');
    const min = await airlock(['keys', 'set-min-version', '--domain', 'models', '--version', '2', '--json']);
    expect(min.code, min.stderr).toBe(EXIT.ok);
    expect(min.json()).toMatchObject({ domain: 'models', minDecryptionVersion: 2 });
    const st2 = (await airlock(['keys', 'status', '--json'])).json() as { domains: { domain: string; minDecryptionVersion: number }[] };
    expect(st2.domains.find((d) => d.domain === 'models')!.minDecryptionVersion).toBe(2);

    const list = await airlock(['keys', 'ceremonies', '--json']);
    const kinds = (list.json() as unknown as { kind: string; status: string }[]).map((c) => `${c.kind}:${c.status}`);
    expect(kinds).toContain('rotate-kek:completed');
    expect(kinds).toContain('genesis:completed');
  }, 90_000);

  it("Airlock's own keys: in keys status before and after genesis, moved by a console KEK rotation, still opening at the next sign-in", async () => {
    expect((await airlock(['init', '--admin', 'alice'])).code).toBe(EXIT.ok);
    type Own = { purpose: string; version: number; fingerprint: string | null; kekVersion: number; retiredAt: string | null };
    const own = async () => ((await airlock(['keys', 'status', '--json'])).json() as { ownKeys: Own[] }).ownKeys;
    const identity = (await airlock(['identity', 'show', '--json'])).json() as { fingerprint: string };
    const before = await own();
    expect(before.find((k) => k.purpose === 'ssh.identity')).toMatchObject({ version: 1, fingerprint: identity.fingerprint, kekVersion: 1, retiredAt: null });
    expect(before.map((k) => k.purpose).sort()).toEqual(expect.arrayContaining(['audit.hmac', 'audit.signing', 'ssh.identity']));
    const human = await airlock(['keys', 'status']);
    expect(human.stdout).toMatch(/No key hierarchy yet/);
    expect(human.stdout).toContain(`ssh.identity v1 ed25519 ${identity.fingerprint}`);

    const dir = path.join(work, 'shares');
    const g = await airlock(['keys', 'genesis', '--threshold', '3', '--shares', '5', '--share-dir', dir, '--witness', 'Wanda', '--json']);
    expect(g.code, g.stderr + g.stdout).toBe(EXIT.ok);
    const files = (g.json().shareFiles as string[]).map((f) => path.resolve(f));
    expect((await own()).map((k) => [k.purpose, k.fingerprint, k.kekVersion])).toEqual(before.map((k) => [k.purpose, k.fingerprint, 1]));

    const rot = await airlock(['keys', 'rotate', '--domain', 'console', '--share', files[0]!, '--share', files[2]!, '--share', files[4]!, '--json']);
    expect(rot.code, rot.stderr).toBe(EXIT.ok);
    expect(rot.json()).toMatchObject({ domain: 'console', version: 2 });
    const after = await own();
    expect(after.map((k) => [k.purpose, k.fingerprint, k.kekVersion])).toEqual(before.map((k) => [k.purpose, k.fingerprint, 2]));
    // A new console process, a sign-in, the hierarchy sealed: the audit keys open (the chain verifies with the same key), the identity is the same.
    const verify = await airlock(['audit', 'verify', '--json']);
    expect(verify.code, verify.stderr).toBe(EXIT.ok);
    expect(verify.json()).toMatchObject({ ok: true, keyFingerprint: before.find((k) => k.purpose === 'audit.signing')!.fingerprint });
    expect(((await airlock(['identity', 'show', '--json'])).json() as { fingerprint: string }).fingerprint).toBe(identity.fingerprint);
  }, 90_000);

  it('reshare goes through the two-person rule; the old shares are stale afterwards, shares of another hierarchy are foreign', async () => {
    const { files } = await genesis();
    expect((await airlock(['users', 'create', 'olga', '--role', 'officer', '--no-password-change'], { AIRLOCK_NEW_PASSWORD: 'olga own password' })).code).toBe(EXIT.ok);
    const newDir = path.join(work, 'new');
    const args = ['keys', 'reshare', '--threshold', '2', '--shares', '3', '--share-dir', newDir, '--witness', 'Wanda', '--officer', 'Ann', '--officer', 'Ben', '--officer', 'Cy'];
    const direct = await airlock([...args, '--share', files[0]!, '--share', files[1]!, '--share', files[2]!]);
    expect(direct.code).toBe(EXIT.failed);
    expect(direct.stderr).toMatch(/APPROVAL_REQUIRED/);
    const filed = await airlock([...args, '--reason', 'officer leaving', '--json']);
    expect(filed.code, filed.stderr).toBe(EXIT.pending);
    const id = String((filed.json().pending as { id: number }).id);
    expect((await airlock(['approvals', 'approve', id, '--reason', 'checked in person'], asOlga)).code).toBe(EXIT.ok);
    const run = await airlock([...args, '--approval', id, '--share', files[0]!, '--share', files[1]!, '--share', files[2]!]);
    expect(run.code, run.stderr).toBe(EXIT.ok);
    const fresh = fs.readdirSync(newDir).map((f) => path.join(newDir, f));
    expect(fresh).toHaveLength(3);

    const stale = await airlock(['keys', 'verify-shares', '--share', files[0]!]);
    expect(stale.code).toBe(EXIT.failed);
    expect(stale.stdout).toMatch(/REFUSED/);
    const two = await airlock(['keys', 'verify-shares', '--share', fresh[0]!, '--share', fresh[2]!]);
    expect(two.code, two.stdout + two.stderr).toBe(EXIT.ok);

    // A share of another console's hierarchy.
    const other = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-keys-other-'));
    try {
      const saved = data;
      data = other;
      const g2 = await genesis(path.join(work, 'other-shares'));
      data = saved;
      const foreign = await airlock(['keys', 'verify-shares', '--share', g2.files[0]!]);
      expect(foreign.code).toBe(EXIT.failed);
      expect(foreign.stdout).toMatch(/REFUSED/);
    } finally {
      fs.rmSync(other, { recursive: true, force: true });
    }
  }, 120_000);
});
