/**
 * A hostile host for attack tests (issue 3, "host output is untrusted"): its `nvidia-smi`, its
 * hostname and its os-release carry terminal escape sequences, C1 controls, bidi overrides, NUL
 * bytes, very long strings and HTML. Airlock must neutralise all of it everywhere but the terminal
 * itself (xterm), and never let the HTML become markup.
 *
 * The payloads are exported so tests can check both that the host really emits them (the attack
 * is real) and that only their harmless visible text survives in Airlock.
 *
 * GPU fields hold no comma and no newline: the inventory reads nvidia-smi's CSV, and the point is
 * that these rows *parse*, so the hostile text reaches Airlock's inventory instead of being
 * dropped as an unreadable line. The warning line is the one meant not to parse: it reaches the
 * inventory's `gpuError` quoted as "the first line not understood".
 */
import type { EmulatedGpu, GpuProfile } from './profiles';

const ESC = '\x1b';
const BEL = '\x07';
const ST = `${ESC}\\`;

/** Building blocks, each one attack. */
export const HOSTILE_SEQUENCES = {
  csiColour: `${ESC}[31m`,
  csiReset: `${ESC}[0m`,
  csiClear: `${ESC}[2J${ESC}[H`,
  /** xterm: set the window/tab title. */
  oscTitle: `${ESC}]0;pwned${BEL}`,
  /** OSC 8 hyperlink: visible text that links somewhere else. */
  oscLinkOpen: `${ESC}]8;;https://evil.example/${ST}`,
  oscLinkClose: `${ESC}]8;;${ST}`,
  /** OSC 52: write "pwned" (base64) to the operator's clipboard. */
  oscClipboard: `${ESC}]52;c;cHduZWQ=${BEL}`,
  /** DCS request (XTGETTCAP), answered by some terminals straight into the shell's input. */
  dcs: `${ESC}P+q544e${ST}`,
  /** 8-bit CSI (C1, U+009B: xterm.js obeys it like ESC [) and 8-bit OSC … ST (U+009D … U+009C). */
  c1Csi: '\u009b2J',
  c1Sgr: '\u009b1m',
  c1Osc: '\u009d0;pwned\u009c',
  /** Right-to-left override, left-to-right isolate, pop: reorder what is displayed ("Trojan Source"). */
  bidiOverride: '\u202e',
  bidiIsolate: '\u2066',
  bidiPop: '\u2069',
  /** Zero-width space, BOM, invisible separator: two different names that look the same. */
  zeroWidth: '\u200b\ufeff\u2063',
  nul: '\u0000',
  carriageReturn: '\r',
  /** Markup that would run (or at least load) if it were ever rendered as HTML. */
  htmlImg: '<img src=x onerror="window.__pwned=1">',
  htmlScript: '<script>window.__pwned=1</script>',
  htmlBold: '<b>bold</b>',
} as const;

const S = HOSTILE_SEQUENCES;

/**
 * The text a reader should see once the sequences are gone (no HTML removed: it is text). Bidi
 * controls, zero-width characters and NUL are not dropped but shown as `\u{XXXX}` (issue 9 item
 * 10): dropped, `\u202eevil\u2069\0\rX` would read as a harmless "evilX".
 */
export const HOSTILE_VISIBLE = {
  // (the NUL never arrives: nvidia-smi's CSV reaches Airlock through a shell, which drops it)
  gpu0Name: `NVIDIA H100 ${S.htmlImg} \\u{202E}evil\\u{2069} X`,
  gpu0UuidPrefix: `GPU-${S.htmlScript}\\u{2066}`,
  gpu1NamePrefix: 'Tesla click WWWW',
  driverPrefix: `550.54.15${S.htmlBold}\\u{200B}\\u{FEFF}\\u{2063}`,
  osPrefix: `Debian GNU/Linux ${S.htmlScript} ${S.htmlImg} \\u{202E}12 (bookworm)`,
  hostnamePrefix: 'evil-host<img src=x onerror=alert(1)>\\u{202E}',
} as const;

/**
 * `uname -n` / `hostname` of a hostile host: any bytes the kernel takes (at most 64, no NUL, no
 * newline), written straight into the host's UTS namespace (the `hostname` tool would refuse them).
 * Its sequences change colour and the terminal's title but do not clear the screen: the shell
 * prompt shows the hostname, and the terminal on this host must stay usable.
 */
export const HOSTILE_HOSTNAME = `evil-host${S.csiColour}<img src=x onerror=alert(1)>${S.oscTitle}${S.c1Sgr}${S.bidiOverride}`;

/** os-release PRETTY_NAME of a hostile host (the lab quotes it as os-release requires). */
export const HOSTILE_OS_PRETTY_NAME =
  `Debian ${S.csiClear}${S.oscLinkOpen}GNU/Linux${S.oscLinkClose} ${S.htmlScript} ${S.htmlImg} ` +
  `${S.oscClipboard}${S.bidiOverride}12 (bookworm)${S.nul}`;

/** A warning nvidia-smi prints (to stderr) before answering: the line the inventory cannot read. */
export const HOSTILE_WARNING =
  `WARNING: infoROM is corrupted at gpu 0000:18:00.0 ${S.csiClear}${S.oscTitle}${S.htmlImg}` +
  `${S.oscClipboard}${S.c1Osc}${S.bidiOverride}${S.nul}`;

/** What nvidia-smi prints when the profile is switched to `failure: 'error'`. */
export const HOSTILE_ERROR_TEXT =
  `NVIDIA-SMI has failed ${S.csiClear}${S.oscTitle}${S.htmlScript}${S.htmlImg}${S.c1Csi}` +
  `${S.oscLinkOpen}because${S.oscLinkClose}${S.bidiOverride}${S.nul} of the driver`;

/** Long enough to need capping everywhere (a CSV line of ~70 KB). */
export const HOSTILE_LONG = 'W'.repeat(65536);

function gpu(index: number, name: string, uuid: string, bus: string): EmulatedGpu {
  return {
    index,
    name,
    uuid,
    serial: null,
    pciBusId: `00000000:${bus}:00.0`,
    vbiosVersion: '96.00.99.00.01',
    computeCap: '9.0',
    memoryTotalMiB: 81559,
    memoryReservedMiB: 574,
    memoryUsedMiB: index === 0 ? 1024 : 0,
    utilizationGpu: index === 0 ? 12 : 0,
    utilizationMemory: 0,
    temperatureGpu: 40 + index,
    temperatureMemory: null,
    powerDrawW: 80.5,
    powerLimitW: 700,
    powerDefaultLimitW: 700,
    powerMaxLimitW: 700,
    eccEnabled: true,
    persistenceMode: true,
    migMode: false,
    pstate: 'P0',
    fanSpeed: null,
    clocksSmMHz: 1980,
    clocksMemMHz: 2619,
    clocksMaxSmMHz: 1980,
    clocksMaxMemMHz: 2619,
    clockReasonsActive: 0x1,
    clockReasonsSupported: 0x1ff,
    pcieGen: 5,
    pcieWidth: 16,
    computeMode: 'Default',
  };
}

/** The `hostile` profile: two GPUs whose text fields are attacks, a warning line, a hostile system. */
export function hostileProfile(): GpuProfile {
  return {
    profile: 'hostile',
    failure: null,
    driverVersion: `550.54.15${S.oscLinkOpen}${S.htmlBold}${S.oscLinkClose}${S.c1Osc}${S.zeroWidth}`,
    cudaVersion: '12.4',
    nvmlVersion: '12.550.54.15',
    unsupportedFields: ['clocks_throttle_reasons.'],
    gpus: [
      gpu(
        0,
        `${S.csiColour}NVIDIA${S.csiReset} H100 ${S.htmlImg} ${S.oscTitle}${S.bidiOverride}evil${S.bidiPop}${S.nul}${S.carriageReturn}X`,
        `GPU-${S.csiClear}${S.htmlScript}${S.c1Csi}${S.dcs}${S.bidiIsolate}`,
        '18',
      ),
      gpu(1, `Tesla${S.oscClipboard} ${S.oscLinkOpen}click${S.oscLinkClose} ${HOSTILE_LONG}`, `GPU-${S.zeroWidth}${'u'.repeat(10000)}`, '2A'),
    ],
    processes: [{ gpuIndex: 0, pid: 6666, processName: `python3 ${S.oscTitle}${S.htmlImg}`, usedMemoryMiB: 1000 }],
    warnings: [HOSTILE_WARNING],
    errorText: HOSTILE_ERROR_TEXT,
    errorExitCode: 15,
    system: { hostname: HOSTILE_HOSTNAME, osPrettyName: HOSTILE_OS_PRETTY_NAME },
  };
}
