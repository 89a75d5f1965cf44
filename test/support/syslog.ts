import net from 'node:net';
import tls from 'node:tls';

export interface SyslogRecord {
  pri: number;
  version: number;
  timestamp: string;
  hostname: string;
  app: string;
  procid: string;
  msgid: string;
  sd: Record<string, string>;
  sdId: string;
  msg: string;
  raw: string;
}

const RFC5424 = /^<(\d{1,3})>(\d) (\S+) (\S+) (\S+) (\S+) (\S+) (-|\[(?:[^\]\\]|\\.)*\])(?: (.*))?$/s;

/** Parses one RFC 5424 message (the single SD-ELEMENT Airlock writes). */
export function parse5424(raw: string): SyslogRecord {
  const m = RFC5424.exec(raw);
  if (!m) throw new Error(`not RFC 5424: ${raw.slice(0, 120)}`);
  const sd: Record<string, string> = {};
  let sdId = '-';
  if (m[8] !== '-') {
    const inner = m[8]!.slice(1, -1);
    sdId = inner.slice(0, inner.indexOf(' '));
    for (const p of inner.matchAll(/ ([^= \]"]+)="((?:[^"\\]|\\.)*)"/g)) sd[p[1]!] = p[2]!.replace(/\\(["\\\]])/g, '$1');
  }
  let msg = m[9] ?? '';
  if (msg.startsWith('\uFEFF')) msg = msg.slice(1);
  return { pri: Number(m[1]), version: Number(m[2]), timestamp: m[3]!, hostname: m[4]!, app: m[5]!, procid: m[6]!, msgid: m[7]!, sd, sdId, msg, raw };
}

/**
 * A real syslog receiver for tests: TCP (or TLS) with RFC 6587 octet-counting framing.
 * `stop()` closes the listener and every connection, as a receiver going down would.
 */
export async function startReceiver(opts: { port?: number; tls?: { key: string; cert: string } } = {}) {
  const records: SyslogRecord[] = [];
  const errors: string[] = [];
  const sockets = new Set<net.Socket>();
  let connections = 0;
  const onSocket = (s: net.Socket) => {
    connections++;
    sockets.add(s);
    let buf = Buffer.alloc(0);
    s.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const sp = buf.indexOf(0x20);
        if (sp < 0) break;
        const lenText = buf.subarray(0, sp).toString('ascii');
        if (!/^[1-9]\d*$/.test(lenText)) {
          errors.push(`bad frame length ${JSON.stringify(lenText.slice(0, 20))}`);
          s.destroy();
          return;
        }
        const len = Number(lenText);
        if (buf.length < sp + 1 + len) break;
        const raw = buf.subarray(sp + 1, sp + 1 + len).toString('utf8');
        buf = buf.subarray(sp + 1 + len);
        try {
          records.push(parse5424(raw));
        } catch (e) {
          errors.push((e as Error).message);
        }
      }
    });
    s.on('end', () => s.end());
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
  };
  const server = opts.tls ? tls.createServer({ key: opts.tls.key, cert: opts.tls.cert }, onSocket) : net.createServer(onSocket);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    records,
    errors,
    get connections() {
      return connections;
    },
    seqs: () => records.map((r) => Number(r.sd.seq)),
    async stop() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

export async function waitFor(cond: () => boolean, timeoutMs = 15_000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
