import fs from 'node:fs';
import path from 'node:path';
import { HostName } from '../../../shared/contract/common';
import { CertSerial, Ceremony, KeyDomain, OwnKeyPurpose, ParticipantName, RevocationReason, type CertificateRow, type CertRenewal, type OwnKeyRotation, type HostSecret, type KeyStatus, type ModelsRekey, type ModelsStatus, type SshRotation } from '../../../shared/contract/keys';
import { transcriptReport } from '../../core/keys/console-ca';
import { verifyTranscript } from '../../core/keys/transcript';
import { FILE_LIMITS, readTextFile } from '../cli-files';
import { clean } from './io';
import { arg, call, command, opt, type AreaTable, type Ctx, type Failure } from './spec';

/**
 * Key ceremonies from the command line, so that they can be drilled and tested without the UI,
 * with shares as files. Each CLI command is its own console process: the root key lives only in
 * its memory, so a command that needs the root (rotate, reshare, rotate-root) takes the officers'
 * shares itself (--share) and the hierarchy is sealed again when it ends. In a room, the CLI
 * records each step as acknowledged by the person named for it, entered by the signed-in account.
 */

export const SHARES = opt.strings('FILE', "an officer's armored share file (repeat for each; the threshold is needed)");
const OFFICERS = opt.strings('NAME', 'the officers who receive shares, in order (default officer-1 … officer-N)', { schema: ParticipantName });
const WITNESSES = opt.strings('NAME', 'a witness of the ceremony (default: one named "witness")', { schema: ParticipantName });
const SHARE_DIR = opt.string('DIR', 'where to write one share file per officer (0600; created 0700 if missing; existing share files are never overwritten)', { required: true });
const TRANSCRIPT = opt.string('FILE', 'also write the signed transcript to FILE');

type C = Ctx;

/** The calls `unsealWith` makes before a CA command's own. */
export const UNSEAL_CALLS = ['keys:begin', 'keys:acknowledge', 'keys:addShare', 'keys:cancel', 'session:status'] as const;

/** Runs `steps`, stopping at the first refusal: its exit code. */
class Refused extends Error {
  constructor(readonly failure: Failure) {
    super(failure.error.message);
  }
}

export async function must<T>(p: Promise<{ ok: true; value: T } | Failure>): Promise<T> {
  const r = await p;
  if (!r.ok) throw new Refused(r);
  return r.value;
}

/** Acknowledges every open person's step up to (not including) the next automatic one, or to the end. */
async function acknowledgeUntilAuto(c: C, cer: Ceremony, names: { administrator: string; witness: string | undefined }, log: string[]): Promise<Ceremony> {
  let cur = cer;
  for (const s of cur.steps) {
    if (s.at !== null) continue;
    if (s.automatic) break;
    const by = s.by === 'administrator' ? names.administrator : s.by === 'witness' ? (names.witness ?? names.administrator) : null;
    if (!by) break; // an officer's step: the caller does it with their share
    cur = await must(c.call('keys:acknowledge', { ceremony: cur.id, step: s.n, by }));
    log.push(`  step ${s.n}: ${s.title} — acknowledged by ${by}\n`);
  }
  return cur;
}

async function finish(c: C, cer: Ceremony, names: { administrator: string; witness: string | undefined }, log: string[], transcriptFile: string | undefined): Promise<Ceremony> {
  const done = await acknowledgeUntilAuto(c, cer, names, log);
  if (done.status === 'completed' && transcriptFile) {
    const t = await must(c.call('keys:transcript', { ceremony: done.id }));
    fs.writeFileSync(transcriptFile, t.text, { mode: 0o644 });
    log.push(`  transcript written to ${transcriptFile}\n`);
  }
  return done;
}

async function whoAmI(c: C): Promise<string> {
  const s = await must(c.call('session:status', {}));
  return s.user?.name ?? 'administrator';
}

/** Opens an unseal ceremony and gives it the shares; resolves when the hierarchy is open. */
async function unsealWith(c: C, files: string[], log: string[], administrator: string): Promise<Ceremony> {
  if (!files.length) c.usage('give the officers\' shares with --share FILE (repeat; the threshold is needed)');
  const texts = files.map((f) => readTextFile(f, FILE_LIMITS.share));
  let cer = await must(c.call('keys:begin', { kind: 'unseal' }));
  log.push(`Unseal ceremony ${cer.id}, nonce ${cer.nonce}\n`);
  cer = await acknowledgeUntilAuto(c, cer, { administrator, witness: undefined }, log);
  let done = false;
  for (const [k, share] of texts.entries()) {
    const r = await c.call('keys:addShare', { ceremony: cer.id, share });
    if (!r.ok) {
      log.push(`  ${files[k]}: refused — ${clean(r.error.message, 300)}\n`);
      continue;
    }
    log.push(`  ${files[k]}: accepted (${r.value.collected} of ${r.value.threshold})\n`);
    cer = r.value.ceremony;
    if (r.value.done) {
      done = true;
      break;
    }
  }
  if (!done) {
    c.io.stderr(log.join(''));
    await c.call('keys:cancel', { ceremony: cer.id, reason: 'not enough valid shares were given' });
    throw new Refused({ ok: false, error: { code: 'KEY_UNAVAILABLE', message: 'The shares given do not reach the threshold: the hierarchy stays sealed.' } });
  }
  return finish(c, cer, { administrator, witness: undefined }, log, undefined);
}

/** The share files' paths, checked free before any key is made (a share that cannot be written must never be lost after genesis). */
function prepareShareDir(dir: string, officers: string[]): string[] {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const files = officers.map((o, k) => path.join(dir, `share-${k + 1}-${o.replace(/[^A-Za-z0-9._-]+/g, '_')}.txt`));
  for (const f of files) if (fs.existsSync(f)) throw new Refused({ ok: false, error: { code: 'CONFLICT', message: `${f} already exists: share files are never overwritten. Choose another --share-dir.` } });
  const probe = path.join(dir, `.airlock-probe-${process.pid}`);
  fs.writeFileSync(probe, '', { mode: 0o600, flag: 'wx' });
  fs.unlinkSync(probe);
  return files;
}

/** Genesis, reshare, rotate-root: the automatic step, then each officer's fingerprint check and share. */
async function issueShares(
  c: C,
  cer: Ceremony,
  run: (id: string) => Promise<{ shares: { index: number; officer: string; fingerprint: string }[] }>,
  files: string[],
  names: { administrator: string; witness: string | undefined },
  log: string[],
  transcript: string | undefined,
): Promise<Ceremony> {
  let cur = await acknowledgeUntilAuto(c, cer, names, log);
  const made = await run(cur.id);
  log.push(`  step ${cur.steps.find((s) => s.automatic)!.n}: done by Airlock\n`);
  cur = await must(c.call('keys:ceremony', { ceremony: cur.id }));
  for (const s of made.shares) {
    const step = cur.steps.find((x) => !x.automatic && x.at === null && x.by === 'officer')!;
    cur = await must(c.call('keys:acknowledge', { ceremony: cur.id, step: step.n, by: s.officer }));
    const issued = await must(c.call('keys:issueShare', { ceremony: cur.id, officer: s.officer }));
    const file = files[s.index - 1]!;
    fs.writeFileSync(file, issued.armored, { mode: 0o600, flag: 'wx' });
    log.push(`  share ${s.index} for ${s.officer} (fingerprint ${s.fingerprint}) written to ${file}\n`);
  }
  return finish(c, cur, names, log, transcript);
}

/** Runs a ceremony-driving command: any refusal is printed with what was done so far. */
export async function drive(c: C, body: (log: string[]) => Promise<{ human: string; value: unknown }>): Promise<number> {
  const log: string[] = [];
  try {
    const { human, value } = await body(log);
    c.out(log.join('') + human, value);
    return 0;
  } catch (e) {
    if (!(e instanceof Refused)) throw e;
    if (log.length && !c.json) c.io.stderr(log.join(''));
    return c.fail(e.failure);
  }
}

/**
 * Airlock's own keys (console domain entries): shown before genesis too, since they exist from
 * first-run setup on; retired versions are listed so an old signature's fingerprint can be found.
 */
type OwnKeyPurposeName = (typeof OwnKeyPurpose.options)[number];

function formatOwnRotation(r: OwnKeyRotation): string {
  const fp = r.newFingerprint ? ` (${r.oldFingerprint} → ${r.newFingerprint})` : '';
  return (
    `Rotated ${r.purpose}: version ${r.oldVersion} → ${r.newVersion}${fp}; old version retired.\n` +
    `Handover recorded at audit event ${r.handoverSeq}, covered by checkpoint ${r.checkpointSeq}` +
    (r.purpose === 'audit.signing' ? ' signed by the old key' : '') +
    (r.hmacFromSeq ? `; events from ${r.hmacFromSeq} on are tagged with the new HMAC key` : '') +
    '.\n'
  );
}

function ownKeysText(s: KeyStatus): string {
  if (s.ownKeys.length === 0) return "Airlock's own keys: none minted yet.\n";
  const line = (k: KeyStatus['ownKeys'][number]) =>
    `  ${k.purpose} v${k.version} ${k.algorithm} ${k.fingerprint ?? '(secret key, no fingerprint)'} created ${k.createdAt}, console KEK v${k.kekVersion}` +
    (k.retiredAt ? `, retired ${k.retiredAt}` : k.stagedFor ? `, staged by SSH rotation ${k.stagedFor}` : ', current') +
    '\n';
  return "Airlock's own keys:\n" + s.ownKeys.map(line).join('');
}

function statusText(s: KeyStatus): string {
  if (!s.initialised) return 'No key hierarchy yet: run the genesis ceremony (`airlock keys genesis`).\n' + ownKeysText(s);
  const head = `Hierarchy ${s.hierarchyId}: ${s.sealed ? 'SEALED' : `unsealed${s.unsealedBy.length ? ` by ${s.unsealedBy.join(', ')}` : ''}${s.unsealedAt ? ` at ${s.unsealedAt}` : ''}`}\n`;
  const root = `Root key ${s.rootKcv}, split ${s.threshold}-of-${s.count} among ${s.officers.map((o) => `${o.name} (${o.fingerprint})`).join(', ')}\n`;
  const unsealing = s.unsealing ? `Unseal in progress: ${s.unsealing.collected} of ${s.unsealing.threshold} shares (${s.unsealing.contributors.join(', ') || 'none yet'})\n` : '';
  const doms = s.domains
    .map((d) => `  ${d.domain}: KEK v${d.currentVersion} (min decryption v${d.minDecryptionVersion}); ` + d.versions.map((v) => `v${v.version} ${v.kcv} ${v.dataKeys} keys`).join(', ') + '\n')
    .join('');
  return head + root + unsealing + 'KEKs:\n' + doms + ownKeysText(s);
}

const participants = (o: { officer: string[]; witness: string[] }, n: number) => ({
  officers: o.officer.length ? o.officer : Array.from({ length: n }, (_, k) => `officer-${k + 1}`),
  witnesses: o.witness.length ? o.witness : ['witness'],
});

async function rootCeremony(c: C, kind: 'reshare' | 'rotate-root', log: string[]) {
  const o = c.opts as C['opts'] & { threshold: number; shares: number; 'share-dir': string; officer: string[]; witness: string[]; share: string[]; reason?: string; approval?: string; transcript?: string };
  const p = participants(o, o.shares);
  if (p.officers.length !== o.shares) c.usage(`--shares ${o.shares} but ${p.officers.length} officers are named`);
  const files = prepareShareDir(o['share-dir'], p.officers);
  const administrator = await whoAmI(c);
  await unsealWith(c, o.share, log, administrator);
  const channel = kind === 'reshare' ? 'keys:beginReshare' : 'keys:beginRotateRoot';
  let cer: Ceremony;
  if (o.approval) {
    const x = await must(c.call('approvals:execute', { id: Number(o.approval) }));
    cer = Ceremony.parse(x.value);
  } else {
    const r = await c.call(channel, { officers: p.officers, witnesses: p.witnesses, threshold: o.threshold });
    if (!r.ok) throw new Refused(r);
    cer = r.value;
  }
  log.push(`${kind} ceremony ${cer.id}, nonce ${cer.nonce}\n`);
  const names = { administrator, witness: p.witnesses[0] };
  const run = (id: string) => must(kind === 'reshare' ? c.call('keys:reshare', { ceremony: id }) : c.call('keys:rotateRoot', { ceremony: id }));
  const done = await issueShares(c, cer, run, files, names, log, o.transcript);
  return { human: `${kind === 'reshare' ? 'Reshared' : 'Rotated'} the root: ${o.threshold}-of-${o.shares}; ceremony ${done.id} ${done.status}.\n`, value: { ceremony: done, shareFiles: files } };
}

/** One host's models directory, as `keys models-status` and `keys protect-models` print it. */
function modelsText(v: ModelsStatus): string {
  const key = v.keyId ? `key ${v.keyId}` : 'no Airlock key';
  return `${v.host}\t${v.dir}\t${v.state}\t${key}${v.identifier ? ` (identifier ${v.identifier})` : ''}\n`;
}

/** Unseals with the shares given (if any) in this process, then runs `body`: the hierarchy is sealed again when the command ends. */
export async function withShares(c: C, shares: string[], log: string[], body: () => Promise<{ human: string; value: unknown }>): Promise<{ human: string; value: unknown }> {
  if (shares.length) await unsealWith(c, shares, log, await whoAmI(c));
  return body();
}

const ROOT_OPTIONS = {
  threshold: opt.int('M', 'how many officers must come together to unseal', { required: true }),
  shares: opt.int('N', 'how many officers receive a share', { required: true }),
  'share-dir': SHARE_DIR,
  officer: OFFICERS,
  witness: WITNESSES,
  share: SHARES,
  approval: opt.string('ID', 'the approved request (two-person rule) that opens this ceremony: run it now'),
  transcript: TRANSCRIPT,
};

export const keys: AreaTable = {
  area: 'keys',
  about: 'customer-managed keys: the root split among officers, KEKs, ceremonies and their transcripts',
  commands: [
    call({ words: 'keys status', channel: 'keys:status', input: () => ({}), human: statusText }),
    call({
      words: 'keys ceremonies',
      channel: 'keys:ceremonies',
      options: { limit: opt.int('N', 'at most N, newest first') },
      input: (c) => ({ ...(c.opts.limit !== undefined ? { limit: c.opts.limit } : {}) }),
      human: (v) => v.map((x) => `${x.id}\t${x.kind}\t${x.status}\t${x.administrator}\t${x.startedAt}\t${clean(x.message ?? '', 200)}\n`).join(''),
    }),
    call({
      words: 'keys ceremony',
      channel: 'keys:ceremony',
      args: { id: arg.one('ID', 'the ceremony (cer-…)') },
      input: (c) => ({ ceremony: c.args.id }),
      human: (v) =>
        `${v.id} ${v.kind} ${v.status}, nonce ${v.nonce}\n` +
        v.steps.map((s) => `  ${s.n}. [${s.at ? 'x' : ' '}] ${clean(s.title, 300)}${s.acknowledgedBy ? ` — ${s.acknowledgedBy}${s.recordedBy ? ` (recorded by ${s.recordedBy})` : ''} ${s.at}` : ''}\n`).join(''),
    }),
    call({
      words: 'keys cancel',
      channel: 'keys:cancel',
      args: { id: arg.one('ID', 'the open ceremony') },
      options: { reason: opt.string('R', 'why it is cancelled (recorded)', { required: true }) },
      input: (c) => ({ ceremony: c.args.id, reason: c.opts.reason }),
      human: (v) => `Cancelled ${v.id}\n`,
    }),
    command({
      words: 'keys genesis',
      channel: 'keys:genesis',
      alsoCalls: ['keys:begin', 'keys:acknowledge', 'keys:issueShare', 'keys:ceremony', 'keys:transcript', 'session:status'],
      summary: 'Genesis ceremony: create the root key, split it M-of-N into share files, create every KEK',
      options: {
        threshold: opt.int('M', 'how many officers must come together to unseal', { required: true }),
        shares: opt.int('N', 'how many officers receive a share', { required: true }),
        'share-dir': SHARE_DIR,
        officer: OFFICERS,
        witness: WITNESSES,
        transcript: TRANSCRIPT,
      },
      notes: ['share files are armored text for removable media or paper: each belongs to one officer, and nobody else should see it'],
      run: (c) =>
        drive(c, async (log) => {
          const o = c.opts;
          const p = participants(o, o.shares);
          if (p.officers.length !== o.shares) c.usage(`--shares ${o.shares} but ${p.officers.length} officers are named`);
          const files = prepareShareDir(o['share-dir'], p.officers);
          const administrator = await whoAmI(c);
          const cer = await must(c.call('keys:begin', { kind: 'genesis', officers: p.officers, witnesses: p.witnesses, threshold: o.threshold }));
          log.push(`Genesis ceremony ${cer.id}, nonce ${cer.nonce}\n`);
          let root = '';
          const done = await issueShares(
            c,
            cer,
            async (id) => {
              const g = await must(c.call('keys:genesis', { ceremony: id }));
              root = g.rootKcv;
              return g;
            },
            files,
            { administrator, witness: p.witnesses[0] },
            log,
            o.transcript,
          );
          return { human: `Created the key hierarchy: root ${root}, ${o.threshold}-of-${o.shares}; ceremony ${done.id} ${done.status}.\n`, value: { ceremony: done, rootKcv: root, shareFiles: files } };
        }),
    }),
    command({
      words: 'keys unseal',
      channel: 'keys:addShare',
      alsoCalls: ['keys:begin', 'keys:acknowledge', 'keys:cancel', 'session:status'],
      summary: 'Unseal ceremony with share files (a drill from the CLI: this process seals again when it ends)',
      options: { share: SHARES },
      run: (c) =>
        drive(c, async (log) => {
          const cer = await unsealWith(c, c.opts.share, log, await whoAmI(c));
          return { human: `Unsealed (ceremony ${cer.id}); sealed again as this command ends.\n`, value: { ceremony: cer } };
        }),
    }),
    call({ words: 'keys seal', channel: 'keys:seal', input: () => ({}), human: (v) => (v.sealed ? 'Sealed.\n' : 'Still unsealed?\n') }),
    command({
      words: 'keys verify-shares',
      channel: 'keys:verifyShares',
      alsoCalls: ['keys:begin', 'keys:acknowledge', 'session:status'],
      summary: "Verify-shares ceremony: each share is this hierarchy's and current, and the set opens the root (which stays sealed)",
      failsWhen: 'a share is refused or the set does not open the root',
      options: { share: SHARES },
      async run(c) {
        let ok = false;
        const code = await drive(c, async (log) => {
          if (!c.opts.share.length) c.usage('give the shares to check with --share FILE (repeat)');
          const texts = c.opts.share.map((f) => readTextFile(f, FILE_LIMITS.share));
          const administrator = await whoAmI(c);
          let cer = await must(c.call('keys:begin', { kind: 'verify-shares' }));
          cer = await acknowledgeUntilAuto(c, cer, { administrator, witness: undefined }, log);
          const r = await must(c.call('keys:verifyShares', { ceremony: cer.id, shares: texts.map((share) => ({ share })) }));
          const done = await finish(c, r.ceremony, { administrator, witness: undefined }, log, undefined);
          ok = r.report.shares.every((s) => s.ok) && r.report.combines === true;
          const lines = r.report.shares.map((s, k) => `  ${c.opts.share[k]}: ${s.ok ? `OK (share ${s.index} of ${s.officer})` : `REFUSED — ${clean(s.problem ?? '', 300)}`}\n`).join('');
          const set = r.report.combines === null ? 'too few valid shares to try the set' : r.report.combines ? 'the set opens the root' : 'the set does NOT open the root';
          return { human: lines + `${set}; ceremony ${done.id}.\n`, value: { report: r.report, ceremony: done } };
        });
        return code === 0 && !ok ? 1 : code;
      },
    }),
    command({
      words: 'keys rotate',
      channel: 'keys:rotateKek',
      alsoCalls: ['keys:begin', 'keys:acknowledge', 'keys:addShare', 'keys:cancel', 'keys:transcript', 'session:status'],
      summary: "Rotate a domain's KEK (unsealing with the shares given) and rewrap every data key to the new version",
      options: { domain: opt.string('D', 'models, datasets, host-secrets or console', { required: true, schema: KeyDomain }), share: SHARES, transcript: TRANSCRIPT },
      run: (c) =>
        drive(c, async (log) => {
          const administrator = await whoAmI(c);
          const domain = KeyDomain.parse(c.opts.domain);
          await unsealWith(c, c.opts.share, log, administrator);
          let cer = await must(c.call('keys:begin', { kind: 'rotate-kek', domain }));
          log.push(`KEK rotation ceremony ${cer.id}, nonce ${cer.nonce}\n`);
          cer = await acknowledgeUntilAuto(c, cer, { administrator, witness: undefined }, log);
          const r = await must(c.call('keys:rotateKek', { ceremony: cer.id }));
          const done = await finish(c, r.ceremony, { administrator, witness: undefined }, log, c.opts.transcript);
          return { human: `${r.domain} KEK is now version ${r.version}; ${r.rewrapped} data keys rewrapped; ceremony ${done.id}.\n`, value: { domain: r.domain, version: r.version, rewrapped: r.rewrapped, ceremony: done } };
        }),
    }),
    command({
      words: 'keys reshare',
      channel: 'keys:reshare',
      alsoCalls: ['keys:beginReshare', 'approvals:execute', 'keys:begin', 'keys:acknowledge', 'keys:addShare', 'keys:issueShare', 'keys:ceremony', 'keys:cancel', 'keys:transcript', 'session:status'],
      summary: 'Reshare the root among new officers or a new M-of-N (two-person rule); the old shares stop working',
      options: { ...ROOT_OPTIONS, reason: opt.string('R', 'why: files the reshare as an approval request (exit 3); after approval re-run with --approval ID') },
      run: (c) => rootRun(c, 'reshare'),
    }),
    command({
      words: 'keys rotate-root',
      channel: 'keys:rotateRoot',
      alsoCalls: ['keys:beginRotateRoot', 'approvals:execute', 'keys:begin', 'keys:acknowledge', 'keys:addShare', 'keys:issueShare', 'keys:ceremony', 'keys:cancel', 'keys:transcript', 'session:status'],
      summary: 'Rotate the root key: a new root, every KEK rewrapped, new shares (two-person rule)',
      options: { ...ROOT_OPTIONS, reason: opt.string('R', 'why: files the rotation as an approval request (exit 3); after approval re-run with --approval ID') },
      run: (c) => rootRun(c, 'rotate-root'),
    }),
    command({
      words: 'keys transcript',
      channel: 'keys:transcript',
      args: { id: arg.one('ID', 'a completed ceremony') },
      options: { out: opt.string('FILE', 'write it to FILE (for `keys verify-transcript`)') },
      async run(c) {
        const r = await c.call('keys:transcript', { ceremony: c.args.id });
        if (!r.ok) return c.fail(r);
        if (c.opts.out) {
          fs.writeFileSync(c.opts.out, r.value.text, { mode: 0o644 });
          c.out(`Wrote the transcript of ${c.args.id} to ${c.opts.out}\n`, { file: c.opts.out });
        } else c.out(r.value.text.endsWith('\n') ? r.value.text : r.value.text + '\n', JSON.parse(r.value.text));
        return 0;
      },
    }),
    command({
      words: 'keys verify-transcript',
      channel: 'keys:verifyTranscript',
      args: { file: arg.one('FILE', 'a ceremony transcript (`keys transcript ID --out FILE`)') },
      options: { ca: opt.string('ROOT.pem', "the root CA certificate (`keys ca-certificate`): verify offline, with no data directory and no sign-in") },
      summary: "Verify a ceremony transcript's signature and its signer's chain to the root CA",
      failsWhen: 'the transcript is not verified (each problem is listed)',
      needs: (o) => (o.ca ? 'nothing' : 'session'),
      async run(c) {
        const text = readTextFile(c.args.file, FILE_LIMITS.transcript);
        let v;
        if (c.opts.ca) v = transcriptReport(await verifyTranscript(text, readTextFile(c.opts.ca, FILE_LIMITS.pem)));
        else {
          const r = await c.call('keys:verifyTranscript', { text });
          if (!r.ok) return c.fail(r);
          v = r.value;
        }
        c.out(
          v.ok ? `OK: ${v.kind} ceremony, nonce ${v.nonce}, signed by ${clean(v.signer?.subject ?? '', 200)} (${v.signer?.fingerprint})\n` : `NOT VERIFIED:\n${v.problems.map((p) => `  - ${clean(p, 500)}\n`).join('')}`,
          v,
        );
        return v.ok ? 0 : 1;
      },
    }),
    command({
      words: 'keys ca-certificate',
      channel: 'keys:caCertificate',
      options: { out: opt.string('FILE', 'write the PEM to FILE') },
      async run(c) {
        const r = await c.call('keys:caCertificate', {});
        if (!r.ok) return c.fail(r);
        if (!r.value.pem) {
          c.out('No root CA yet: it is created by the genesis ceremony.\n', r.value);
          return 1;
        }
        if (c.opts.out) {
          fs.writeFileSync(c.opts.out, r.value.pem, { mode: 0o644 });
          c.out(`Wrote the root CA certificate (${r.value.fingerprint}) to ${c.opts.out}\n`, { file: c.opts.out, fingerprint: r.value.fingerprint });
        } else c.out(r.value.pem, r.value);
        return 0;
      },
    }),
    call({
      words: 'keys set-min-version',
      channel: 'keys:setMinDecryptionVersion',
      options: {
        domain: opt.string('D', 'models, datasets, host-secrets or console', { required: true, schema: KeyDomain }),
        version: opt.int('N', 'the lowest KEK version that may still decrypt', { required: true }),
      },
      notes: ['refused while a data key is still wrapped by an older version (rotate first) or a host pending in a models re-key still needs one'],
      input: (c) => ({ domain: KeyDomain.parse(c.opts.domain), version: c.opts.version! }),
      human: (v) => `The ${v.domain} KEK decrypts from version ${v.minDecryptionVersion} on; older versions are retired.\n`,
    }),
    call({
      words: 'keys models-status',
      channel: 'keys:modelsStatus',
      args: { host: arg.one('HOST', 'an enrolled host') },
      input: (c) => ({ host: c.args.host }),
      human: modelsText,
    }),
    command({
      words: 'keys protect-models',
      channel: 'keys:protectModels',
      alsoCalls: ['keys:begin', 'keys:acknowledge', 'keys:addShare', 'keys:cancel', 'session:status'],
      summary: "Encrypt a host's empty models directory (fscrypt) under a new models data key, unsealing first with the shares given",
      args: { host: arg.one('HOST', 'an enrolled host') },
      options: { share: SHARES },
      notes: ['a directory that already holds unencrypted files is refused: move them away, protect, then copy them in'],
      run: (c) =>
        drive(c, (log) =>
          withShares(c, c.opts.share, log, async () => {
            const v = await must(c.call('keys:protectModels', { host: c.args.host }));
            return { human: `Protected: ${modelsText(v)}`, value: v };
          }),
        ),
    }),
    command({
      words: 'keys unlock-models',
      channel: 'keys:unlockModels',
      alsoCalls: ['keys:begin', 'keys:acknowledge', 'keys:addShare', 'keys:cancel', 'session:status'],
      summary: 'Deliver the models key again to each host whose models directory is locked (after a reboot), unsealing first with the shares given',
      args: { hosts: arg.rest('HOST', 'host names, label:L, or all (the default: every host Airlock holds a models key for)') },
      options: { share: SHARES },
      failsWhen: 'a host could not be unlocked (each is listed)',
      async run(c) {
        let ok = true;
        const code = await drive(c, (log) =>
          withShares(c, c.opts.share, log, async () => {
            const hosts = c.args.hosts.flatMap((h) => h.split(',')).filter(Boolean);
            const r = await must(c.call('keys:unlockModels', { hosts: hosts.length ? hosts : ['all'] }));
            ok = r.every((x) => x.outcome === 'unlocked' || x.outcome === 'already');
            const lines = r.map((x) => `${x.host}\t${x.outcome}\t${x.state ?? '?'}${x.message ? `\t${x.code}: ${clean(x.message, 300)}` : ''}\n`).join('');
            return { human: lines, value: r };
          }),
        );
        return code === 0 && !ok ? 1 : code;
      },
    }),
    call({
      words: 'keys certificates',
      channel: 'keys:certificates',
      options: { host: opt.string('NAME', 'only the certificates of this host', { schema: HostName }), 'include-revoked': opt.flag('also list revoked certificates (history)') },
      input: (c) => ({ ...(c.opts.host !== undefined ? { host: c.opts.host } : {}), ...(c.opts['include-revoked'] ? { includeRevoked: true } : {}) }),
      human: (v) =>
        v.certificates.map(certLine).join('') +
        v.crlPending.map((p) => `CRL pending for ${p.host}: ${clean(p.message, 200)}\n`).join('') +
        (v.schedule.blocked === 'sealed' ? `Renewal due for ${v.schedule.due.length} certificate(s), waiting: the key hierarchy is sealed.\n` : '') +
        (v.schedule.blocked === 'no-session' ? `Renewal due for ${v.schedule.due.length} certificate(s), waiting for an administrator or officer to use the CA (or run \`keys renew-certs\`).\n` : ''),
    }),
    command({
      words: 'keys issue-host-cert',
      channel: 'keys:issueHostCertificate',
      alsoCalls: UNSEAL_CALLS,
      summary: 'Issue a host TLS certificate (unsealing with the shares given): the key is made on the host and never leaves it',
      args: { host: arg.one('HOST', 'an enrolled host', { schema: HostName }) },
      options: { share: SHARES },
      run: (c) =>
        drive(c, async (log) => {
          await unsealWith(c, c.opts.share, log, await whoAmI(c));
          const v = await must(c.call('keys:issueHostCertificate', { host: c.args.host }));
          return { human: `Issued and installed on ${c.args.host}: ${certLine(v)}`, value: v };
        }),
    }),
    command({
      words: 'keys revoke-cert',
      channel: 'keys:revokeCertificate',
      alsoCalls: UNSEAL_CALLS,
      summary: "Revoke a certificate (unsealing with the shares given) and publish its issuer's new CRL to the hosts",
      failsWhen: 'the CRL could not be sent to every host (those are pending; `keys renew-certs` retries them)',
      args: { serial: arg.one('SERIAL', 'the certificate serial (`keys certificates`)', { schema: CertSerial }) },
      options: { reason: opt.string('R', `why: ${RevocationReason.options.join(', ')}`, { required: true, schema: RevocationReason }), share: SHARES },
      async run(c) {
        let pending = 0;
        const code = await drive(c, async (log) => {
          await unsealWith(c, c.opts.share, log, await whoAmI(c));
          const v = await must(c.call('keys:revokeCertificate', { serial: CertSerial.parse(c.args.serial), reason: RevocationReason.parse(c.opts.reason) }));
          pending = v.crl.pending.length;
          return { human: `Revoked ${v.certificate.serial} (${v.certificate.revokeReason}).\n${crlText(v.crl)}`, value: v };
        });
        return code === 0 && pending > 0 ? 1 : code;
      },
    }),
    command({
      words: 'keys renew-certs',
      channel: 'keys:renewCertificates',
      alsoCalls: UNSEAL_CALLS,
      summary: 'Renew every host certificate within the window as a journaled renewal (unsealing with the shares given), resuming unfinished ones first; old ones revoked as superseded; pending CRLs sent',
      failsWhen: 'a certificate could not be renewed or a CRL is still pending',
      options: { 'window-days': opt.int('N', 'renew what ends within N days (default 30)'), share: SHARES },
      async run(c) {
        let bad = false;
        const code = await drive(c, async (log) => {
          await unsealWith(c, c.opts.share, log, await whoAmI(c));
          const w = c.opts['window-days'];
          const v = await must(c.call('keys:renewCertificates', w !== undefined ? { windowDays: w } : {}));
          bad = v.failed.length > 0 || v.crls.some((x) => x.pending.length > 0);
          const lines =
            v.renewed.map((r) => `Renewed ${r.host ?? '?'}: ${r.oldSerial} → ${r.newSerial}\n`).join('') +
            v.failed.map((f) => `PENDING ${f.host ?? '?'} (keeps ${f.serial}): ${clean(f.message, 300)}\n`).join('') +
            v.crls.map(crlText).join('') +
            v.renewals.filter((x) => x.pendingHosts.length).map((x) => `Renewal ${x.id} is pending on ${x.pendingHosts.join(', ')}: \`keys resume-cert-renewal ${x.id}\` (or the next \`keys renew-certs\`) once they are back\n`).join('');
          return { human: lines || 'Nothing was due.\n', value: v };
        });
        return code === 0 && bad ? 1 : code;
      },
    }),
    call({
      words: 'keys cert-renewals',
      channel: 'keys:certRenewals',
      options: { limit: opt.int('N', 'at most N, newest first (default 50)') },
      input: (c) => (c.opts.limit !== undefined ? { limit: c.opts.limit } : {}),
      human: (v) => v.map(formatRenewal).join('\n') || 'No certificate renewals yet.\n',
    }),
    call({
      words: 'keys cert-renewal',
      channel: 'keys:certRenewal',
      args: { id: arg.one('ID', 'the renewal id (crn-…)') },
      input: (c) => ({ id: c.args.id }),
      human: formatRenewal,
    }),
    command({
      words: 'keys resume-cert-renewal',
      channel: 'keys:resumeCertRenewal',
      alsoCalls: UNSEAL_CALLS,
      summary: 'Resume a host certificate renewal (unsealing first with the shares given), each host from its first unfinished step',
      args: { id: arg.one('ID', 'the renewal id (crn-…)') },
      options: { share: SHARES },
      notes: ['after a crash, or once pending hosts are reachable; `keys renew-certs` also resumes every unfinished renewal'],
      failsWhen: 'a host is still pending',
      async run(c) {
        let done = false;
        const code = await drive(c, async (log) => {
          await unsealWith(c, c.opts.share, log, await whoAmI(c));
          const v = await must(c.call('keys:resumeCertRenewal', { id: c.args.id }));
          done = v.status === 'succeeded';
          return { human: formatRenewal(v), value: v };
        });
        return code === 0 && !done ? 1 : code;
      },
    }),
    command({
      words: 'keys crl',
      channel: 'keys:crl',
      options: { issuer: opt.string('SERIAL', 'the CA whose CRL (default: the issuing CA)', { schema: CertSerial }), out: opt.string('FILE', 'write the PEM to FILE') },
      failsWhen: 'the CA has published no CRL yet',
      async run(c) {
        const r = await c.call('keys:crl', c.opts.issuer !== undefined ? { issuer: CertSerial.parse(c.opts.issuer) } : {});
        if (!r.ok) return c.fail(r);
        if (!r.value.pem) {
          c.out(`CA ${r.value.issuerSerial} has published no CRL yet: the first host certificate or revocation publishes one.\n`, r.value);
          return 1;
        }
        if (c.opts.out) {
          fs.writeFileSync(c.opts.out, r.value.pem, { mode: 0o644 });
          c.out(`Wrote CRL ${r.value.crlNumber} of ${r.value.issuerSerial} to ${c.opts.out}\n`, { ...r.value, file: c.opts.out });
        } else c.out(r.value.pem, r.value);
        return 0;
      },
    }),
    call({
      words: 'keys rotate-ssh-identity',
      channel: 'keys:rotateSshIdentity',
      args: { hosts: arg.rest('HOST', 'every enrolled host (names, label:L), or all (the default)') },
      notes: ['each host: add the new key, log in with it alone, remove the old one; the old key leaves the vault once no host needs it', 'unreachable hosts stay pending (exit 1): `keys resume-ssh-rotation ID` once they are back'],
      failsWhen: 'a host is pending (the rotation is not finished)',
      input: (c) => ({ hosts: c.args.hosts.length ? c.args.hosts : ['all'] }),
      human: formatRotation,
      exit: rotationExit,
    }),
    call({
      words: 'keys rotate-own',
      channel: 'keys:rotateOwnKey',
      options: { purpose: opt.string('P', 'audit.signing, audit.hmac or attest.signing (the SSH identity: `keys rotate-ssh-identity`)', { required: true, schema: OwnKeyPurpose }) },
      notes: [
        'a new version becomes current and the old one is retired (its private part destroyed, its public part kept: what it signed still verifies)',
        'audit.signing: the handover is recorded in the audit trail and signed by the old key, so verifiers follow it from the key they trust',
      ],
      input: (c) => ({ purpose: c.opts.purpose as OwnKeyPurposeName }),
      human: formatOwnRotation,
    }),
    call({
      words: 'keys ssh-rotations',
      channel: 'keys:sshRotations',
      options: { limit: opt.int('N', 'at most N, newest first (default 50)') },
      input: (c) => (c.opts.limit !== undefined ? { limit: c.opts.limit } : {}),
      human: (v) => v.map(formatRotation).join('\n') || 'No SSH identity rotations yet.\n',
    }),
    call({
      words: 'keys ssh-rotation',
      channel: 'keys:sshRotation',
      args: { id: arg.one('ID', 'the rotation id (rot-…)') },
      input: (c) => ({ id: c.args.id }),
      human: formatRotation,
    }),
    call({
      words: 'keys resume-ssh-rotation',
      channel: 'keys:resumeSshRotation',
      args: { id: arg.one('ID', 'the rotation id (rot-…)') },
      notes: ['after a crash, or once pending hosts are reachable: each host starts at its first unfinished step'],
      failsWhen: 'a host is still pending',
      input: (c) => ({ id: c.args.id }),
      human: formatRotation,
      exit: rotationExit,
    }),
    call({
      words: 'keys host-secrets',
      channel: 'keys:hostSecrets',
      options: { host: opt.string('NAME', 'only the secrets of this host', { schema: HostName }) },
      notes: ['what is sealed under the host-secrets KEK (inference API keys): never the value'],
      input: (c) => (c.opts.host !== undefined ? { host: c.opts.host } : {}),
      human: (v) => v.map(hostSecretLine).join('') || 'No host secrets are sealed yet (provisioning an inference service with a key hierarchy makes them).\n',
    }),
    command({
      words: 'keys redeliver-host-secret',
      channel: 'keys:redeliverHostSecret',
      alsoCalls: ['keys:begin', 'keys:acknowledge', 'keys:addShare', 'keys:cancel', 'session:status'],
      summary: "Deliver a sealed host secret to its host again (its key file, 0600) and restart the service that reads it, unsealing first with the shares given",
      args: { host: arg.one('HOST', 'an enrolled host'), id: arg.one('ID', 'the secret id (inference-api-key/HOST/UNIT; see keys host-secrets)') },
      options: { share: SHARES },
      run: (c) =>
        drive(c, (log) =>
          withShares(c, c.opts.share, log, async () => {
            const v = await must(c.call('keys:redeliverHostSecret', { host: c.args.host, id: c.args.id }));
            const how = v.outcome === 'already' ? 'already there, nothing written' : `delivered${v.restarted ? `, ${v.unit} restarted` : ''}`;
            return { human: `${clean(v.id, 200)} → ${clean(v.host, 64)}:${clean(v.path, 200)}: ${how}\n`, value: v };
          }),
        ),
    }),
    command({
      words: 'keys rekey-models',
      channel: 'keys:rekeyModels',
      alsoCalls: UNSEAL_CALLS,
      summary: "Re-key hosts' models directories (unsealing first with the shares given): a new key per host, files re-encrypted and verified on the host, swapped in, the old key retired",
      args: { hosts: arg.rest('HOST', 'host names, label:L, or all (the default: every protected host)') },
      options: { share: SHARES, concurrency: opt.int('N', 'hosts re-keyed at once (default 4, at most 16)') },
      notes: ['a host unreachable or failing stays pending with its old key, its models readable (exit 1): `keys resume-models-rekey ID` once it is back'],
      failsWhen: 'a host is pending (the re-key is not finished)',
      async run(c) {
        let done = false;
        const code = await drive(c, (log) =>
          withShares(c, c.opts.share, log, async () => {
            const hosts = c.args.hosts.flatMap((h) => h.split(',')).filter(Boolean);
            const v = await must(c.call('keys:rekeyModels', { hosts: hosts.length ? hosts : ['all'], ...(c.opts.concurrency !== undefined ? { concurrency: c.opts.concurrency } : {}) }));
            done = v.status === 'succeeded';
            return { human: formatRekey(v), value: v };
          }),
        );
        return code === 0 && !done ? 1 : code;
      },
    }),
    call({
      words: 'keys models-rekey',
      channel: 'keys:modelsRekey',
      args: { id: arg.one('ID', 'the re-key id (mrk-…)') },
      input: (c) => ({ id: c.args.id }),
      human: formatRekey,
    }),
    command({
      words: 'keys resume-models-rekey',
      channel: 'keys:resumeModelsRekey',
      alsoCalls: UNSEAL_CALLS,
      summary: 'Resume a models re-key (unsealing first with the shares given), each host from its first unfinished step',
      args: { id: arg.one('ID', 'the re-key id (mrk-…)') },
      options: { share: SHARES },
      notes: ['after a crash, or once pending hosts are reachable'],
      failsWhen: 'a host is still pending',
      async run(c) {
        let done = false;
        const code = await drive(c, (log) =>
          withShares(c, c.opts.share, log, async () => {
            const v = await must(c.call('keys:resumeModelsRekey', { id: c.args.id }));
            done = v.status === 'succeeded';
            return { human: formatRekey(v), value: v };
          }),
        );
        return code === 0 && !done ? 1 : code;
      },
    }),
  ],
};

function hostSecretLine(v: HostSecret): string {
  return `${clean(v.host, 64)}\t${clean(v.unit, 64)}\t${clean(v.id, 200)}\tKEK v${v.kekVersion}\tcreated ${v.createdAt}\n`;
}

/** A models re-key as a person reads it: where it stands, then each host's keys and steps. Host messages are cleaned. */
function formatRekey(r: ModelsRekey): string {
  const head = `Models re-key ${r.id}: ${r.status} (${r.hosts.length} host(s), attempt ${r.attempts})\n`;
  const pending = r.pendingHosts.length ? `  pending: ${r.pendingHosts.join(', ')} — each keeps its old key until done; resume with \`keys resume-models-rekey ${r.id}\`\n` : '';
  const hosts = r.hosts
    .map(
      (h) =>
        `  ${h.host}\t${h.status}\t${h.oldKeyId ?? '?'} → ${h.newKeyId ?? '(not staged)'}\tunder the ${h.current} key${h.next ? `\tnext: ${h.next}` : ''}${h.message ? `\t${clean(h.message, 300)}` : ''}\n` +
        h.steps.map((s) => `    ${s.step}\t${s.status}${s.message ? `\t${clean(s.message, 300)}` : ''}\n`).join(''),
    )
    .join('');
  return head + pending + hosts;
}

function certLine(v: CertificateRow): string {
  const state = v.revokedAt ? `REVOKED ${v.revokeReason}` : v.renewalDue ? 'RENEWAL DUE' : 'ok';
  return `${v.serial}  ${v.profile.padEnd(14)} ${clean(v.subject, 80)}${v.host ? ` (${v.host})` : ''}  until ${v.notAfter} (${v.daysLeft} days)  ${state}\n`;
}

function crlText(x: { issuerSerial: string; crlNumber: number; published: string[]; pending: { host: string; message: string }[] }): string {
  return (
    `CRL ${x.crlNumber} of ${x.issuerSerial}: sent to ${x.published.join(', ') || 'no host'}\n` +
    x.pending.map((p) => `  PENDING ${p.host}: ${clean(p.message, 200)} (retried by \`keys renew-certs\` and the schedule)\n`).join('')
  );
}

/** A certificate renewal as a person reads it: where it stands, then each host's serials and steps. Host messages are cleaned. */
function formatRenewal(r: CertRenewal): string {
  const head = `Certificate renewal ${r.id}: ${r.status} (${r.hosts.length} host(s), window ${r.windowDays} days, attempt ${r.attempts})\n`;
  const pending = r.pendingHosts.length ? `  pending: ${r.pendingHosts.join(', ')} — each serves a matching pair meanwhile; resume with \`keys resume-cert-renewal ${r.id}\`\n` : '';
  const hosts = r.hosts
    .map(
      (h) =>
        `  ${h.host}\t${h.status}\t${h.oldSerial} → ${h.newSerial ?? '(not issued)'}\tserving the ${h.serving} pair${h.promoted ? ', new one current' : ''}${h.next ? `\tnext: ${h.next}` : ''}${h.message ? `\t${clean(h.message, 300)}` : ''}\n` +
        h.steps.map((s) => `    ${s.step}\t${s.status}${s.message ? `\t${clean(s.message, 300)}` : ''}\n`).join(''),
    )
    .join('');
  return head + pending + hosts;
}

/** Exit 0 only once the rotation is finished (promoted); a pending host is exit 1. */
function rotationExit(r: SshRotation): 0 | 1 {
  return r.status === 'succeeded' ? 0 : 1;
}

/** A rotation as a person reads it: where it stands, then each host's steps. Host messages are cleaned. */
function formatRotation(r: SshRotation): string {
  const head = `SSH identity rotation ${r.id}: ${r.status}${r.promoted ? ', new key current' : ''} (${r.oldFingerprint} → ${r.newFingerprint})\n`;
  const pending = r.pendingHosts.length ? `  pending: ${r.pendingHosts.join(', ')} — the old key stays in the vault until they are done; resume with \`keys resume-ssh-rotation ${r.id}\`\n` : '';
  const hosts = r.hosts
    .map((h) => `  ${h.host}\t${h.status}${h.next ? `\tnext: ${h.next}` : ''}${h.message ? `\t${clean(h.message, 300)}` : ''}\n${h.steps.map((s) => `    ${s.step}\t${s.status}${s.message ? `\t${clean(s.message, 300)}` : ''}\n`).join('')}`)
    .join('');
  return head + pending + hosts;
}

async function rootRun(c: C, kind: 'reshare' | 'rotate-root'): Promise<number> {
  const o = c.opts as C['opts'] & { threshold: number; reason?: string; approval?: string; officer: string[]; witness: string[]; shares: number };
  if (!o.approval && o.reason !== undefined) {
    // File the opening of the ceremony for a second person; nothing is unsealed yet.
    const p = participants(o, o.shares);
    const channel = kind === 'reshare' ? 'keys:beginReshare' : 'keys:beginRotateRoot';
    return c.guarded(channel, { officers: p.officers, witnesses: p.witnesses, threshold: o.threshold }, (v) => c.out(`Opened ${v.id}\n`, v));
  }
  return drive(c, (log) => rootCeremony(c, kind, log));
}
