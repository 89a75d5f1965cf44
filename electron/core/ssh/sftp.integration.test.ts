/**
 * uploadFile and SftpSession against a real lab host (OpenSSH sshd + sftp-server in its own
 * namespaces). Nothing is mocked: what lands on the host is checked on the host, through the lab's
 * runOnHost, or by looking at the host's private filesystem from outside (LabHost.dir/fs).
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { AirlockError } from '../../../shared/domain/errors';
import { authorizeKey, cutLink, labDown, labUp, restoreLink, runOnHost, throttleLink, type Lab, type LabHost } from '../../../test/lab/lab';
import { connect } from './connection/connect';
import { SFTP_OPEN, type SshConnection } from './connection/types';
import { generateIdentity } from '../identity/ssh-key';
import { shellQuote } from './quote';
import { uploadFile, type UploadProgress } from './sftp/upload';
import { PART_SUFFIX, SIDECAR_SUFFIX } from './sftp/upload-state';
import { directWrites } from './sftp/fast-path';
import { probeFastPath, rekey, SSH2_VERSION } from './ssh2-internals';
import { rejection } from '../../../test/support/errors';

const LAB_ID = 'ssh-xfer';
// ssh2's internal classes, to watch which of its paths the upload's data takes.
const require = createRequire(import.meta.url);
const { SFTP } = require('ssh2/lib/protocol/SFTP.js') as { SFTP: { prototype: { write(...args: unknown[]): void } } };
const Protocol = require('ssh2/lib/protocol/Protocol.js') as { prototype: { channelData(...args: unknown[]): void } };
const T = 20_000;
const MiB = 1024 * 1024;

let lab: Lab;
let host: LabHost;
const identity = generateIdentity('airlock-sftp-test');
const open: SshConnection[] = [];
const dir = mkdtempSync(join(tmpdir(), 'airlock-sftp-test-'));

interface LocalFile {
  path: string;
  size: number;
  sha256: string;
}

function localFile(name: string, size: number): LocalFile {
  const data = randomBytes(size);
  const path = join(dir, name);
  writeFileSync(path, data);
  return { path, size, sha256: createHash('sha256').update(data).digest('hex') };
}

/** A path on the host as seen from this machine: the host's private directories live under its state dir. */
function onHostFs(hostPath: string): string {
  const m = /^\/(srv|tmp|root|opt)(\/.*)?$/.exec(hostPath);
  if (!m) throw new Error(`not a private host directory: ${hostPath}`);
  return join(host.dir, 'fs', m[1]!, m[2] ?? '');
}

async function sh(script: string): Promise<string> {
  const r = await runOnHost(lab, host.name, ['/bin/sh', '-c', script]);
  if (r.code !== 0) throw new Error(`on host: ${script}: exit ${r.code}: ${r.stderr}`);
  return r.stdout;
}

async function hostSha(path: string): Promise<string> {
  // The real one: some tests put a logging sha256sum first on the host's PATH.
  return (await sh(`/usr/bin/sha256sum < ${shellQuote(path)}`)).split(' ')[0]!;
}

/** Caps the host's link (netns labs; a loopback lab keeps its speed) until restoreLink. */
async function slowDown(): Promise<void> {
  if (lab.mode === 'netns') await throttleLink(lab, host.name, { mbit: 400 });
}

async function conn(keepaliveMs?: number, opts: { compression?: boolean } = {}): Promise<SshConnection> {
  const c = await connect(
    { address: host.address, port: host.port, user: host.user, fingerprint: host.fingerprint, hostName: host.name },
    { privateKey: identity.privateKey },
    { timeoutMs: T, keepaliveMs, ...opts },
  );
  open.push(c);
  return c;
}

beforeAll(async () => {
  lab = await labUp({ id: LAB_ID, hosts: 1 });
  await authorizeKey(lab, identity.publicKey);
  host = lab.hosts[0]!;
});

afterAll(async () => {
  for (const c of open) c.close();
  await labDown({ id: LAB_ID });
  rmSync(dir, { recursive: true, force: true });
});

describe('uploadFile', () => {
  it('uploads, creates the parent directories, verifies on the host and renames atomically: nothing under the final name until it is whole', async () => {
    const f = localFile('a.bin', 48 * MiB);
    const c = await conn();
    const target = '/srv/models/llama/v1/a.bin';
    const seen: Array<{ final: boolean; part: boolean; sidecar: boolean }> = [];
    const progress: UploadProgress[] = [];
    const r = await uploadFile({
      connections: [c],
      localPath: f.path,
      remotePath: target,
      sha256: f.sha256,
      mode: 0o640,
      onProgress: (p) => {
        progress.push(p);
        // Called from inside the transfer: the look is synchronous, so the upload is frozen meanwhile.
        if (p.sent > 0 && p.sent < f.size) {
          seen.push({ final: existsSync(onHostFs(target)), part: existsSync(onHostFs(target + PART_SUFFIX)), sidecar: existsSync(onHostFs(target + SIDECAR_SUFFIX)) });
        }
      },
    });
    expect(r).toEqual({ bytesSent: f.size, resumedFrom: 0, sha256: f.sha256, remotePath: target, skipped: false });
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.every((s) => !s.final && s.part && s.sidecar)).toBe(true);
    expect(progress.every((p) => p.total === f.size && p.done === p.sent)).toBe(true);
    expect(progress.at(-1)).toEqual({ sent: f.size, done: f.size, total: f.size });
    for (let i = 1; i < progress.length; i++) expect(progress[i]!.sent).toBeGreaterThanOrEqual(progress[i - 1]!.sent);

    expect(await hostSha(target)).toBe(f.sha256);
    expect(await sh(`stat -c '%s %a' ${target}; ls -a /srv/models/llama/v1`)).toBe(`${f.size} 640\n.\n..\na.bin\n`);
  });

  it('skips a file that is already there with the right SHA-256: nothing is sent or rewritten', async () => {
    const f = localFile('b.bin', 3 * MiB);
    const c = await conn();
    const target = '/srv/b.bin';
    await uploadFile({ connections: [c], localPath: f.path, remotePath: target, sha256: f.sha256 });
    const before = await sh(`stat -c '%i %Y %s' ${target}`);
    const progress: UploadProgress[] = [];
    const r = await uploadFile({ connections: [c], localPath: f.path, remotePath: target, sha256: f.sha256, onProgress: (p) => progress.push(p) });
    expect(r).toEqual({ bytesSent: 0, resumedFrom: 0, sha256: f.sha256, remotePath: target, skipped: true });
    expect(progress).toEqual([{ sent: 0, done: f.size, total: f.size }]);
    // Same inode, same mtime: the file was not touched.
    expect(await sh(`stat -c '%i %Y %s' ${target}`)).toBe(before);

    // Same size, other content: not skipped, replaced.
    await sh(`head -c ${f.size} /dev/zero > ${target}`);
    const again = await uploadFile({ connections: [c], localPath: f.path, remotePath: target, sha256: f.sha256 });
    expect(again).toMatchObject({ skipped: false, bytesSent: f.size });
    expect(await hostSha(target)).toBe(f.sha256);
  });

  it('resumes after a cancel from the part file size (one stream): only the missing bytes are sent, and the result is right', async () => {
    const f = localFile('c.bin', 96 * MiB);
    const c = await conn();
    const target = '/srv/c.bin';
    const ac = new AbortController();
    const err = await rejection(
      uploadFile({ connections: [c], channelsPerConnection: 1, localPath: f.path, remotePath: target, sha256: f.sha256, signal: ac.signal, onProgress: (p) => p.sent > 0 && ac.abort() }),
    );
    expect(err.code).toBe('CANCELLED');
    expect(err.message).toContain(target);
    expect(existsSync(onHostFs(target))).toBe(false);
    const partSize = statSync(onHostFs(target + PART_SUFFIX)).size;
    expect(partSize).toBeGreaterThan(0);
    expect(partSize).toBeLessThan(f.size);

    const progress: UploadProgress[] = [];
    const r = await uploadFile({ connections: [c], channelsPerConnection: 1, localPath: f.path, remotePath: target, sha256: f.sha256, onProgress: (p) => progress.push(p) });
    expect(r.skipped).toBe(false);
    expect(r.resumedFrom).toBe(partSize);
    expect(r.bytesSent).toBe(f.size - partSize);
    expect(r.bytesSent).toBeLessThan(f.size);
    expect(progress[0]).toEqual({ sent: 0, done: partSize, total: f.size });
    expect(await hostSha(target)).toBe(f.sha256);
    expect(existsSync(onHostFs(target + PART_SUFFIX))).toBe(false);
    expect(existsSync(onHostFs(target + SIDECAR_SUFFIX))).toBe(false);
  });

  it('resumes after the link is cut mid-upload and restored', async () => {
    const f = localFile('d.bin', 128 * MiB);
    const target = '/srv/d.bin';
    // Short keepalives: a cut link is noticed in about 2 s.
    const c = await conn(500);
    let cutting: Promise<void> | null = null;
    // At a capped rate, so that the cut lands mid-upload however fast the machine is.
    await slowDown();
    const t0 = Date.now();
    const err = await rejection(
      uploadFile({
        connections: [c],
        channelsPerConnection: 1,
        localPath: f.path,
        remotePath: target,
        sha256: f.sha256,
        timeoutMs: 30_000,
        onProgress: (p) => {
          if (p.sent > 0 && !cutting) cutting = cutLink(lab, host.name);
        },
      }),
    );
    await cutting;
    expect(['HOST_UNREACHABLE', 'TIMEOUT']).toContain(err.code);
    expect(err.message).toMatch(/lost/);
    expect(Date.now() - t0).toBeLessThan(15_000);
    expect(c.closed).toBe(true);
    await restoreLink(lab, host.name);

    const partSize = statSync(onHostFs(target + PART_SUFFIX)).size;
    expect(partSize).toBeGreaterThan(0);
    expect(existsSync(onHostFs(target))).toBe(false);
    const c2 = await conn();
    const r = await uploadFile({ connections: [c2], channelsPerConnection: 1, localPath: f.path, remotePath: target, sha256: f.sha256 });
    expect(r.resumedFrom).toBeGreaterThan(0);
    expect(r.resumedFrom).toBeLessThanOrEqual(partSize);
    expect(r.bytesSent).toBe(f.size - r.resumedFrom);
    expect(await hostSha(target)).toBe(f.sha256);
  });

  it('a corrupted part file is caught on the host: HASH_MISMATCH naming the file and both digests, the part removed, the next try clean', async () => {
    const f = localFile('e.bin', 64 * MiB);
    const c = await conn();
    const target = '/srv/e.bin';
    const ac = new AbortController();
    await rejection(
      uploadFile({ connections: [c], channelsPerConnection: 1, localPath: f.path, remotePath: target, sha256: f.sha256, signal: ac.signal, onProgress: (p) => p.sent > 0 && ac.abort() }),
    );
    const part = target + PART_SUFFIX;
    expect(statSync(onHostFs(part)).size).toBeGreaterThan(1000);
    // Flip the bits of byte 1000 of what is already on the host.
    await runOnHost(lab, host.name, ['python3', '-c', 'import sys\nf=open(sys.argv[1],"r+b"); f.seek(1000); b=f.read(1); f.seek(1000); f.write(bytes([b[0]^0xff]))', part]);

    const err = await rejection(uploadFile({ connections: [c], channelsPerConnection: 1, localPath: f.path, remotePath: target, sha256: f.sha256 }));
    expect(err.code).toBe('HASH_MISMATCH');
    expect(err.message).toContain(target);
    expect(err.message).toContain(host.name);
    expect(err.message).toContain(f.sha256);
    const got = /SHA-256 on the host ([0-9a-f]{64})/.exec(err.message)?.[1];
    expect(got).toMatch(/^[0-9a-f]{64}$/);
    expect(got).not.toBe(f.sha256);
    expect(existsSync(onHostFs(part))).toBe(false);
    expect(existsSync(onHostFs(target + SIDECAR_SUFFIX))).toBe(false);
    expect(existsSync(onHostFs(target))).toBe(false);

    const r = await uploadFile({ connections: [c], localPath: f.path, remotePath: target, sha256: f.sha256 });
    expect(r).toMatchObject({ resumedFrom: 0, bytesSent: f.size, skipped: false });
    expect(await hostSha(target)).toBe(f.sha256);
  });

  it('a wrong expected digest is never reported as success: HASH_MISMATCH, nothing under the final name', async () => {
    const f = localFile('f.bin', 2 * MiB);
    const c = await conn();
    const wrong = createHash('sha256').update('something else').digest('hex');
    const err = await rejection(uploadFile({ connections: [c], localPath: f.path, remotePath: '/srv/f.bin', sha256: wrong }));
    expect(err.code).toBe('HASH_MISMATCH');
    expect(err.message).toContain(wrong);
    expect(err.message).toContain(f.sha256); // what the host computed: the file's real digest
    expect(await sh('ls -a /srv | grep "^f.bin" || true')).toBe('');
  });

  it('starts over when the part file on the host was meant for other content', async () => {
    const f = localFile('g.bin', 4 * MiB);
    const c = await conn();
    const target = '/srv/g.bin';
    const other = createHash('sha256').update('other').digest('hex');
    await sh(`head -c 1048576 /dev/urandom > ${target}${PART_SUFFIX}; printf '%s' '{"v":1,"sha256":"${other}","size":${f.size},"committed":null}' > ${target}${SIDECAR_SUFFIX}`);
    const r = await uploadFile({ connections: [c], localPath: f.path, remotePath: target, sha256: f.sha256 });
    expect(r).toMatchObject({ resumedFrom: 0, bytesSent: f.size });
    expect(await hostSha(target)).toBe(f.sha256);

    // A sidecar that is not ours (garbage) is no reason to trust the part file either.
    await sh(`head -c 1048576 /dev/urandom > /srv/h.bin${PART_SUFFIX}; printf 'garbage' > /srv/h.bin${SIDECAR_SUFFIX}`);
    const r2 = await uploadFile({ connections: [c], localPath: f.path, remotePath: '/srv/h.bin', sha256: f.sha256 });
    expect(r2).toMatchObject({ resumedFrom: 0, bytesSent: f.size });
  });

  it('refuses with NO_SPACE when the target file system is too small, naming the path and the sizes; nothing is written', async () => {
    await sh('mkdir -p /srv/tiny && mount -t tmpfs -o size=1m airlock-test-tiny /srv/tiny');
    try {
      const f = localFile('big-for-tiny.bin', 4 * MiB);
      const c = await conn();
      const err = await rejection(uploadFile({ connections: [c], localPath: f.path, remotePath: '/srv/tiny/sub/x.bin', sha256: f.sha256 }));
      expect(err.code).toBe('NO_SPACE');
      expect(err.message).toContain('/srv/tiny/sub/x.bin');
      expect(err.message).toContain(host.name);
      expect(err.message).toContain(`${f.size} bytes`);
      expect(err.message).toMatch(/\b\d+ bytes \([\d.]+ (KiB|MiB)\) available in \/srv\/tiny\b/);
      expect(await sh('ls -A /srv/tiny')).toBe('');

      // The same file system takes a file that fits.
      const small = localFile('small.bin', 100 * 1024);
      const r = await uploadFile({ connections: [c], localPath: small.path, remotePath: '/srv/tiny/sub/x.bin', sha256: small.sha256 });
      expect(r.skipped).toBe(false);
      expect(await hostSha('/srv/tiny/sub/x.bin')).toBe(small.sha256);
    } finally {
      await sh('umount /srv/tiny');
    }
  });

  it('splits the file over 2 and 4 connections, and several channels on one connection, and gets the bytes right', async () => {
    const f = localFile('p.bin', 72 * MiB + 12345);
    const c1 = await conn();
    const c2 = await conn();
    const c3 = await conn();
    const c4 = await conn();
    const cases: Array<[SshConnection[], number | undefined]> = [
      [[c1, c2], 1],
      [[c1, c2, c3, c4], 1],
      [[c1, c1], 1],
      [[c1], 3],
      [[c1, c2], undefined], // the default: 2 channels on each
    ];
    for (const [i, [conns, channelsPerConnection]] of cases.entries()) {
      const target = `/srv/par/p${i}.bin`;
      const r = await uploadFile({ connections: conns, channelsPerConnection, localPath: f.path, remotePath: target, sha256: f.sha256, chunkSize: 64 * 1024 });
      expect(r).toEqual({ bytesSent: f.size, resumedFrom: 0, sha256: f.sha256, remotePath: target, skipped: false });
      expect(await hostSha(target)).toBe(f.sha256);
    }
  });

  it('sends the data as SSH packets built in reused buffers: neither ssh2\'s SFTP write nor its channelData copies it', async () => {
    // The copying path is still right, only slower (GC of a buffer per request and per packet): this
    // catches an ssh2 update that makes directWrites fall back without anyone noticing.
    const sftpWrite = vi.spyOn(SFTP.prototype, 'write');
    const channelData = vi.spyOn(Protocol.prototype, 'channelData');
    try {
      const f = localFile('d.bin', 40 * MiB + 777);
      const c = await conn();
      const r = await uploadFile({ connections: [c], localPath: f.path, remotePath: '/srv/d.bin', sha256: f.sha256 });
      expect(r.bytesSent).toBe(f.size);
      expect(await hostSha('/srv/d.bin')).toBe(f.sha256);
      // Bookkeeping (the sidecar) goes through ssh2; no bulk data does.
      expect(sftpWrite.mock.calls.filter((call) => (call[3] as number) > 4096)).toEqual([]);
      expect(channelData.mock.calls.filter((call) => (call[1] as Buffer).length > 4096)).toEqual([]);
    } finally {
      sftpWrite.mockRestore();
      channelData.mockRestore();
    }
  });

  it('gets the bytes right when the connection re-keys in the middle of an upload (packets then go through ssh2\'s queue)', async () => {
    const f = localFile('k.bin', 96 * MiB);
    const c = await conn();
    const client = (c as unknown as { client: Parameters<typeof rekey>[0] }).client;
    let rekeys = 0;
    let handshakes = 0;
    client.on('handshake', () => handshakes++);
    const channelData = vi.spyOn(Protocol.prototype, 'channelData');
    let r: Awaited<ReturnType<typeof uploadFile>>;
    let bulk: number;
    // At a capped rate (~2 s for the file), so that the key exchanges land mid-upload however fast the machine is.
    await slowDown();
    try {
      r = await uploadFile({
        connections: [c],
        localPath: f.path,
        remotePath: '/srv/k.bin',
        sha256: f.sha256,
        onProgress: (p) => {
          // Progress comes every 100 ms at most: a new key exchange each time, once the last one is done.
          if (rekeys < 3 && rekeys === handshakes && p.sent >= 8 * MiB && p.sent < f.size - 8 * MiB) {
            rekeys++;
            rekey(client);
          }
        },
      });
      bulk = channelData.mock.calls.filter((call) => (call[1] as Buffer).length > 4096).length;
    } finally {
      channelData.mockRestore();
      await restoreLink(lab, host.name);
    }
    expect(rekeys).toBeGreaterThan(0);
    await vi.waitFor(() => expect(handshakes).toBe(rekeys));
    // Some data went out while a key exchange ran: through ssh2's channelData, which queued it.
    expect(bulk).toBeGreaterThan(0);
    expect(r.bytesSent).toBe(f.size);
    expect(await hostSha('/srv/k.bin')).toBe(f.sha256);
  });

  it('resumes a cancelled upload over several connections from the prefix it knows is whole', async () => {
    const f = localFile('q.bin', 96 * MiB);
    const conns = [await conn(), await conn(), await conn()];
    const target = '/srv/q.bin';
    const ac = new AbortController();
    // Cancelled once 64 MiB are acknowledged, so that (6 streams each on its own 8 MiB pieces) the
    // prefix known whole is past the first pieces: at a capped rate (~50 MB/s), so that this moment
    // comes before the end however fast the machine is.
    await slowDown();
    let err: AirlockError;
    try {
      err = await rejection(
        uploadFile({ connections: conns, localPath: f.path, remotePath: target, sha256: f.sha256, signal: ac.signal, onProgress: (p) => p.sent >= 64 * MiB && ac.abort() }),
      );
    } finally {
      await restoreLink(lab, host.name);
    }
    expect(err.code).toBe('CANCELLED');
    const side = JSON.parse(await sh(`cat ${target}${SIDECAR_SUFFIX}`)) as { sha256: string; size: number; committed: number };
    expect(side).toMatchObject({ v: 1, sha256: f.sha256, size: f.size });
    expect(side.committed).toBeGreaterThan(0);

    const r = await uploadFile({ connections: conns.slice(0, 2), localPath: f.path, remotePath: target, sha256: f.sha256 });
    expect(r.resumedFrom).toBe(side.committed);
    expect(r.bytesSent).toBe(f.size - side.committed);
    expect(await hostSha(target)).toBe(f.sha256);
  });

  it('resumes over several connections after a cut link from the prefix recorded on the way, whatever lies beyond it', async () => {
    const f = localFile('r.bin', 256 * MiB);
    const target = '/srv/r.bin';
    const conns = [await conn(500), await conn(500)];
    let cutting: Promise<void> | null = null;
    // At a capped rate (~50 MB/s), so that the cut at 200 MiB comes before the end however fast the machine is.
    await slowDown();
    const err = await rejection(
      uploadFile({
        connections: conns,
        localPath: f.path,
        remotePath: target,
        sha256: f.sha256,
        timeoutMs: 30_000,
        onProgress: (p) => {
          if (p.sent >= 200 * MiB && !cutting) cutting = cutLink(lab, host.name);
        },
      }),
    );
    await cutting;
    expect(['HOST_UNREACHABLE', 'TIMEOUT']).toContain(err.code);
    await restoreLink(lab, host.name);
    const side = JSON.parse(await sh(`cat ${target}${SIDECAR_SUFFIX}`)) as { committed: number };
    const partSize = statSync(onHostFs(target + PART_SUFFIX)).size;
    // Recorded every 32 MiB of whole prefix on the way (at least twice by 200 MiB, whatever the timing).
    expect(side.committed).toBeGreaterThanOrEqual(64 * MiB);
    // Written beyond the recorded prefix (acknowledged up to 200 MiB): that part is cut off and resent.
    expect(partSize).toBeGreaterThan(side.committed);

    const r = await uploadFile({ connections: [await conn(), await conn()], localPath: f.path, remotePath: target, sha256: f.sha256 });
    expect(r.resumedFrom).toBe(side.committed);
    expect(r.bytesSent).toBe(f.size - side.committed);
    expect(await hostSha(target)).toBe(f.sha256);
  });

  it('quotes remote paths for the shell, and refuses NUL, newlines and relative paths before touching the host', async () => {
    const f = localFile('q1.bin', 64 * 1024);
    const c = await conn();
    const odd = "/srv/we ird/it's $(touch pwned) `id` \\ ; x.bin";
    const r = await uploadFile({ connections: [c], localPath: f.path, remotePath: odd, sha256: f.sha256 });
    expect(r.skipped).toBe(false);
    expect(await hostSha(odd)).toBe(f.sha256);
    // The command substitution in the name ran nowhere: the directory holds that one file, and no
    // `pwned` appeared in the home directory (where the host's commands run) or beside the file.
    expect(await sh('ls -A /srv/we\\ ird')).toBe("it's $(touch pwned) `id` \\ ; x.bin\n");
    expect(existsSync(onHostFs('/root/pwned'))).toBe(false);
    expect(existsSync(onHostFs('/srv/pwned'))).toBe(false);

    for (const bad of ['/srv/a\nb.bin', '/srv/a\0b.bin', '/srv/a\rb.bin', 'relative.bin', '/srv/', '/srv/..']) {
      const e = await rejection(uploadFile({ connections: [c], localPath: f.path, remotePath: bad, sha256: f.sha256 }));
      expect(e.code).toBe('INVALID_INPUT');
    }
    expect((await rejection(uploadFile({ connections: [c], localPath: f.path, remotePath: '/srv/z.bin', sha256: 'not-a-digest' }))).code).toBe('INVALID_INPUT');
    expect((await rejection(uploadFile({ connections: [], localPath: f.path, remotePath: '/srv/z.bin', sha256: f.sha256 }))).code).toBe('INVALID_INPUT');
    expect((await rejection(uploadFile({ connections: [c], localPath: join(dir, 'missing'), remotePath: '/srv/z.bin', sha256: f.sha256 }))).code).toBe('NOT_FOUND');
    expect(() => shellQuote('a\nb')).toThrow(AirlockError);
    expect(shellQuote("it's")).toBe(`'it'\\''s'`);
  });

  it('hashes while writing (python3 on this host): the finished file is not read again by openssl or sha256sum', async () => {
    await sh(
      [
        `printf '#!/bin/sh\\necho "openssl $*" >> /tmp/hash.log\\nexec /usr/bin/openssl "$@"\\n' > /usr/local/bin/openssl`,
        `printf '#!/bin/sh\\necho "sha256sum $*" >> /tmp/hash.log\\nexec /usr/bin/sha256sum "$@"\\n' > /usr/local/bin/sha256sum`,
        'chmod 755 /usr/local/bin/openssl /usr/local/bin/sha256sum',
        ': > /tmp/hash.log',
      ].join('; '),
    );
    try {
      const f = localFile('py.bin', 40 * MiB);
      const c = await conn();
      const r = await uploadFile({ connections: [c, c], localPath: f.path, remotePath: '/srv/py.bin', sha256: f.sha256 });
      expect(r.bytesSent).toBe(f.size);
      expect(await hostSha('/srv/py.bin')).toBe(f.sha256);
      expect(await sh('cat /tmp/hash.log')).toBe('');
    } finally {
      await sh('rm -f /usr/local/bin/openssl /usr/local/bin/sha256sum /tmp/hash.log');
    }
  });

  it('hashes with sha256sum, while writing, on a host where neither python3 nor openssl works', async () => {
    // The host's own /usr/local/bin comes first on its PATH: a broken python3 and openssl, and a sha256sum that logs its use.
    await sh(
      [
        `printf '#!/bin/sh\\nexit 1\\n' > /usr/local/bin/openssl`,
        `cp /usr/local/bin/openssl /usr/local/bin/python3`,
        `printf '#!/bin/sh\\necho used >> /tmp/sha256sum.log\\nexec /usr/bin/sha256sum "$@"\\n' > /usr/local/bin/sha256sum`,
        'chmod 755 /usr/local/bin/openssl /usr/local/bin/python3 /usr/local/bin/sha256sum',
      ].join('; '),
    );
    try {
      const f = localFile('s.bin', 40 * MiB);
      const c = await conn();
      const r = await uploadFile({ connections: [c], localPath: f.path, remotePath: '/srv/s.bin', sha256: f.sha256 });
      expect(r.skipped).toBe(false);
      expect(await hostSha('/srv/s.bin')).toBe(f.sha256);
      // Once: the streaming hash (head into sha256sum) matched, so the file was not hashed again.
      expect(await sh('cat /tmp/sha256sum.log')).toBe('used\n');
      const again = await uploadFile({ connections: [c], localPath: f.path, remotePath: '/srv/s.bin', sha256: f.sha256 });
      expect(again.skipped).toBe(true);
      expect(await sh('cat /tmp/sha256sum.log')).toBe('used\nused\n');
    } finally {
      await sh('rm -f /usr/local/bin/openssl /usr/local/bin/python3 /usr/local/bin/sha256sum /tmp/sha256sum.log');
    }
  });
});

describe('the fast path and its probe (ssh2-internals.ts)', () => {
  it('is taken by default: ssh2 at the pinned version, AES-GCM negotiated, no compression, no key exchange', async () => {
    const c = await conn();
    const s = await c.sftp();
    const probe = probeFastPath(s.raw);
    expect(probe).toMatchObject({ fastPath: 'packets', reason: null, ssh2Version: SSH2_VERSION, compression: 'none', kexInProgress: false });
    expect(probe.cipher).toMatch(/^aes(128|256)-gcm(@openssh\.com)?$/);
    expect(probe.session?.encrypterNow()).toBeTypeOf('function');
    await s.end();
  });

  it('is refused for any other ssh2 version: ssh2\'s own write throughout', async () => {
    const c = await conn();
    const s = await c.sftp();
    const probe = probeFastPath(s.raw, { ssh2Version: '1.16.0' });
    expect(probe).toMatchObject({ fastPath: 'none', session: null });
    expect(probe.reason).toContain('1.16.0');
    expect(probe.reason).toContain(SSH2_VERSION);
    const write = s.raw.write;
    expect(directWrites(s.raw, new Map(), probe)).toBeNull();
    // Nothing of ssh2's was replaced.
    expect(s.raw.write).toBe(write);
    expect(probeFastPath(s.raw, { ssh2Version: null }).fastPath).toBe('none');
    await s.end();
  });

  it('is refused on a compressed connection (zlib@openssh.com): the upload goes through ssh2\'s write and its compressor, and the bytes are right', async () => {
    const c = await conn(undefined, { compression: true });
    const s = await c.sftp();
    const probe = probeFastPath(s.raw);
    // The lab's sshd has OpenSSH's default `Compression yes`: ssh2's first choice is taken.
    expect(probe).toMatchObject({ fastPath: 'none', compression: 'zlib@openssh.com', session: null });
    expect(probe.reason).toMatch(/compression/);
    await s.end();

    const sftpWrite = vi.spyOn(SFTP.prototype, 'write');
    try {
      const f = localFile('z.bin', 12 * MiB + 333);
      const r = await uploadFile({ connections: [c], localPath: f.path, remotePath: '/srv/z.bin', sha256: f.sha256 });
      expect(r).toMatchObject({ bytesSent: f.size, skipped: false });
      expect(await hostSha('/srv/z.bin')).toBe(f.sha256);
      // Every byte of the file went through ssh2's own SFTP write.
      const bulk = sftpWrite.mock.calls.filter((call) => (call[3] as number) > 4096).reduce((n, call) => n + (call[3] as number), 0);
      expect(bulk).toBe(f.size);
    } finally {
      sftpWrite.mockRestore();
    }
  });
});

describe('SshConnection.sftp', () => {
  it('opens, writes, stats, renames and removes; a missing path stats as null', async () => {
    const c = await conn();
    const s = await c.sftp();
    expect(s.hasExtension('posix-rename@openssh.com')).toBe(true);
    const h = await s.open('/srv/raw.txt', SFTP_OPEN.WRITE | SFTP_OPEN.CREAT | SFTP_OPEN.TRUNC, 0o600);
    const data = Buffer.from('hello over sftp\n');
    await new Promise<void>((resolve, reject) => s.write(h, data, 0, data.length, 0, (e) => (e ? reject(e) : resolve())));
    expect(await s.fsync(h)).toBe(true);
    await s.close(h);
    expect(await s.stat('/srv/raw.txt')).toMatchObject({ size: data.length, isFile: true, isDirectory: false });
    expect((await s.stat('/srv/raw.txt'))!.mode & 0o777).toBe(0o600);
    expect(await s.stat('/srv/nothing-here')).toBeNull();
    await s.rename('/srv/raw.txt', '/srv/raw2.txt');
    expect(await sh('cat /srv/raw2.txt')).toBe('hello over sftp\n');
    await s.unlink('/srv/raw2.txt');
    await s.unlink('/srv/raw2.txt'); // already gone: fine
    expect(await s.stat('/srv/raw2.txt')).toBeNull();
    const e = await rejection(s.open('/srv/no/such/dir/x', SFTP_OPEN.WRITE | SFTP_OPEN.CREAT));
    expect(e.code).toBe('NOT_FOUND');
    expect(e.message).toContain(host.name);
    await s.end();
    expect(s.closed).toBe(true);
    expect((await rejection(s.stat('/srv'))).code).toBe('CANCELLED');
  });

  it('is closed with the connection: later requests and writes fail with CANCELLED', async () => {
    const c = await conn();
    const s = await c.sftp();
    c.close();
    await new Promise<void>((r) => c.onClose(r));
    expect(s.closed).toBe(true);
    expect((await rejection(s.stat('/srv'))).code).toBe('CANCELLED');
    const err = await new Promise<AirlockError | null>((r) => s.write(Buffer.from('x'), Buffer.from('y'), 0, 1, 0, r));
    expect(err?.code).toBe('CANCELLED');
    expect((await rejection(c.sftp())).code).toBe('CANCELLED');
  });
});
