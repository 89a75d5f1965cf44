import { AirlockError } from '../../../shared/domain/errors';
import { shellQuote as q } from '../ssh/quote';
import { sanitizeHostText } from '../ssh/sanitize';

/**
 * The host side of a certificate renewal (keys/cert-renewal.ts; docs/keys-ca.md "Renewal as a
 * journaled state machine"): POSIX sh scripts run as root over SSH, each safe to run again whatever
 * an earlier run of it did before it was cut off, each printing one marker line that the console
 * checks strictly (host output is untrusted).
 *
 * The layout that keeps the key and the certificate a matching pair at every moment:
 *
 *   <dir>/pairs/<serial>/host.key, host.crt   one pair per certificate, never changed once complete
 *   <dir>/live      -> pairs/<serial>         the pair in service (a symlink, swapped by rename(2))
 *   <dir>/host.key  -> live/host.key          what readers open (symlinks, made once)
 *   <dir>/host.crt  -> live/host.crt
 *   <dir>/chain.pem, <dir>/crl.pem            issuing CA + root; the issuing CA's newest CRL
 *
 * A pair directory is complete before it can be pointed at (built under a temporary name, checked,
 * then renamed), and the switch from one pair to the next is ONE rename of the `live` symlink, so
 * there is no moment at which `live` names a key without its certificate. Two renames of two files
 * (the earlier layout) always leave a moment in which the key is the new one and the certificate the
 * old one, whatever their order. A reader that must never see a mismatch even across the switch
 * (it opens the key, the switch happens, it opens the certificate) resolves `live` once
 * (`realpath`) and reads both files from that directory: it is never modified, and the previous one
 * stays until the renewal's `retire` step.
 *
 * A host with the earlier layout (two regular files) is converted first, without a mismatch either:
 * its pair is copied into `pairs/<its serial>`, `live` points there, and each regular file is then
 * replaced (rename) by its symlink, which resolves to identical content.
 */

/** Where a host keeps its TLS files (docs/keys-ca.md). Tests give a temporary directory. */
export const DEFAULT_TLS_DIR = '/etc/airlock/tls';
export const MARKER = 'AIRLOCK-CERT';

/** Staged file names: the renewal's (`.next`, kept until `retire`) and an immediate issue's. */
export const RENEWAL_STAGE = { key: 'host.key.next', crt: 'host.crt.next', chain: 'chain.pem.next', crl: 'crl.pem.next' } as const;
export const ISSUE_STAGE = { key: 'host.key.airlock-new', crt: 'host.crt.airlock-new', chain: 'chain.pem.airlock-new', crl: 'crl.pem.airlock-new' } as const;
export type Stage = { key: string; crt: string; chain: string; crl: string };

/** A serial as the CA writes it (lowercase hex): the only thing besides fixed names that reaches a path. */
const SERIAL = /^[0-9a-f]{2,40}$/;
function serialOk(serial: string): string {
  if (!SERIAL.test(serial)) throw new Error(`not a certificate serial: ${JSON.stringify(serial.slice(0, 50))}`);
  return serial;
}

const prelude = (dir: string) => [
  'set -u',
  'umask 077',
  `D=${q(dir)}`,
  // The public key of a key file and of a certificate file, as PEM (empty when unreadable).
  'kpub() { openssl pkey -in "$1" -pubout 2>/dev/null; }',
  'cpub() { openssl x509 -in "$1" -noout -pubkey 2>/dev/null; }',
  'match() { a=$(kpub "$1"); [ -n "$a" ] && [ "$a" = "$(cpub "$2")" ]; }',
  'fail() { echo "' + MARKER + ' $1"; exit "$2"; }',
  // One script at a time in the TLS directory: a console killed mid-script leaves that script running
  // on the host (no terminal, so no hangup), and its resume must not interleave with it.
  'lock() { mkdir -p "$D" || fail io 3; if command -v flock >/dev/null 2>&1; then exec 9>>"$D/.airlock-lock" && flock -w 120 9 || fail busy 10; fi; }',
  // A CRL's issuer, and its number as a decimal (0 when unreadable).
  'crliss() { openssl crl -in "$1" -noout -issuer 2>/dev/null; }',
  'crlnum() { n=$(openssl crl -in "$1" -noout -crlnumber 2>/dev/null | sed "s/^crlNumber=//; s/^0x//"); case "$n" in ""|*[!0-9A-Fa-f]*) echo 0 ;; *) echo $((0x$n)) ;; esac; }',
];

/**
 * keygen: a new P-256 key at `<dir>/host.key.next` (0600), beside the current one, made by the
 * host's own openssl; the private key never leaves the host. Already there (an earlier run was cut
 * off after making it) and a P-256 key other than the current one: kept.
 */
export function keygenScript(dir = DEFAULT_TLS_DIR): string {
  return [
    ...prelude(dir),
    'lock',
    'chmod 0755 "$D" || fail io 3',
    `N="$D/${RENEWAL_STAGE.key}"`,
    'if [ -f "$N" ] && openssl pkey -in "$N" -noout -text 2>/dev/null | grep -q "NIST CURVE: P-256"; then',
    '  if [ ! -e "$D/host.key" ] || [ "$(kpub "$N")" != "$(kpub "$D/host.key")" ]; then echo "' + MARKER + ' kept"; exit 0; fi',
    'fi',
    'rm -f "$N.tmp"',
    'openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$N.tmp" 2>/dev/null || { rm -f "$N.tmp"; fail genpkey 4; }',
    'chmod 0600 "$N.tmp" || fail io 3',
    'sync 2>/dev/null',
    'mv -f "$N.tmp" "$N" || fail io 3',
    `echo "${MARKER} made"`,
  ].join('\n');
}

/** csr: a certificate request of the staged key (the console takes only its public key, checked). */
export function csrScript(dir = DEFAULT_TLS_DIR): string {
  return [...prelude(dir), `N="$D/${RENEWAL_STAGE.key}"`, '[ -f "$N" ] || fail no-key 5', `exec openssl req -new -key "$N" -subj ${q('/CN=airlock-host')} -outform PEM`].join('\n');
}

/**
 * install: builds `pairs/<serial>` from the staged key and certificate (checked to match, and the
 * certificate to chain to the staged CA files), moves the chain and CRL into place, converts the
 * earlier layout if need be, then switches `live` to the new pair with one rename. Already built:
 * not built again; already live: nothing switched. `removeStaged` (an immediate issue) deletes the
 * staged files once the pair is live, and every pair directory but the new and the previous one; a
 * renewal keeps them until `retire`.
 */
export function installScript(serial: string, opts: { dir?: string; stage?: Stage; removeStaged?: boolean } = {}): string {
  const s = serialOk(serial);
  const st = opts.stage ?? RENEWAL_STAGE;
  return [
    ...prelude(opts.dir ?? DEFAULT_TLS_DIR),
    `S=${q(s)}`,
    'P="$D/pairs/$S"',
    `K="$D/${st.key}"; C="$D/${st.crt}"; CH="$D/${st.chain}"; CR="$D/${st.crl}"`,
    'lock',
    'mkdir -p "$D/pairs" || fail io 3',
    'chmod 0700 "$D/pairs" || fail io 3',
    // 1. The pair directory, complete or not at all.
    'if ! { [ -f "$P/host.key" ] && [ -f "$P/host.crt" ] && match "$P/host.key" "$P/host.crt"; }; then',
    '  [ "$(readlink "$D/live" 2>/dev/null)" = "pairs/$S" ] && fail mismatch 6',
    '  [ -f "$K" ] || fail no-key 5',
    '  [ -f "$C" ] || fail no-cert 5',
    '  match "$K" "$C" || fail mismatch 6',
    '  rm -rf "$P.tmp" && mkdir "$P.tmp" || fail io 3',
    '  cp "$K" "$P.tmp/host.key" && chmod 0600 "$P.tmp/host.key" || fail io 3',
    '  cp "$C" "$P.tmp/host.crt" && chmod 0644 "$P.tmp/host.crt" || fail io 3',
    '  chmod 0755 "$P.tmp" || fail io 3',
    '  sync 2>/dev/null',
    '  rm -rf "$P" && mv -T "$P.tmp" "$P" || fail io 3',
    'fi',
    // 2. It chains to the CA files it will be served with; then they go into place (each one rename).
    'if [ -f "$CH" ]; then',
    '  openssl verify -CAfile "$CH" "$P/host.crt" >/dev/null 2>&1 || fail chain 7',
    '  chmod 0644 "$CH" && mv -f "$CH" "$D/chain.pem" || fail io 3',
    'fi',
    'openssl verify -CAfile "$D/chain.pem" "$P/host.crt" >/dev/null 2>&1 || fail chain 7',
    // The staged CRL replaces the installed one unless that is a newer CRL of the same issuer (one sent meanwhile by another host's renewal).
    'if [ -f "$CR" ]; then',
    '  if [ -f "$D/crl.pem" ] && [ "$(crliss "$CR")" = "$(crliss "$D/crl.pem")" ] && [ "$(crlnum "$D/crl.pem")" -gt "$(crlnum "$CR")" ]; then rm -f "$CR";',
    '  else chmod 0644 "$CR" && mv -f "$CR" "$D/crl.pem" || fail io 3; fi',
    'fi',
    // 3. The earlier layout (regular files), or none: `live` first, then the symlinks, which resolve to identical content.
    'if [ ! -L "$D/host.key" ] || [ ! -L "$D/host.crt" ] || [ ! -L "$D/live" ]; then',
    '  if [ -f "$D/host.key" ] && [ ! -L "$D/host.key" ] && [ -f "$D/host.crt" ] && [ ! -L "$D/host.crt" ] && match "$D/host.key" "$D/host.crt"; then',
    '    O=$(openssl x509 -in "$D/host.crt" -noout -serial 2>/dev/null | sed "s/^serial=//" | tr "A-F" "a-f")',
    '    case "$O" in ""|*[!0-9a-f]*) fail io 3 ;; esac',
    '    if [ "$O" != "$S" ]; then',
    '      rm -rf "$D/pairs/$O.tmp" && mkdir "$D/pairs/$O.tmp" || fail io 3',
    '      cp -p "$D/host.key" "$D/pairs/$O.tmp/host.key" && cp -p "$D/host.crt" "$D/pairs/$O.tmp/host.crt" && chmod 0755 "$D/pairs/$O.tmp" || fail io 3',
    '      rm -rf "$D/pairs/$O" && mv -T "$D/pairs/$O.tmp" "$D/pairs/$O" || fail io 3',
    '    fi',
    '    ln -sfn "pairs/$O" "$D/live.tmp" && mv -T "$D/live.tmp" "$D/live" || fail io 3',
    '  elif [ ! -L "$D/live" ]; then',
    '    ln -sfn "pairs/$S" "$D/live.tmp" && mv -T "$D/live.tmp" "$D/live" || fail io 3',
    '  fi',
    '  for f in host.key host.crt; do',
    '    if [ ! -L "$D/$f" ]; then ln -sfn "live/$f" "$D/$f.tmp" && mv -T "$D/$f.tmp" "$D/$f" || fail io 3; fi',
    '  done',
    'fi',
    // 4. The switch: one rename.
    'PREV=$(readlink "$D/live" 2>/dev/null); PREV=${PREV#pairs/}',
    'if [ "$(readlink "$D/live")" != "pairs/$S" ]; then',
    '  ln -sfn "pairs/$S" "$D/live.tmp" && mv -T "$D/live.tmp" "$D/live" || fail io 3',
    '  sync 2>/dev/null',
    'fi',
    // An immediate issue has no retire step: its staged files go now, and every pair but the new and the previous one.
    ...(opts.removeStaged
      ? ['rm -f "$K" "$C" "$CH" "$CR"', 'for p in "$D"/pairs/*; do [ -e "$p" ] || continue; b=$(basename "$p"); [ "$b" = "$S" ] || [ "$b" = "$PREV" ] || rm -rf "$p"; done']
      : []),
    `echo "${MARKER} installed"`,
  ].join('\n');
}

/**
 * verify: what a TLS server reading `host.key` and `host.crt` gets — both from one pair directory,
 * the key matching the certificate, the certificate chaining to `chain.pem` (with `crl.pem`:
 * `-crl_check`) — and the serial served.
 */
export function verifyScript(dir = DEFAULT_TLS_DIR): string {
  return [
    ...prelude(dir),
    'kd=$(dirname "$(realpath "$D/host.key" 2>/dev/null)"); cd=$(dirname "$(realpath "$D/host.crt" 2>/dev/null)")',
    '[ -n "$kd" ] && [ "$kd" = "$cd" ] || fail split 8',
    'match "$D/host.key" "$D/host.crt" || fail mismatch 6',
    't=$(mktemp) || fail io 3',
    'cat "$D/chain.pem" "$D/crl.pem" > "$t" 2>/dev/null || { rm -f "$t"; fail chain 7; }',
    'if ! openssl verify -crl_check -CAfile "$t" "$D/host.crt" >/dev/null 2>&1; then rm -f "$t"; fail chain 7; fi',
    'rm -f "$t"',
    'O=$(openssl x509 -in "$D/host.crt" -noout -serial 2>/dev/null | sed "s/^serial=//" | tr "A-F" "a-f")',
    `echo "${MARKER} verified $O"`,
  ].join('\n');
}

/**
 * retire (host part): the staged files and every pair directory but the live one are deleted (the
 * old key with them). Never the live pair; refused unless the live pair is `serial`'s.
 */
export function retireScript(serial: string, dir = DEFAULT_TLS_DIR): string {
  const s = serialOk(serial);
  return [
    ...prelude(dir),
    `S=${q(s)}`,
    'lock',
    '[ "$(readlink "$D/live" 2>/dev/null)" = "pairs/$S" ] || fail not-live 9',
    `rm -f "$D/${RENEWAL_STAGE.key}" "$D/${RENEWAL_STAGE.crt}" "$D/${RENEWAL_STAGE.chain}" "$D/${RENEWAL_STAGE.crl}" "$D/${RENEWAL_STAGE.key}.tmp" "$D/live.tmp" "$D/host.key.tmp" "$D/host.crt.tmp"`,
    'for p in "$D"/pairs/* "$D"/pairs/.[!.]*; do',
    '  [ -e "$p" ] || [ -L "$p" ] || continue',
    '  [ "$(basename "$p")" = "$S" ] && continue',
    '  rm -rf "$p" || fail io 3',
    'done',
    `echo "${MARKER} retired"`,
  ].join('\n');
}

const WORDS: Record<string, string> = {
  made: 'a new P-256 key was made on the host',
  kept: 'the new key made earlier is on the host',
  installed: 'the new pair is live',
  retired: 'the old pair and the staged files are deleted from the host',
};
const REFUSALS: Record<string, string> = {
  io: 'a file operation in the TLS directory failed on the host.',
  genpkey: 'the host’s openssl could not make a P-256 key.',
  'no-key': 'the new key is not on the host any more (was the TLS directory changed by hand?).',
  'no-cert': 'the staged certificate is not on the host.',
  mismatch: 'the key and the certificate do not match.',
  chain: 'the certificate does not verify against the CA files on the host (openssl verify).',
  split: 'host.key and host.crt are not read from the same pair directory.',
  'not-live': 'the new pair is not the live one; nothing was deleted.',
  busy: 'another Airlock script has held the TLS directory’s lock for two minutes; nothing was changed.',
};

/** A host's script refused (CONFLICT) or answered what it never prints (PARSE_ERROR). */
export class HostRefused extends AirlockError {}

/**
 * The one marker line a script printed, checked strictly. `verified` carries the serial served
 * (lowercase hex); the others a fixed word. Anything else is a refusal with a sanitized reason.
 */
export function parseMarker(r: { code: number | null; stdout: string; stderr: string; truncated?: boolean }, allowed: readonly string[]): { word: string; message: string; serial?: string } {
  const out = r.stdout.trim();
  const m = r.truncated ? null : /^AIRLOCK-CERT ([a-z-]+)(?: ([0-9a-f]{2,40}))?$/.exec(out);
  const word = m?.[1];
  if (r.code === 0 && word && allowed.includes(word)) {
    if (word === 'verified') {
      if (!m![2]) throw new HostRefused('PARSE_ERROR', 'The host did not say which certificate it serves.');
      return { word, message: 'the served key matches the certificate, which chains to the CA (openssl verify -crl_check)', serial: m![2] };
    }
    if (!m![2]) return { word, message: WORDS[word] ?? word };
  }
  if (word && Object.hasOwn(REFUSALS, word)) throw new HostRefused('CONFLICT', `The host refused: ${REFUSALS[word]}`);
  const err = sanitizeHostText(r.stderr, 300);
  throw new HostRefused('PARSE_ERROR', `The host's answer was not understood (exit ${r.code ?? 'none'})${err ? `: ${err}` : ''}.`);
}
