import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openDatabase } from '../db/db';
import { HostsService } from '../hosts/service';
import { Vault } from '../vault/vault';
import { createKeysArea } from './area';
import { generateP256Key, issueCertificate, publicKeyOf } from './ca';
import { certificateRow, hostPublicKeyFromCsr } from './ca-ops';

const KDF = { alg: 'argon2id' as const, memoryKiB: 1024, iterations: 1, parallelism: 1 };
const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => fs.rmSync(d, { recursive: true, force: true })));
const tmp = () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-caops-'));
  dirs.push(d);
  return d;
};

/** A CSR as a host prints it: the real openssl, a key of the given algorithm options. */
function csrFor(genpkey: string[]): { csr: string; spki: Buffer } {
  const d = tmp();
  const key = path.join(d, 'k.pem');
  execFileSync('openssl', ['genpkey', ...genpkey, '-out', key], { stdio: 'ignore' });
  const csr = execFileSync('openssl', ['req', '-new', '-key', key, '-subj', '/CN=airlock-host', '-outform', 'PEM'], { encoding: 'utf8' });
  const spki = execFileSync('openssl', ['pkey', '-in', key, '-pubout', '-outform', 'DER']);
  return { csr, spki };
}
const P256 = ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'];

describe("a host's certificate request", () => {
  it('gives exactly the public key of the P-256 key the host made', async () => {
    const { csr, spki } = csrFor(P256);
    expect((await hostPublicKeyFromCsr(csr)).equals(spki)).toBe(true);
  });

  it('is refused unless it is one self-signed P-256 request and nothing else', async () => {
    const { csr } = csrFor(P256);
    const refused = (text: string, why: RegExp) => expect(hostPublicKeyFromCsr(text)).rejects.toMatchObject({ code: 'PARSE_ERROR', message: why });
    await refused(csrFor(['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-384']).csr, /not for an ECDSA P-256 key/);
    await refused(csrFor(['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048']).csr, /not for an ECDSA P-256 key/);
    await refused(`${csr}${csr}`, /not exactly one PEM/);
    await refused(`junk\n${csr}`, /not exactly one PEM/);
    await refused(csr.replace('CERTIFICATE REQUEST', 'CERTIFICATE'), /not exactly one PEM/);
    await refused('', /not exactly one PEM/);
    await refused(`${csr}${'A'.repeat(5000)}`, /too large/);
    // The signature's last bytes changed: the request was not made with its own key.
    const der = Buffer.from(csr.replace(/-----[^-]+-----|\s/g, ''), 'base64');
    const at = der.length - 3;
    der[at] = der[at]! ^ 0x01;
    const tampered = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64').match(/.{1,64}/g)!.join('\n')}\n-----END CERTIFICATE REQUEST-----\n`;
    await refused(tampered, /not signed by its own key|could not be decoded/);
  });
});

describe('the renewal schedule', () => {
  it('renews only while unsealed and armed by a live session; otherwise its status says what it waits for', async () => {
    const d = tmp();
    const db = openDatabase(path.join(d, 'airlock.db'));
    const random = (n: number) => crypto.randomBytes(n);
    const vault = new Vault({ db, kdf: KDF, random, now: () => new Date().toISOString() });
    const vaultKey = vault.newVaultKey();
    const hosts = new HostsService({ db, now: () => new Date(), timeoutMs: 2000, concurrency: 2, poolIdleMs: 0 });
    const area = createKeysArea({ db, vault, random, now: () => new Date(), kdf: KDF, workers: false, hosts, renewal: { intervalMs: 0, windowDays: 30 } });
    try {
      const c = area.ceremonies;
      let cer = c.begin({ kind: 'genesis', officers: ['Ann', 'Ben'], witnesses: ['Wanda'], threshold: 2 }, 'alice');
      cer = await c.acknowledge(cer.id, 1, 'alice', 'alice', vaultKey);
      cer = await c.acknowledge(cer.id, 2, 'Wanda', 'alice', vaultKey);
      await c.genesis(cer.id, {}, vaultKey);
      const schedule = area.schedule!;
      expect(schedule.status()).toMatchObject({ due: [], blocked: null, intervalMinutes: 0, windowDays: 30 });

      // A host certificate 5 days from its end, for a host no longer in the inventory.
      const issuing = area.certs.listByExpiry({ profile: 'issuing-ca' })[0]!;
      const caKey = area.ca.openCaKey(vaultKey, issuing.serial);
      const hostKey = generateP256Key(random);
      const cert = await issueCertificate(
        { certPem: issuing.certPem, privateKeyPkcs8: caKey },
        { profile: 'host-tls', commonName: 'gpu1', dnsNames: ['gpu1'], publicKey: publicKeyOf(hostKey), validityDays: 5, now: new Date(), random },
      );
      caKey.fill(0);
      const rec = area.certs.record({ certPem: cert.certPem, issuerSerial: issuing.serial, host: 'gpu1' });
      const row = certificateRow(rec, new Date(), 30);
      expect(row).toMatchObject({ renewalDue: true, host: 'gpu1' });
      expect(row.daysLeft).toBeGreaterThanOrEqual(4);
      expect(row.daysLeft).toBeLessThanOrEqual(5);
      expect(certificateRow(rec, new Date(), 1).renewalDue).toBe(false);

      // Unsealed, but no session has armed it.
      expect(schedule.status()).toMatchObject({ due: [rec.serial], blocked: 'no-session' });
      await schedule.tick();
      expect(schedule.status().lastRunAt).toBeNull();
      expect(schedule.status().lastCheckAt).not.toBeNull();

      // Armed by a session that has since ended: its getters throw, and the schedule disarms.
      schedule.arm({
        vaultKey: () => {
          throw new Error('session ended');
        },
        auth: () => ({}),
      });
      expect(schedule.status().blocked).toBeNull();
      await schedule.tick();
      expect(schedule.status()).toMatchObject({ blocked: 'no-session', lastRunAt: null });

      // Armed by a live session: it runs; the host is gone, so renewal fails and the old certificate stays.
      schedule.arm({ vaultKey: () => vaultKey, auth: () => ({}) });
      await schedule.tick();
      const st = schedule.status();
      expect(st.lastRunAt).not.toBeNull();
      expect(st.lastError).toMatch(/gpu1: No host named "gpu1"/);
      expect(st.due).toEqual([rec.serial]);
      expect(area.certs.get(rec.serial)!.revokedAt).toBeNull();

      // Sealed (the console locked): disarmed, and the status says it waits for an unseal.
      area.close();
      expect(schedule.status().blocked).toBe('sealed');
      schedule.arm({ vaultKey: () => vaultKey, auth: () => ({}) });
      const runAt = schedule.status().lastRunAt;
      await schedule.tick();
      expect(schedule.status()).toMatchObject({ blocked: 'sealed', lastRunAt: runAt });
    } finally {
      area.stop();
      area.close();
      hosts.close();
      db.close();
    }
  });
});
