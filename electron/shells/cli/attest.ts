import fs from 'node:fs';
import { verifyAttestationText } from '../../core/attest/attest';
import { FILE_LIMITS, readTextFile } from '../cli-files';
import { clean } from './io';
import { arg, call, command, opt, type AreaTable } from './spec';

/** `attest verify FILE --key PEM`: offline, no data directory, no sign-in. */
export function verifyOffline(file: string, keyFile: string) {
  return verifyAttestationText(readTextFile(file, FILE_LIMITS.attestation), readTextFile(keyFile, FILE_LIMITS.pem));
}

export function formatVerify(v: { ok: boolean; keyFingerprint: string | null; host: string | null; problems: string[] }): string {
  return v.ok
    ? `OK: attestation for ${clean(v.host, 80)} signed by ${v.keyFingerprint}\n`
    : `NOT VERIFIED${v.host ? ` (attestation for ${clean(v.host, 80)})` : ''}:\n${v.problems.map((p) => `  - ${clean(p, 500)}\n`).join('')}`;
}

export const attest: AreaTable = {
  area: 'attest',
  about: 'signed as-built attestations of provisioned hosts',
  commands: [
    call({
      words: 'attest list',
      channel: 'attest:list',
      options: { host: opt.string('H', "only this host's attestations") },
      input: (c) => ({ host: c.opts.host }),
      human: (v) => v.map((a) => `${a.id}\t${a.host}\t${a.playbook}\t${a.createdAt}\t${a.run}\n`).join(''),
    }),
    command({
      words: 'attest show',
      channel: 'attest:show',
      args: { id: arg.optional('ID', 'the attestation (or --host H for its latest)') },
      options: { host: opt.string('H', "the host's latest attestation"), out: opt.string('FILE', 'write it to FILE (JSON, for `attest verify`)') },
      async run(c) {
        const o = c.opts;
        const r = await c.call('attest:show', c.args.id ? { id: c.args.id } : { host: o.host ?? c.usage('attest show needs an ID or --host H') });
        if (!r.ok) return c.fail(r);
        const text = JSON.stringify(r.value, null, 2) + '\n';
        if (o.out) {
          fs.writeFileSync(o.out, text, { mode: 0o644 });
          c.out(`Wrote ${r.value.attestation.id} to ${o.out}\n`, { file: o.out, id: r.value.attestation.id });
        } else c.out(text, r.value);
        return 0;
      },
    }),
    call({
      words: 'attest key',
      channel: 'attest:key',
      input: () => ({}),
      notes: ['after a rotation (`keys rotate-own --purpose attest.signing`), earlier versions are listed too: an attestation verifies with the version that signed it'],
      human: (v) =>
        v.publicKey
          ? `${v.fingerprint}\n${v.publicKey}` +
            (v.versions ?? [])
              .filter((k) => k.retiredAt)
              .map((k) => `\nversion ${k.version} (retired ${k.retiredAt}): ${k.fingerprint}\n${k.publicKey}`)
              .join('')
          : 'No attestation has been signed yet.\n',
    }),
    command({
      words: 'attest verify',
      channel: 'attest:verify',
      args: { file: arg.one('FILE', 'an exported attestation (`attest show --out FILE`)') },
      options: { key: opt.string('PUBLIC.pem', "the console's attestation public key (`attest key`): verify offline, with no data directory and no sign-in") },
      summary: "Verify an exported attestation's signature: against this console's key, or offline against --key",
      failsWhen: 'the attestation is not verified (each problem is listed)',
      // Offline: the file and the console's public key are all an auditor needs; no database, no sign-in.
      needs: (o) => (o.key ? 'nothing' : 'session'),
      async run(c) {
        let v;
        if (c.opts.key) v = verifyOffline(c.args.file, c.opts.key);
        else {
          const r = await c.call('attest:verify', { text: readTextFile(c.args.file, FILE_LIMITS.attestation) });
          if (!r.ok) return c.fail(r);
          v = r.value;
        }
        c.out(formatVerify(v), v);
        return v.ok ? 0 : 1;
      },
    }),
  ],
};
