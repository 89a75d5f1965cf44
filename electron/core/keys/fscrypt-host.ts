/**
 * The host side of fscrypt (fscrypt.ts, fscrypt-rekey.ts): one python3 program, sent with
 * `python3 -I -S -c` on every call, so a GPU host needs nothing installed but python3 (Debian's
 * `fscrypt` tool is not assumed). It speaks to the kernel with fcntl.ioctl using the struct layouts
 * of <linux/fscrypt.h> (policy v2, AES-256-XTS contents, AES-256-CTS names, 32-byte name padding).
 *
 * Keys arrive on stdin only (64 raw bytes each, never argv, never a file), read into a bytearray
 * larger than 1024 bytes at the offset FS_IOC_ADD_ENCRYPTION_KEY expects: CPython hands such a
 * buffer to ioctl(2) directly instead of copying it through its 1 KiB stack buffer, so the only
 * copy of the key in the process is the one zeroed afterwards. The caller sends the key's
 * identifier (HKDF-SHA512, computed in TS) in argv: a key whose identifier does not match the
 * directory's policy is refused before it reaches the keyring, and the identifier the kernel
 * returns is checked against it.
 *
 * Output: exactly one JSON line on stdout, `{"ok": true, ...}` (exit 0) or `{"ok": false, "code":
 * CODE, "detail": ...}` (exit 3). The TS side parses it strictly (host output is untrusted).
 */
export const FSCRYPT_HOST_PY = String.raw`
import errno, fcntl, hashlib, json, os, stat, struct, sys
SET_POLICY = 0x800c6613
GET_POLICY_EX = 0xc0096616
ADD_KEY = 0xc0506617
REMOVE_KEY = 0xc0406618
REMOVE_KEY_ALL = 0xc0406619
KEY_STATUS = 0xc080661a
XTS, CTS, PAD32, SPEC_ID = 1, 4, 3, 2
KEYLEN, HDR, BUFLEN = 64, 80, 2048
PART = '.airlock-part-'
MAXLIST = 100

class Fail(Exception):
    def __init__(self, code, detail=''):
        Exception.__init__(self, code)
        self.code, self.detail = code, str(detail)[:300]

def done(**kw):
    kw['ok'] = True
    sys.stdout.write(json.dumps(kw, sort_keys=True) + '\n')

def opendir(p):
    try:
        return os.open(p, os.O_RDONLY | os.O_DIRECTORY)
    except FileNotFoundError:
        raise Fail('ABSENT', p)
    except NotADirectoryError:
        raise Fail('NOTDIR', p)

def policy(fd):
    a = bytearray(8 + 24)
    struct.pack_into('=Q', a, 0, 24)
    try:
        fcntl.ioctl(fd, GET_POLICY_EX, a)
    except OSError as e:
        if e.errno == errno.ENODATA:
            return None
        if e.errno in (errno.ENOTTY, errno.EOPNOTSUPP):
            raise Fail('UNSUPPORTED', 'this filesystem has no encryption support')
        raise
    if a[8] != 2:
        raise Fail('UNSUPPORTED', 'a v%d policy (Airlock uses v2)' % a[8])
    return {'id': bytes(a[16:32]).hex(), 'contents': a[9], 'names': a[10], 'flags': a[11]}

def spec(a, ident):
    struct.pack_into('=II', a, 0, SPEC_ID, 0)
    a[8:24] = bytes.fromhex(ident)

def key_status(fd, ident):
    a = bytearray(128)
    spec(a, ident)
    fcntl.ioctl(fd, KEY_STATUS, a)
    return {1: 'absent', 2: 'present', 3: 'busy'}.get(struct.unpack_from('=I', a, 64)[0], 'unknown')

def read_keys(n):
    bufs = []
    for _ in range(n):
        b = bytearray(BUFLEN)
        v = memoryview(b)[HDR:HDR + KEYLEN]
        got = 0
        while got < KEYLEN:
            r = sys.stdin.buffer.readinto(v[got:])
            if not r:
                break
            got += r
        v.release()
        bufs.append(b)
        if got != KEYLEN:
            wipe(bufs)
            raise Fail('BADKEY', 'expected %d key bytes on stdin' % KEYLEN)
    return bufs

def wipe(bufs):
    for b in bufs:
        b[:] = bytes(len(b))

def add_key(fd, buf, ident):
    struct.pack_into('=II', buf, 0, SPEC_ID, 0)
    buf[8:40] = bytes(32)
    struct.pack_into('=II', buf, 40, KEYLEN, 0)
    buf[48:HDR] = bytes(HDR - 48)
    fcntl.ioctl(fd, ADD_KEY, buf)
    got = bytes(buf[8:24]).hex()
    if got != ident:
        raise Fail('IDMISMATCH', 'the kernel computed identifier %s' % got)

def remove_key(fd, ident):
    a = bytearray(64)
    spec(a, ident)
    try:
        fcntl.ioctl(fd, REMOVE_KEY_ALL if os.geteuid() == 0 else REMOVE_KEY, a)
    except OSError as e:
        if e.errno == errno.ENOKEY:
            return 'absent'
        raise
    return 'busy' if struct.unpack_from('=I', a, 40)[0] & 1 else 'removed'

def set_policy(fd, ident):
    p = bytearray(24)
    p[0], p[1], p[2], p[3] = 2, XTS, CTS, PAD32
    p[8:24] = bytes.fromhex(ident)
    fcntl.ioctl(fd, SET_POLICY, p)

def fsync_dir(p):
    fd = os.open(p, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

def entries(p, limit=1):
    with os.scandir(p) as it:
        out = []
        for e in it:
            out.append(e.name)
            if len(out) >= limit:
                break
        return out

def status(d):
    if not os.path.lexists(d):
        return {'state': 'absent', 'target': None, 'id': None, 'detail': None}
    if not os.path.exists(d):
        return {'state': 'absent', 'target': None, 'id': None, 'detail': 'dangling symlink'}
    target = os.path.realpath(d)
    fd = opendir(d)
    try:
        try:
            pol = policy(fd)
        except Fail as f:
            if f.code != 'UNSUPPORTED':
                raise
            return {'state': 'unsupported', 'target': target, 'id': None, 'detail': f.detail}
        if pol is None:
            return {'state': 'unencrypted', 'target': target, 'id': None, 'detail': 'empty' if not entries(d) else 'not empty'}
        if (pol['contents'], pol['names']) != (XTS, CTS):
            return {'state': 'unsupported', 'target': target, 'id': pol['id'], 'detail': 'modes %d/%d' % (pol['contents'], pol['names'])}
        ks = key_status(fd, pol['id'])
        return {'state': 'unlocked' if ks == 'present' else 'locked', 'target': target, 'id': pol['id'], 'detail': 'busy' if ks == 'busy' else None}
    finally:
        os.close(fd)

def ensure_encrypted_dir(target, buf, ident):
    # mkdir + policy, idempotent: an empty directory without policy is a crash between the two.
    try:
        os.mkdir(target, 0o755)
    except FileExistsError:
        pass
    fd = opendir(target)
    try:
        add_key(fd, buf, ident)
        pol = policy(fd)
        if pol is None:
            if entries(target):
                raise Fail('NOTEMPTY', target)
            set_policy(fd, ident)
        elif pol['id'] != ident:
            raise Fail('OTHERKEY', target)
    finally:
        os.close(fd)
    fsync_dir(os.path.dirname(target))

def point(d, target):
    tmp = d + '.airlock-new'
    if os.path.lexists(tmp):
        os.unlink(tmp)
    os.symlink(target, tmp)
    os.rename(tmp, d)
    fsync_dir(os.path.dirname(d))

def cmd_status(d):
    done(**status(d))

def cmd_encrypt(d, store, ident):
    bufs = read_keys(1)
    try:
        s = status(d)
        if s['state'] in ('locked', 'unlocked'):
            if s['id'] != ident:
                raise Fail('OTHERKEY', d)
        elif s['state'] == 'unsupported':
            raise Fail('UNSUPPORTED', s['detail'])
        target = os.path.join(os.path.realpath(store), 'k-' + ident)
        if s['state'] in ('locked', 'unlocked') and s['target'] != target:
            raise Fail('NOTLAYOUT', d)
        elif s['state'] == 'unencrypted':
            if s['detail'] != 'empty':
                raise Fail('NOTEMPTY', d)
            if os.path.islink(d) or os.path.ismount(d):
                raise Fail('NOTLAYOUT', d)
        elif s['detail'] == 'dangling symlink':
            raise Fail('NOTLAYOUT', d)
        fd = opendir(store)
        try:
            policy(fd)
        finally:
            os.close(fd)
        ensure_encrypted_dir(target, bufs[0], ident)
        if s['state'] == 'unencrypted':
            os.rmdir(d)
        if os.path.realpath(d) != target:
            point(d, target)
        done(**status(d))
    finally:
        wipe(bufs)

def cmd_unlock(d, ident):
    bufs = read_keys(1)
    try:
        fd = opendir(d)
        try:
            pol = policy(fd)
            if pol is None:
                raise Fail('UNENCRYPTED', d)
            if pol['id'] != ident:
                raise Fail('WRONGKEY', pol['id'])
            add_key(fd, bufs[0], ident)
            if key_status(fd, ident) != 'present':
                raise Fail('NOTPRESENT', ident)
        finally:
            os.close(fd)
        done(**status(d))
    finally:
        wipe(bufs)

def cmd_lock(d):
    fd = opendir(d)
    try:
        pol = policy(fd)
    finally:
        os.close(fd)
    if pol is None:
        raise Fail('UNENCRYPTED', d)
    # Through the (unencrypted) parent: an open descriptor on the directory itself would keep its
    # inode, and the plaintext names cached with it, alive ("busy").
    fd = opendir(os.path.dirname(os.path.realpath(d)))
    try:
        removed = remove_key(fd, pol['id'])
    finally:
        os.close(fd)
    s = status(d)
    s['removed'] = removed
    done(**s)

# ---- re-keying: prepare, copy, verify, swap, cleanup (fscrypt-rekey.ts) ----

def rk_paths(d, store, old, new):
    st = os.path.realpath(store)
    return st, os.path.join(st, 'k-' + old), os.path.join(st, 'k-' + new)

def rk_where(d, olddir, newdir):
    if not os.path.islink(d):
        raise Fail('NOTLAYOUT', d)
    cur = os.path.realpath(d)
    if cur == newdir:
        return 'swapped'
    if cur == olddir:
        return 'old'
    raise Fail('NOTLAYOUT', cur)

def rk_keys(olddir, newdir, old, new, bufs, need_old):
    if need_old and os.path.isdir(olddir):
        fd = opendir(olddir)
        try:
            pol = policy(fd)
            if pol is None or pol['id'] != old:
                raise Fail('OTHERKEY', olddir)
            add_key(fd, bufs[0], old)
        finally:
            os.close(fd)
    ensure_encrypted_dir(newdir, bufs[1], new)

def reraise(e):
    raise e

def walk(top):
    # (relative path, stat) of every regular file below top; anything else is refused.
    out = []
    for root, dirs, files in os.walk(top, onerror=reraise):
        for n in dirs:
            if os.path.islink(os.path.join(root, n)):
                raise Fail('SPECIAL', os.path.relpath(os.path.join(root, n), top))
        for n in files:
            p = os.path.join(root, n)
            s = os.lstat(p)
            if not stat.S_ISREG(s.st_mode):
                raise Fail('SPECIAL', os.path.relpath(p, top))
            out.append((os.path.relpath(p, top), s))
    out.sort()
    return out

def copy_one(i, src, dst, s):
    # Numbered: two long names alike in their first 100 characters never share a temporary file.
    tmp = os.path.join(os.path.dirname(dst), '%s%d-%s' % (PART, i, os.path.basename(dst)[:100]))
    fi = os.open(src, os.O_RDONLY)
    try:
        fo = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            left = s.st_size
            while left > 0:
                n = os.copy_file_range(fi, fo, min(left, 1 << 30))
                if n <= 0:
                    raise Fail('SHORTCOPY', src)
                left -= n
            os.fchmod(fo, stat.S_IMODE(s.st_mode))
            os.utime(fo, ns=(s.st_atime_ns, s.st_mtime_ns))
            os.fsync(fo)
        finally:
            os.close(fo)
    finally:
        os.close(fi)
    os.rename(tmp, dst)

def rk_copy(olddir, newdir):
    copied = skipped = 0
    for root, dirs, files in os.walk(newdir):
        for n in files:
            if n.startswith(PART):
                os.unlink(os.path.join(root, n))
    todo = []
    for rel, s in walk(olddir):
        dst = os.path.join(newdir, rel)
        os.makedirs(os.path.dirname(dst), 0o755, exist_ok=True)
        try:
            if os.lstat(dst).st_size == s.st_size:
                skipped += 1
                continue
        except FileNotFoundError:
            pass
        todo.append((len(todo), os.path.join(olddir, rel), dst, s))
    # Files in parallel: the kernel encrypts a file's pages when they are written back, in the
    # thread that fsyncs them, so one thread per core re-encrypts on every core.
    pmap(lambda t: copy_one(*t), todo)
    copied = len(todo)
    for root, dirs, files in os.walk(newdir):
        fsync_dir(root)
    return copied, skipped

def pmap(fn, items):
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1))) as ex:
        return list(ex.map(fn, items))

def sha256(p):
    h = hashlib.sha256()
    with open(p, 'rb', buffering=0) as f:
        b = bytearray(1 << 22)
        v = memoryview(b)
        while True:
            n = f.readinto(b)
            if not n:
                break
            h.update(v[:n])
    return h.hexdigest()

def same_shape(olddir, newdir):
    # Cheap guard before a swap or a delete: every file of the old directory has a copy of its size.
    if not os.path.isdir(olddir):
        return
    for rel, s in walk(olddir):
        try:
            if os.lstat(os.path.join(newdir, rel)).st_size != s.st_size:
                raise Fail('INCOMPLETE', rel)
        except FileNotFoundError:
            raise Fail('INCOMPLETE', rel)

def cmd_rekey(step, d, store, old, new):
    bufs = read_keys(2)
    try:
        expected = None
        if step == 'verify':
            raw = sys.stdin.buffer.read(64 << 20)
            expected = json.loads(raw.decode('utf-8'))
        st, olddir, newdir = rk_paths(d, store, old, new)
        where = rk_where(d, olddir, newdir)
        if step == 'prepare':
            if where == 'old':
                rk_keys(olddir, newdir, old, new, bufs, True)
            else:
                rk_keys(olddir, newdir, old, new, bufs, False)
            done(step=step, where=where)
        elif step == 'copy':
            if where == 'swapped':
                done(step=step, where=where, copied=0, skipped=0)
                return
            rk_keys(olddir, newdir, old, new, bufs, True)
            c, k = rk_copy(olddir, newdir)
            done(step=step, where=where, copied=c, skipped=k)
        elif step == 'verify':
            rk_keys(olddir, newdir, old, new, bufs, where == 'old')
            have = dict((rel, s) for rel, s in walk(newdir))
            bad, missing, extra = [], [], []
            present = [rel for rel in sorted(expected) if rel in have]
            missing = [rel for rel in sorted(expected) if rel not in have]
            sums = dict(zip(present, pmap(lambda rel: sha256(os.path.join(newdir, rel)), present)))
            for rel in present:
                got = sums[rel]
                if got != expected[rel]:
                    src = os.path.join(olddir, rel)
                    bad.append({'path': rel, 'actual': got, 'source': sha256(src) if where == 'old' and os.path.isfile(src) else None})
                    if where == 'old':
                        os.unlink(os.path.join(newdir, rel))
            for rel in sorted(have):
                if rel not in expected:
                    extra.append(rel)
            done(step=step, where=where, files=len(expected), mismatched=bad[:MAXLIST], missing=missing[:MAXLIST], extra=extra[:MAXLIST],
                 problems=len(bad) + len(missing) + len(extra))
        elif step == 'swap':
            if where == 'old':
                rk_keys(olddir, newdir, old, new, bufs, True)
                same_shape(olddir, newdir)
                point(d, newdir)
            done(step=step, where=rk_where(d, olddir, newdir))
        elif step == 'cleanup':
            if where != 'swapped':
                raise Fail('NOTSWAPPED', d)
            rk_keys(olddir, newdir, old, new, bufs, True)
            if os.path.isdir(olddir):
                same_shape(olddir, newdir)
                import shutil
                shutil.rmtree(olddir)
                fsync_dir(st)
            fd = opendir(st)
            try:
                removed = remove_key(fd, old)
            finally:
                os.close(fd)
            done(step=step, where=where, removed=removed)
        else:
            raise Fail('USAGE', step)
    finally:
        wipe(bufs)

def main(a):
    try:
        if a[:1] == ['status'] and len(a) == 2:
            cmd_status(a[1])
        elif a[:1] == ['encrypt'] and len(a) == 4:
            cmd_encrypt(a[1], a[2], a[3])
        elif a[:1] == ['unlock'] and len(a) == 3:
            cmd_unlock(a[1], a[2])
        elif a[:1] == ['lock'] and len(a) == 2:
            cmd_lock(a[1])
        elif a[:1] == ['rekey'] and len(a) == 6:
            cmd_rekey(a[1], a[2], a[3], a[4], a[5])
        else:
            raise Fail('USAGE', ' '.join(a)[:100])
    except Fail as f:
        sys.stdout.write(json.dumps({'ok': False, 'code': f.code, 'detail': f.detail}) + '\n')
        sys.exit(3)
    except OSError as e:
        sys.stdout.write(json.dumps({'ok': False, 'code': 'OS', 'detail': '%s: %s' % (errno.errorcode.get(e.errno, e.errno), e.filename or '')}) + '\n')
        sys.exit(3)

main(sys.argv[1:])
`;
