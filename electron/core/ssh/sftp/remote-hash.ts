/**
 * SHA-256 on the host: of a whole file (`HASHER`), and streaming, while the part file is written
 * ({@link StreamingHash}).
 */
import { PassThrough } from 'node:stream';
import type { SshConnection } from '../connection/types';
import { shCommand as sh, shellQuote, shellQuoteScript as quoteLines } from '../quote';

/** Tell the host-side hasher about new bytes in steps of at least this much. */
export const HASH_STEP = 16 * 1024 * 1024;
/** Hashing a whole file on the host: allowed time beyond timeoutMs, per byte (20 MB/s). */
export const HASH_MS_PER_BYTE = 1 / 20_000;

/** The first SHA-256 digest at the start of a line of `sha256sum`/`openssl dgst -r` output. */
export function parseDigest(out: string): string | null {
  const m = /^([0-9a-fA-F]{64})(?:[ \t]|$)/m.exec(out);
  return m ? m[1]!.toLowerCase() : null;
}

/**
 * Shell snippet defining `h`, a SHA-256 of stdin or of file arguments: OpenSSL's when it works on
 * this host (it uses the CPU's SHA instructions; coreutils' sha256sum is often several times
 * slower), else sha256sum. Both print the digest first on the line.
 */
export const HASHER = `if command -v openssl >/dev/null 2>&1 && printf '' | openssl dgst -sha256 -r >/dev/null 2>&1; then h() { openssl dgst -sha256 -r "$@"; }; else h() { sha256sum -b "$@"; }; fi`;

/**
 * The streaming hasher in Python, where the host has it: it maps the file's pages (mmap) and hashes
 * them where they lie in the page cache, with no copy and no pipe in between (a `head | openssl`
 * pipeline costs about twice the CPU; read() into a buffer adds a copy of the whole file, about a
 * third of the hashing cost). Reads exactly the byte counts it is given, one per line; exits 5 if
 * the file is shorter (it checks before mapping; a file cut shorter while mapped kills it with
 * SIGBUS, which is the same failure). Opens the file at the first count, so it can be started
 * before the file exists. After each range it advises the kernel it is done with it
 * (POSIX_FADV_DONTNEED), which starts writing those dirty pages to disk now: the fsync at the end
 * then waits for the tail only, and tens of GB of weights do not sit dirty in the host's page
 * cache until then.
 */
const PY_HASHER = [
  'import hashlib, mmap, os, sys',
  'fd = None',
  'h = hashlib.sha256()',
  'gran = mmap.ALLOCATIONGRANULARITY',
  'pos = 0',
  'for line in sys.stdin.buffer:',
  '    n = int(line)',
  '    if fd is None:',
  '        fd = os.open(sys.argv[1], os.O_RDONLY)',
  '    start = pos',
  '    while n > 0:',
  '        k = min(n, 64 << 20)',
  '        if os.fstat(fd).st_size < pos + k:',
  '            sys.exit(5)',
  '        base = pos - pos % gran',
  '        m = mmap.mmap(fd, pos + k - base, mmap.MAP_SHARED, mmap.PROT_READ, offset=base)',
  '        with memoryview(m) as v, v[pos - base:] as w:',
  '            h.update(w)',
  '        m.close()',
  '        n -= k',
  '        pos += k',
  '    try:',
  '        os.posix_fadvise(fd, start, pos - start, os.POSIX_FADV_DONTNEED)',
  '    except Exception:',
  '        pass',
  'print(h.hexdigest())',
  'sys.stderr.write("airlock-fed\\n")',
].join('\n');

/**
 * A SHA-256 computed on the host while the part file is written: a command reading the file
 * through one descriptor (opened at the first count), as many bytes at a time as it is told on
 * stdin, so only bytes the host has acknowledged are read and the digest is ready as soon as the
 * last write is (python3's hashlib where it works, else `head` into openssl or sha256sum). Its
 * digest is only trusted when it matches; anything else falls back to hashing the finished file.
 */
export class StreamingHash {
  private readonly input = new PassThrough();
  private readonly abort = new AbortController();
  private announced = 0;
  readonly result: Promise<string | null>;

  constructor(conn: SshConnection, partPath: string) {
    const part = shellQuote(partPath);
    const script = [
      `if python3 -c 'import hashlib, mmap, os' >/dev/null 2>&1; then exec python3 -c ${quoteLines(PY_HASHER)} ${part}; fi`,
      HASHER,
      `o=`,
      `{ while IFS= read -r n; do case $n in ''|*[!0-9]*) exit 4 ;; esac; [ -n "$o" ] || { exec 3< ${part} || exit 3; o=1; }; head -c "$n" <&3 || exit 5; done; echo airlock-fed >&2; } | h`,
    ].join('\n');
    this.result = conn
      .exec(sh(script), { timeoutMs: 24 * 3600 * 1000, signal: this.abort.signal, stdin: this.input, maxOutputBytes: 4096 })
      .then((r) => (r.code === 0 && r.stderr.includes('airlock-fed') ? parseDigest(r.stdout) : null))
      .catch(() => null);
  }

  /** The hasher may read up to `bytes` from the start of the part file. */
  advance(bytes: number, force = false): void {
    const delta = bytes - this.announced;
    if (delta <= 0 || (!force && delta < HASH_STEP)) return;
    this.input.write(`${delta}\n`);
    this.announced = bytes;
  }

  /** No more bytes: the digest of everything announced, or null if the hasher did not make it in time. */
  async finish(bytes: number, waitMs: number): Promise<string | null> {
    this.advance(bytes, true);
    this.input.end();
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<null>((r) => (timer = setTimeout(() => r(null), waitMs)));
    const got = await Promise.race([this.result, late]);
    clearTimeout(timer);
    if (got === null) this.stop();
    return got;
  }

  stop(): void {
    this.input.end();
    this.abort.abort();
  }
}
