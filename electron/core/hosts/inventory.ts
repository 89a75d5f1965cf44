import { Inventory } from '../../../shared/contract/hosts';
import type { Gpu } from '../../../shared/contract/hosts';
import { AirlockError } from '../../../shared/domain/errors';
import { sanitizeHostText } from '../ssh/sanitize';

export { sanitizeHostText };

/** Order of the fields in the nvidia-smi query; the parser depends on it. */
export const GPU_FIELDS = [
  'index',
  'name',
  'uuid',
  'driver_version',
  'memory.total',
  'memory.used',
  'utilization.gpu',
  'temperature.gpu',
  'power.draw',
  'ecc.mode.current',
  'persistence_mode',
  'clocks_event_reasons.active',
] as const;
const BASE_FIELDS = GPU_FIELDS.slice(0, -1).join(',');

/** Hard limit on nvidia-smi on the host: a wedged driver makes it hang, and the rest of the scan is still worth having. */
export const NVIDIA_SMI_TIMEOUT_S = 20;

/*
 * Read-only and POSIX sh only, with as few processes as it can: hostname, kernel and os-release are
 * read by the shell itself (from /proc/sys/kernel and the file; uname only where /proc is not
 * there), so a scan costs the host one shell and nvidia-smi. Every section is captured and printed between markers with its own
 * exit code, so one failing probe (no nvidia-smi, no os-release) never hides the others.
 * Driver releases before 535 name the last field clocks_throttle_reasons.active and reject the new
 * name (exit 2, `Field "…" is not a valid field to query.`); then the query is repeated with the
 * old name. `timeout` is used when present so a wedged driver costs seconds, not the whole scan.
 * The script holds no single quote, so it can be wrapped in one: the login shell of the remote
 * user (bash, zsh, fish, csh) only ever starts /bin/sh.
 */
const SCRIPT = `LC_ALL=C; export LC_ALL
s() { printf "@@AIRLOCK:BEGIN:%s@@\\n%s\\n@@AIRLOCK:END:%s:%s@@\\n" "$1" "$2" "$1" "$3"; }
printf "@@AIRLOCK:INVENTORY:1@@\\n"
if IFS= read -r o </proc/sys/kernel/hostname; then s hostname "$o" 0; else o=$(uname -n 2>&1); s hostname "$o" $?; fi
if IFS= read -r a </proc/sys/kernel/ostype && IFS= read -r b </proc/sys/kernel/osrelease; then s kernel "$a $b" 0; else o=$(uname -sr 2>&1); s kernel "$o" $?; fi
f=/etc/os-release; [ -r $f ] || f=/usr/lib/os-release
o=; r=1; if [ -r $f ]; then r=0; while IFS= read -r l || [ -n "$l" ]; do case $l in PRETTY_NAME=*) o=\${o:+$o
}\${l#PRETTY_NAME=} ;; esac; done <$f; else o="cannot read $f"; fi; s os "$o" $r
T=; if command -v timeout >/dev/null 2>&1; then T="timeout ${NVIDIA_SMI_TIMEOUT_S}"; fi
Q=${BASE_FIELDS}
o=$($T nvidia-smi --query-gpu=$Q,clocks_event_reasons.active --format=csv,noheader,nounits 2>&1); r=$?
if [ $r -ne 0 ]; then case $o in *"not a valid field"*)
  s gpu-fallback clocks_throttle_reasons.active 0
  o=$($T nvidia-smi --query-gpu=$Q,clocks_throttle_reasons.active --format=csv,noheader,nounits 2>&1); r=$? ;;
esac; fi
s gpu "$o" $r
printf "@@AIRLOCK:DONE@@\\n"`;

/** The inventory command: one read-only POSIX sh command, run over exec. */
export const INVENTORY_COMMAND = `/bin/sh -c '${SCRIPT}'`;

// Bounds on what we read from a host: generous for real output, small enough that garbage is cheap.
export const INVENTORY_MAX_BYTES = 1024 * 1024;
export const MAX_GPUS = 128;

interface Section {
  body: string;
  rc: number | null;
  /** False when the END marker never came: the output was cut off. */
  complete: boolean;
}

function sections(text: string): Map<string, Section> {
  const out = new Map<string, Section>();
  const begin = '@@AIRLOCK:BEGIN:';
  let pos = 0;
  while (out.size < 16) {
    const b = text.indexOf(begin, pos);
    if (b < 0) break;
    const nameEnd = text.indexOf('@@\n', b + begin.length);
    if (nameEnd < 0 || nameEnd - b > 64) {
      pos = b + begin.length;
      continue;
    }
    const name = text.slice(b + begin.length, nameEnd);
    const bodyStart = nameEnd + 3;
    const endMarker = `\n@@AIRLOCK:END:${name}:`;
    const e = text.indexOf(endMarker, bodyStart - 1);
    if (e < 0) {
      if (!out.has(name)) out.set(name, { body: text.slice(bodyStart), rc: null, complete: false });
      break;
    }
    const rcEnd = text.indexOf('@@', e + endMarker.length);
    const rcText = rcEnd < 0 ? '' : text.slice(e + endMarker.length, rcEnd);
    const rc = /^\d{1,3}$/.test(rcText) ? Number(rcText) : null;
    // e < bodyStart happens for an empty body: the END marker directly follows the BEGIN line.
    if (!out.has(name)) out.set(name, { body: e < bodyStart ? '' : text.slice(bodyStart, e), rc, complete: rc !== null });
    pos = rcEnd < 0 ? e + endMarker.length : rcEnd + 2;
  }
  return out;
}

function firstLine(s: string): string {
  const i = s.indexOf('\n');
  return i < 0 ? s : s.slice(0, i);
}

/** os-release values may be quoted shell words; read them without ever evaluating them. */
function unquoteOsRelease(v: string): string {
  const t = v.trim();
  if (t.length >= 2 && (t[0] === '"' || t[0] === "'") && t[t.length - 1] === t[0]) {
    const inner = t.slice(1, -1);
    return t[0] === '"' ? inner.replace(/\\(["\\$`])/g, '$1') : inner;
  }
  return t;
}

/** RFC 4180-ish split: nvidia-smi separates with ", " and may quote a field holding a comma. */
export function splitCsvLine(line: string): string[] {
  const fields: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') {
        cur += '"';
        i++;
      } else if (c === '"') quoted = false;
      else cur += c;
    } else if (c === '"' && cur.trim() === '') {
      cur = '';
      quoted = true;
    } else if (c === ',') {
      fields.push(cur.trim());
      cur = '';
    } else cur += c;
  }
  fields.push(cur.trim());
  return fields;
}

const NOT_A_VALUE = /^\[?\s*(n\/a|not supported|unknown error|unknown|insufficient permissions|gpu requires reset|gpu is lost|not available|err!?)\s*\]?$/i;

/** A number, with a unit suffix dropped (for output without `nounits`); anything else is null. */
export function parseGpuNumber(s: string): number | null {
  const t = s.trim();
  if (!t || NOT_A_VALUE.test(t)) return null;
  const m = /^([-+]?\d{1,15}(?:\.\d{1,15})?)\s*(?:MiB|MB|GiB|%|W|C|MHz)?$/.exec(t);
  if (!m) return null;
  const n = Number(m[1]);
  return Number.isFinite(n) ? n : null;
}

function gpuText(s: string, max: number): string | null {
  const t = sanitizeHostText(s, max);
  return !t || NOT_A_VALUE.test(t) ? null : t;
}

function parseGpuRow(line: string): (Gpu & { driver: string | null }) | null {
  const f = splitCsvLine(line);
  if (f.length !== GPU_FIELDS.length) return null;
  const idx = f[0]!.trim();
  if (!/^\d{1,4}$/.test(idx)) return null;
  const name = sanitizeHostText(f[1]!, 128);
  if (!name) return null;
  return {
    index: Number(idx),
    name,
    uuid: gpuText(f[2]!, 96),
    driver: gpuText(f[3]!, 64),
    memoryTotalMiB: parseGpuNumber(f[4]!),
    memoryUsedMiB: parseGpuNumber(f[5]!),
    utilizationPct: parseGpuNumber(f[6]!),
    temperatureC: parseGpuNumber(f[7]!),
    powerDrawW: parseGpuNumber(f[8]!),
    eccMode: gpuText(f[9]!, 64),
    persistenceMode: gpuText(f[10]!, 64),
    throttleReasons: gpuText(f[11]!, 64),
  };
}

function gpuFailure(rc: number, body: string): string {
  const msg = sanitizeHostText(firstLine(body.trim()), 200);
  switch (rc) {
    case 127:
      return 'nvidia-smi is not installed on this host (no NVIDIA driver?).';
    case 124:
      return `nvidia-smi did not answer within ${NVIDIA_SMI_TIMEOUT_S} s (driver hung?).`;
    case 9:
      return `nvidia-smi could not talk to the NVIDIA driver${msg ? `: ${msg}` : '.'}`;
    case 6:
      return 'nvidia-smi found no GPU on this host.';
    default:
      return `nvidia-smi failed (exit ${rc})${msg ? `: ${msg}` : '.'}`;
  }
}

function parseGpus(sec: Section | undefined): { gpus: Gpu[]; driverVersion: string | null; gpuError: string | null } {
  if (!sec) return { gpus: [], driverVersion: null, gpuError: 'The GPU query produced no output (the inventory was cut off or not understood).' };
  if (sec.complete && sec.rc !== 0) return { gpus: [], driverVersion: null, gpuError: gpuFailure(sec.rc ?? -1, sec.body) };

  let lines = sec.body.split('\n');
  // Without its END marker the last line may be a fragment of a row: do not trust it.
  if (!sec.complete) lines = lines.slice(0, -1);
  const gpus: Gpu[] = [];
  let driverVersion: string | null = null;
  let bad = 0;
  let firstBad = '';
  for (const raw of lines) {
    const line = raw.replace(/\r$/, '');
    if (!line.trim()) continue;
    if (gpus.length >= MAX_GPUS) {
      bad++;
      continue;
    }
    const row = parseGpuRow(line);
    if (!row || gpus.some((g) => g.index === row.index)) {
      if (!bad) firstBad = sanitizeHostText(line, 80);
      bad++;
      continue;
    }
    const { driver, ...gpu } = row;
    driverVersion ??= driver;
    gpus.push(gpu);
  }
  const problems: string[] = [];
  if (!sec.complete) problems.push('The GPU output was cut off (output truncated)');
  if (bad) problems.push(`${bad} line(s) of nvidia-smi output were not understood${firstBad ? ` (first: "${firstBad}")` : ''}`);
  return { gpus, driverVersion, gpuError: problems.length ? problems.join('; ') + '.' : null };
}

/**
 * Read the output of INVENTORY_COMMAND. Everything from the host is sanitised and bounded. A GPU
 * part that cannot be read becomes `gpuError`; output that is not an inventory at all is a
 * PARSE_ERROR. Never throws anything else.
 */
export function parseInventory(stdout: string, now: Date): Inventory {
  if (typeof stdout !== 'string') throw new AirlockError('PARSE_ERROR', 'The inventory output from the host was not text.');
  const text = (stdout.length > INVENTORY_MAX_BYTES ? stdout.slice(0, INVENTORY_MAX_BYTES) : stdout).replace(/\r\n/g, '\n');
  const secs = sections(text);
  const host = secs.get('hostname');
  const kernel = secs.get('kernel');
  if (!host || !kernel) {
    const hint = sanitizeHostText(firstLine(text.trim()), 120);
    throw new AirlockError(
      'PARSE_ERROR',
      `The inventory output from the host was not understood${hint ? ` (it began: "${hint}")` : ' (it was empty)'}.`,
    );
  }
  const ok = (s: Section | undefined) => !!s && s.complete && s.rc === 0;
  const osSec = secs.get('os');
  const os = ok(osSec) ? sanitizeHostText(unquoteOsRelease(firstLine(osSec!.body)), 200) : '';
  const gpu = parseGpus(secs.get('gpu'));
  if (typeof now?.getTime !== 'function' || Number.isNaN(now.getTime())) throw new AirlockError('INTERNAL', 'The clock gave an invalid date.');

  const inv = {
    scannedAt: now.toISOString(),
    hostname: (ok(host) && sanitizeHostText(firstLine(host.body), 253)) || 'unknown',
    os: os || 'unknown',
    kernel: (ok(kernel) && sanitizeHostText(firstLine(kernel.body), 200)) || 'unknown',
    driverVersion: gpu.driverVersion,
    gpus: gpu.gpus,
    gpuError: gpu.gpuError,
  };
  const parsed = Inventory.safeParse(inv);
  if (!parsed.success) throw new AirlockError('PARSE_ERROR', 'The inventory read from the host did not have the expected shape.');
  return parsed.data;
}
