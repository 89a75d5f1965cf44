#!/usr/bin/python3
# Airlock's gate: the one host-side component of Airlock (docs/gate.md).
#
# It enforces the policy the console signs and pushes over SSH:
#   invoke  a reverse proxy in front of the inference server (which binds to loopback only):
#           401 unknown credential, 403 not granted / PHI version on a non-PHI host, 429 over the
#           grant's rate limit, otherwise forwarded (server-sent events passed chunk by chunk);
#           a metadata-only access log and Prometheus counters.
#   pull    the registry's token realm (docker token spec): short-lived ES256 tokens scoped to
#           the principal's unexpired pull grants.
#
# Python 3 standard library only, plus the host's `openssl` binary (Ed25519 verification of the
# policy, ES256 signing of registry tokens): a stock GPU host has python3 (vLLM needs it) and
# openssl, and nothing else may be assumed. asyncio streams, one process, one event loop.
#
# Fail closed: no valid policy -> 503 for everything. A policy that does not verify, is older than
# the highest one accepted (state.json), or is malformed is refused, logged, and the last good one
# stays in force. Host input (requests) is hostile: every parse is bounded and a bad request gets a
# 4xx, never a crash.
import asyncio, base64, binascii, hashlib, hmac, json, math, os, re, signal, subprocess, sys, tempfile, time
from urllib.parse import parse_qsl, urlsplit

FORMAT = 'airlock.gate-policy/v1'
MAX_BODY = 8 * 1024 * 1024
MAX_HEADER = 64 * 1024
MAX_HEADERS = 100
MAX_POLICY = 16 * 1024 * 1024
HEADER_TIMEOUT = 30.0
BODY_TIMEOUT = 60.0
CONNECT_TIMEOUT = 5.0
UPSTREAM_IDLE = 900.0  # a non-streamed completion answers only when done: minutes, not hours
POLL_SECONDS = 0.5
MAX_TTL = 300
MAX_IDLE_UPSTREAM = 64
MAX_CONNECTIONS = 4096  # the unit raises LimitNOFILE above this
# \Z, not $: $ also matches before a final newline.
HEX64 = re.compile(r'^[0-9a-f]{64}\Z')
NAME = re.compile(r'^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*\Z')
VERSION = re.compile(r'^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}\Z')
PRINCIPAL = re.compile(r'^[^\s\x00-\x1f\x7f]{1,200}\Z')  # any visible characters: ids are the console's, escaped wherever they appear
ISO = re.compile(r'^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z\Z')
WORD = re.compile(r'\w+', re.UNICODE)
TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")  # an HTTP header name (RFC 9110 token)
HOP = {'connection', 'expect', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'content-length', 'authorization', 'proxy-authorization', 'host'}
REASONS = {200: 'OK', 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed', 408: 'Request Timeout',
           411: 'Length Required', 413: 'Payload Too Large', 429: 'Too Many Requests', 431: 'Request Header Fields Too Large', 500: 'Internal Server Error',
           501: 'Not Implemented', 502: 'Bad Gateway', 503: 'Service Unavailable', 505: 'HTTP Version Not Supported'}


def now_iso(t=None):
    t = time.time() if t is None else t
    return time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(t)) + '.%03dZ' % int((t % 1) * 1000)


def parse_iso(s):
    # '2026-12-08T00:00:00.000Z' -> epoch seconds (UTC), without datetime's locale or tz database.
    import calendar
    main, _, frac = s[:-1].partition('.')
    return calendar.timegm(time.strptime(main, '%Y-%m-%dT%H:%M:%S')) + (float('0.' + frac) if frac else 0.0)


def write_atomic(path, data, mode=0o644):
    d = os.path.dirname(path)
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix='.' + os.path.basename(path) + '.', dir=d)
    try:
        os.fchmod(fd, mode)
        os.write(fd, data)
        os.fsync(fd)
        os.close(fd)
        fd = -1
        os.rename(tmp, path)
        dfd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    finally:
        if fd >= 0:
            os.close(fd)
        if os.path.exists(tmp):
            os.unlink(tmp)


class Refused(Exception):
    def __init__(self, reason, detail, version=None):
        Exception.__init__(self, detail)
        self.reason, self.detail, self.version = reason, detail, version


# ------------------------------------------------------------------------------------------------
# Policy
# ------------------------------------------------------------------------------------------------

def check_policy(doc):
    """The policy's shape, strictly (policy-format: docs/gate.md). Returns the document or raises Refused('malformed')."""
    def bad(msg):
        raise Refused('malformed', msg, doc.get('version') if isinstance(doc, dict) and isinstance(doc.get('version'), int) else None)

    def keys(o, required, optional=(), what='policy'):
        if not isinstance(o, dict):
            bad('%s is not an object' % what)
        extra = set(o) - set(required) - set(optional)
        missing = set(required) - set(o)
        if extra or missing:
            bad('%s: unexpected %s / missing %s' % (what, sorted(extra)[:5], sorted(missing)[:5]))

    def iso(v, what):
        if not isinstance(v, str) or not ISO.match(v):
            bad('%s is not an ISO time' % what)
        try:
            return parse_iso(v)
        except ValueError:
            bad('%s is not an ISO time' % what)

    keys(doc, ('format', 'version', 'issuedAt', 'issuer', 'hosts', 'principals', 'grants'))
    if doc['format'] != FORMAT:
        bad('format is not %s' % FORMAT)
    v = doc['version']
    if not isinstance(v, int) or isinstance(v, bool) or v < 1 or v > 2 ** 53:
        bad('version is not an integer >= 1')
    iso(doc['issuedAt'], 'issuedAt')
    if not isinstance(doc['issuer'], str) or not 0 < len(doc['issuer']) <= 200:
        bad('issuer')
    if not isinstance(doc['hosts'], dict):
        bad('hosts is not an object')
    for name, h in doc['hosts'].items():
        keys(h, ('enclave', 'phi'), (), 'hosts.%s' % name[:64])
        if not isinstance(h['enclave'], str) or not isinstance(h['phi'], bool):
            bad('hosts.%s' % name[:64])
    if not isinstance(doc['principals'], list):
        bad('principals is not a list')
    principals = {}
    for p in doc['principals']:
        keys(p, ('id', 'kind', 'credentialSha256'), (), 'a principal')
        if not isinstance(p['id'], str) or not PRINCIPAL.match(p['id']) or not isinstance(p['kind'], str) or not re.match(r'^[a-z][a-z0-9-]{0,31}\Z', p['kind']) or not isinstance(p['credentialSha256'], str) or not HEX64.match(p['credentialSha256']):
            bad('principal %r' % str(p.get('id'))[:80])
        if p['id'] in principals:
            bad('principal %s twice' % p['id'])
        principals[p['id']] = p
    if not isinstance(doc['grants'], list):
        bad('grants is not a list')
    ids = set()
    for g in doc['grants']:
        keys(g, ('id', 'principal', 'model', 'version', 'digest', 'classification', 'actions', 'expiresAt', 'rateLimit'), (), 'a grant')
        if not isinstance(g['id'], str) or not 0 < len(g['id']) <= 128 or g['id'] in ids:
            bad('grant id')
        ids.add(g['id'])
        if g['principal'] not in principals:
            bad('grant %s names an unknown principal' % g['id'])
        if not isinstance(g['model'], str) or not NAME.match(g['model']) or len(g['model']) > 200:
            bad('grant %s: model' % g['id'])
        if not isinstance(g['version'], str) or not VERSION.match(g['version']):
            bad('grant %s: version' % g['id'])
        if not isinstance(g['digest'], str) or not re.match(r'^sha256:[0-9a-f]{64}\Z', g['digest']):
            bad('grant %s: digest' % g['id'])
        if g['classification'] not in ('public', 'internal', 'confidential', 'phi'):
            bad('grant %s: classification' % g['id'])
        if not isinstance(g['actions'], list) or not g['actions'] or any(a not in ('invoke', 'pull') for a in g['actions']):
            bad('grant %s: actions' % g['id'])
        if g['expiresAt'] is not None:
            g['_expires'] = iso(g['expiresAt'], 'grant %s: expiresAt' % g['id'])
        else:
            g['_expires'] = None
        rl = g['rateLimit']
        if rl is not None:
            keys(rl, ('requestsPerMinute',), (), 'grant %s: rateLimit' % g['id'])
            r = rl['requestsPerMinute']
            if not isinstance(r, int) or isinstance(r, bool) or r < 1 or r > 10 ** 7:
                bad('grant %s: requestsPerMinute' % g['id'])
    return doc


class Policy:
    def __init__(self, doc, sha):
        self.doc, self.sha, self.version = doc, sha, doc['version']
        self.by_cred = {}
        for p in doc['principals']:
            self.by_cred[p['credentialSha256']] = p['id']
        self.principals = {p['id']: p for p in doc['principals']}
        self.grants = {}  # principal -> [grant]
        self.known = set()  # (model, version) pairs anyone is granted: the only label values metrics take
        for g in doc['grants']:
            self.grants.setdefault(g['principal'], []).append(g)
            self.known.add((g['model'], g['version']))

    def principal_for(self, credential):
        h = hashlib.sha256(credential.encode('utf-8', 'surrogateescape')).hexdigest()
        # Constant-time compare against the one candidate (dict lookup by hash leaks nothing useful:
        # the hash of a high-entropy secret).
        pid = self.by_cred.get(h)
        if pid is not None and hmac.compare_digest(self.principals[pid]['credentialSha256'], h):
            return pid
        return None

    def live(self, principal, action, t):
        return [g for g in self.grants.get(principal, ()) if action in g['actions'] and (g['_expires'] is None or g['_expires'] > t)]


async def openssl_verify(pubkey_path, data, sig):
    """Ed25519 by the host's openssl (Python's standard library has none): True only for "Verified"."""
    with tempfile.TemporaryDirectory(prefix='airlock-gate-') as d:
        msg, sf = os.path.join(d, 'msg'), os.path.join(d, 'sig')
        with open(msg, 'wb') as f:
            f.write(data)
        with open(sf, 'wb') as f:
            f.write(sig)
        proc = await asyncio.create_subprocess_exec('openssl', 'pkeyutl', '-verify', '-pubin', '-inkey', pubkey_path, '-rawin', '-in', msg, '-sigfile', sf,
                                                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), 20)
        except asyncio.TimeoutError:
            proc.kill()
            return False
        return proc.returncode == 0 and b'Signature Verified Successfully' in out


# ------------------------------------------------------------------------------------------------
# Telemetry: SimHash, metrics
# ------------------------------------------------------------------------------------------------

def simhash(text):
    """64-bit SimHash of the text's word 3-shingles (lower-cased \\w+ words), hex; None for no words.

    Bit i of the sketch is set when more than half of the shingles' 64-bit hashes (the first 8 bytes
    of BLAKE2b-512 of the shingle's words joined by one space, so the same on every host) have bit i
    set. The per-bit counts are kept bit-sliced (plane k holds bit k of all 64 counters, added with
    carries) and compared with n/2 the same way, so a shingle costs a few integer operations instead
    of a 64-step loop: the sketch is computed on the request path."""
    words = WORD.findall(text.lower())
    if not words:
        return None
    n = max(1, len(words) - 2)
    planes = []
    b2 = hashlib.blake2b
    for i in range(n):
        carry = int.from_bytes(b2(' '.join(words[i:i + 3]).encode('utf-8', 'surrogateescape')).digest()[:8], 'big')
        for k in range(len(planes)):
            p = planes[k]
            planes[k] = p ^ carry
            carry &= p
            if not carry:
                break
        if carry:
            planes.append(carry)
    # counter > n // 2, bit-sliced, from the most significant plane down (the majority of n).
    t = n // 2
    top = max(len(planes), t.bit_length())
    gt, eq = 0, (1 << 64) - 1
    for k in range(top - 1, -1, -1):
        p = planes[k] if k < len(planes) else 0
        if (t >> k) & 1:
            eq &= p
        else:
            gt |= eq & p
            eq &= ~p
    return '%016x' % gt


def esc_label(s):
    return str(s).replace('\\', '\\\\').replace('"', '\\"').replace('\n', '\\n')


class Metrics:
    def __init__(self):
        self.requests = {}
        self.prompt = {}
        self.completion = {}
        self.rejections = {}
        self.tokens = {}

    def add(self, table, key, n=1):
        table[key] = table.get(key, 0) + n

    def text(self, policy_version):
        out = []

        def family(name, kind, help, table, labels):
            out.append('# HELP %s %s' % (name, help))
            out.append('# TYPE %s %s' % (name, kind))
            for key in sorted(table):
                out.append('%s{%s} %d' % (name, ','.join('%s="%s"' % (l, esc_label(v)) for l, v in zip(labels, key)), table[key]))

        family('airlock_gate_requests_total', 'counter', 'Requests the gate answered, by principal, model version and status.', self.requests, ('principal', 'model', 'version', 'status'))
        family('airlock_gate_prompt_tokens_total', 'counter', 'Prompt tokens of forwarded requests (from the upstream usage).', self.prompt, ('principal', 'model', 'version'))
        family('airlock_gate_completion_tokens_total', 'counter', 'Completion tokens of forwarded requests (from the upstream usage).', self.completion, ('principal', 'model', 'version'))
        family('airlock_gate_registry_tokens_total', 'counter', 'Registry tokens issued, by principal.', self.tokens, ('principal',))
        out.append('# HELP airlock_gate_policy_version Version of the policy in force (0: none).')
        out.append('# TYPE airlock_gate_policy_version gauge')
        out.append('airlock_gate_policy_version %d' % (policy_version or 0))
        family('airlock_gate_policy_rejections_total', 'counter', 'Policies refused, by reason.', self.rejections, ('reason',))
        return ('\n'.join(out) + '\n').encode()


# ------------------------------------------------------------------------------------------------
# HTTP plumbing
# ------------------------------------------------------------------------------------------------

if hasattr(asyncio, 'timeout'):  # 3.11+: a deadline on the running task, no extra task per read
    async def within(seconds, aw):
        async with asyncio.timeout(seconds):
            return await aw
else:  # 3.8-3.10 (Ubuntu 22.04's python3 is 3.10)
    async def within(seconds, aw):
        return await asyncio.wait_for(aw, seconds)


class BadRequest(Exception):
    def __init__(self, status, message, close=True):
        Exception.__init__(self, message)
        self.status, self.message, self.close = status, message, close


class Request:
    __slots__ = ('method', 'target', 'path', 'query', 'version', 'headers', 'body', 'keep_alive')


async def read_request(reader, writer=None):
    """One HTTP/1.1 request, bounded; None at a clean end of the connection."""
    try:
        head = await within(HEADER_TIMEOUT, reader.readuntil(b'\r\n\r\n'))
    except asyncio.IncompleteReadError as e:
        if not e.partial.strip():
            return None
        raise BadRequest(400, 'The request ended before its headers did.')
    except asyncio.LimitOverrunError:
        raise BadRequest(431, 'The request headers are larger than %d bytes.' % MAX_HEADER)
    except asyncio.TimeoutError:
        if not getattr(reader, '_buffer', b'?'):
            return None  # an idle kept-alive connection: close it quietly
        raise BadRequest(408, 'The request headers did not arrive in time.')
    try:
        text = head.decode('latin-1')
    except Exception:
        raise BadRequest(400, 'The request headers are not text.')
    lines = text[:-4].split('\r\n')
    parts = lines[0].split(' ')
    if len(parts) != 3 or not parts[0].isalpha() or not parts[1].startswith('/'):
        raise BadRequest(400, 'The request line is not "METHOD /path HTTP/1.1".')
    r = Request()
    r.method, r.target, r.version = parts
    if r.version not in ('HTTP/1.1', 'HTTP/1.0'):
        raise BadRequest(505, 'Only HTTP/1.1 and HTTP/1.0 are spoken here.')
    if len(lines) - 1 > MAX_HEADERS:
        raise BadRequest(431, 'More than %d request headers.' % MAX_HEADERS)
    h = {}
    for line in lines[1:]:
        name, sep, value = line.partition(':')
        if not sep or not TOKEN.match(name):
            raise BadRequest(400, 'A request header is malformed.')
        name = name.lower()
        value = value.strip()
        if name in h:
            if name in ('content-length', 'authorization', 'host', 'transfer-encoding'):
                raise BadRequest(400, 'The request repeats the %s header.' % name)
            h[name] += ', ' + value
        else:
            h[name] = value
    r.headers = h
    u = urlsplit(r.target)
    r.path, r.query = u.path, u.query
    conn = h.get('connection', '').lower()
    r.keep_alive = ('close' not in conn) if r.version == 'HTTP/1.1' else ('keep-alive' in conn)
    if 'transfer-encoding' in h:
        raise BadRequest(411, 'Send the request body with Content-Length, not Transfer-Encoding.')
    n = 0
    if 'content-length' in h:
        cl = h['content-length']
        if not cl.isdigit() or len(cl) > 12:
            raise BadRequest(400, 'Content-Length is not a number.')
        n = int(cl)
        if n > MAX_BODY:
            raise BadRequest(413, 'The request body is larger than %d bytes.' % MAX_BODY)
    if n and writer is not None and h.get('expect', '').lower() == '100-continue':
        writer.write(b'HTTP/1.1 100 Continue\r\n\r\n')  # curl waits a second for it on bodies > 1 KiB
    try:
        r.body = await within(BODY_TIMEOUT, reader.readexactly(n)) if n else b''
    except asyncio.IncompleteReadError:
        raise BadRequest(400, 'The request body is shorter than its Content-Length.')
    except asyncio.TimeoutError:
        raise BadRequest(408, 'The request body did not arrive in time.')
    return r


def response_bytes(status, body, headers=(), keep_alive=True, ctype='application/json'):
    if isinstance(body, (dict, list)):
        body = json.dumps(body, separators=(',', ':')).encode()
    lines = ['HTTP/1.1 %d %s' % (status, REASONS.get(status, 'Status')), 'Content-Type: ' + ctype, 'Content-Length: %d' % len(body), 'Cache-Control: no-store']
    for k, v in headers:
        lines.append('%s: %s' % (k, v))
    if not keep_alive:
        lines.append('Connection: close')
    return ('\r\n'.join(lines) + '\r\n\r\n').encode('latin-1') + body


def err_body(status, code, message):
    return {'error': {'code': code, 'message': message, 'status': status}}


async def read_head(reader):
    head = await reader.readuntil(b'\r\n\r\n')
    lines = head[:-4].decode('latin-1').split('\r\n')
    parts = lines[0].split(' ', 2)
    if len(parts) < 2 or not parts[1].isdigit():
        raise ValueError('bad upstream status line')
    headers = []
    for line in lines[1:]:
        k, _, v = line.partition(':')
        headers.append((k.strip(), v.strip()))
    return int(parts[1]), headers


async def chunks(reader):
    """The decoded chunks of a chunked body (trailers skipped)."""
    while True:
        line = await reader.readuntil(b'\r\n')
        size = int(line.split(b';', 1)[0].strip() or b'x', 16)
        if size == 0:
            while (await reader.readuntil(b'\r\n')) != b'\r\n':
                pass
            return
        data = await reader.readexactly(size)
        await reader.readexactly(2)
        yield data


class Usage:
    """Token counts from the upstream's `usage`: the JSON body's, or the last SSE chunk that carries one."""

    def __init__(self, sse):
        self.sse, self.prompt, self.completion, self.buf, self.body = sse, None, None, b'', []

    def take(self, u):
        if isinstance(u, dict):
            p, c = u.get('prompt_tokens'), u.get('completion_tokens')
            if isinstance(p, int) and not isinstance(p, bool):
                self.prompt = p
            if isinstance(c, int) and not isinstance(c, bool):
                self.completion = c

    def feed(self, data):
        if not self.sse:
            if sum(len(b) for b in self.body) < 4 * 1024 * 1024:
                self.body.append(data)
            return
        self.buf += data
        if b'\n' not in self.buf:
            if len(self.buf) > 1024 * 1024:
                self.buf = b''
            return
        lines = self.buf.split(b'\n')
        self.buf = lines.pop()
        for line in lines:
            if line.startswith(b'data:') and b'"usage"' in line:
                try:
                    self.take(json.loads(line[5:].strip()).get('usage'))
                except Exception:
                    pass

    def finish(self):
        if not self.sse and self.body:
            try:
                self.take(json.loads(b''.join(self.body)).get('usage'))
            except Exception:
                pass
            self.body = []


# ------------------------------------------------------------------------------------------------
# The gate
# ------------------------------------------------------------------------------------------------

class Gate:
    def __init__(self, config_path, state_dir, run_dir, log_dir):
        self.config_path = config_path
        self.dir = os.path.dirname(os.path.abspath(config_path))
        self.state_path = os.path.join(state_dir, 'state.json')
        self.status_path = os.path.join(run_dir, 'status.json')
        self.pid_path = os.path.join(run_dir, 'gate.pid')
        self.access_path = os.path.join(log_dir, 'access.log')
        self.gate_log_path = os.path.join(log_dir, 'gate.log')
        self.policy_path = os.path.join(self.dir, 'policy.json')
        self.sig_path = self.policy_path + '.sig'
        self.pubkey_path = os.path.join(self.dir, 'policy-signing.pem')
        for d in (state_dir, run_dir, log_dir):
            os.makedirs(d, mode=0o750, exist_ok=True)
        self.cfg = self.load_config()
        self.policy = None
        self.last_rejected = None
        self.loaded_at = None
        self.stamp = None
        self.metrics = Metrics()
        self.buckets = {}
        self.idle = []
        self.lock = None
        self.connections = 0
        self.access_log = open(self.access_path, 'ab', buffering=0)
        self.gate_log = open(self.gate_log_path, 'ab', buffering=0)
        self.highest = self.read_state()
        self.x5c = None
        if 'pull' in self.cfg['roles']:
            self.x5c = self.read_chain(self.cfg['registry']['chainFile'])

    # -- configuration and state -----------------------------------------------------------------

    def load_config(self):
        with open(self.config_path, 'rb') as f:
            cfg = json.loads(f.read(1024 * 1024))
        roles = cfg.get('roles')
        if not isinstance(roles, list) or not roles or any(r not in ('invoke', 'pull') for r in roles) or len(set(roles)) != len(roles):
            raise SystemExit('gate.json: roles must be ["invoke"], ["pull"] or both')
        for k in ('host', 'listen', 'metricsListen'):
            if not isinstance(cfg.get(k), str) or not cfg[k]:
                raise SystemExit('gate.json: %s is required' % k)
        if 'invoke' in roles and not isinstance(cfg.get('upstream'), str):
            raise SystemExit('gate.json: upstream is required for the invoke role')
        if 'pull' in roles:
            reg = cfg.get('registry')
            if not isinstance(reg, dict) or not all(isinstance(reg.get(k), str) and reg[k] for k in ('service', 'issuer', 'keyFile', 'chainFile')):
                raise SystemExit('gate.json: registry {service, issuer, keyFile, chainFile} is required for the pull role')
            ttl = reg.get('ttlSeconds', MAX_TTL)
            if not isinstance(ttl, int) or isinstance(ttl, bool) or not 1 <= ttl <= MAX_TTL:
                raise SystemExit('gate.json: registry.ttlSeconds must be 1..%d' % MAX_TTL)
            reg['ttlSeconds'] = ttl
        return cfg

    @staticmethod
    def read_chain(path):
        with open(path, 'r') as f:
            text = f.read()
        ders = [base64.b64encode(base64.b64decode(''.join(m.split()))).decode() for m in re.findall(r'-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----', text, re.S)]
        if not ders:
            raise SystemExit('%s holds no certificate' % path)
        return ders

    def read_state(self):
        try:
            with open(self.state_path, 'rb') as f:
                st = json.loads(f.read(65536))
            v = st.get('highestVersion')
            if isinstance(v, int) and v >= 1:
                return {'highestVersion': v, 'sha256': st.get('sha256')}
        except FileNotFoundError:
            return {'highestVersion': 0, 'sha256': None}
        except Exception:
            pass
        # A damaged state file must not reopen replay: refuse everything until a person looks.
        self.log('state', error='state.json is unreadable; no policy is accepted until it is repaired')
        return {'highestVersion': 2 ** 62, 'sha256': None}

    def log(self, event, **kw):
        kw['time'] = now_iso()
        kw['event'] = event
        try:
            self.gate_log.write((json.dumps(kw, sort_keys=True) + '\n').encode())
        except OSError:
            pass

    def access(self, **kw):
        kw['time'] = now_iso()
        try:
            self.access_log.write((json.dumps(kw, sort_keys=True, separators=(',', ':')) + '\n').encode())
        except OSError:
            pass

    def write_status(self):
        st = {'policyVersion': self.policy.version if self.policy else None, 'policySha256': self.policy.sha if self.policy else None,
              'loadedAt': self.loaded_at, 'lastRejected': self.last_rejected}
        try:
            write_atomic(self.status_path, (json.dumps(st, sort_keys=True) + '\n').encode())
        except OSError as e:
            self.log('status', error=str(e)[:200])

    # -- loading the policy ----------------------------------------------------------------------

    def file_stamp(self):
        out = []
        for p in (self.policy_path, self.sig_path, self.pubkey_path):
            try:
                s = os.stat(p)
                out.append((s.st_mtime_ns, s.st_size, s.st_ino))
            except OSError:
                out.append(None)
        return tuple(out)

    async def try_load(self):
        """One load attempt: raises Refused, or returns the new Policy."""
        try:
            with open(self.policy_path, 'rb') as f:
                data = f.read(MAX_POLICY + 1)
            with open(self.sig_path, 'rb') as f:
                sig_text = f.read(4096)
        except OSError as e:
            raise Refused('unreadable', '%s: %s' % (getattr(e, 'filename', '?'), e.strerror))
        if len(data) > MAX_POLICY:
            raise Refused('malformed', 'policy.json is larger than %d bytes' % MAX_POLICY)
        try:
            sig = base64.b64decode(sig_text.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise Refused('signature', 'policy.json.sig is not base64')
        if len(sig) != 64:
            raise Refused('signature', 'policy.json.sig is not an Ed25519 signature')
        if not os.path.exists(self.pubkey_path):
            raise Refused('unreadable', 'the pinned key policy-signing.pem is missing')
        if not await openssl_verify(self.pubkey_path, data, sig):
            raise Refused('signature', 'the signature does not verify with the pinned key')
        try:
            doc = json.loads(data.decode('utf-8'))
        except (UnicodeDecodeError, ValueError):
            raise Refused('malformed', 'policy.json is not UTF-8 JSON')
        check_policy(doc)
        sha = hashlib.sha256(data).hexdigest()
        v = doc['version']
        if v < self.highest['highestVersion'] or (v == self.highest['highestVersion'] and self.highest.get('sha256') not in (None, sha)):
            raise Refused('older', 'version %d is older than %d, the highest accepted' % (v, self.highest['highestVersion']), v)
        return Policy(doc, sha)

    async def reload(self, why):
        # One load at a time: SIGHUP and the poll may both ask.
        async with self.lock:
            await self.reload_locked(why)

    async def reload_locked(self, why):
        stamp = self.file_stamp()
        self.stamp = stamp
        try:
            for attempt in range(4):
                try:
                    pol = await self.try_load()
                    break
                except Refused as r:
                    # The console renames policy.json.sig and policy.json one after the other: a
                    # signature that fails while the files are still changing is a push in flight,
                    # not an attack. Look again shortly; log only a refusal of settled files.
                    if r.reason in ('signature', 'unreadable') and attempt < 3:
                        await asyncio.sleep(0.15)
                        again = self.file_stamp()
                        if again != stamp:
                            stamp = self.stamp = again
                            continue
                    raise
        except Refused as r:
            self.last_rejected = {'at': now_iso(), 'reason': r.reason, 'version': r.version}
            self.metrics.add(self.metrics.rejections, (r.reason,))
            self.log('policy-rejected', reason=r.reason, detail=r.detail, version=r.version, trigger=why,
                     inForce=self.policy.version if self.policy else None)
            self.write_status()
            return
        if self.policy is not None and pol.sha == self.policy.sha:
            return
        self.highest = {'highestVersion': pol.version, 'sha256': pol.sha}
        try:
            write_atomic(self.state_path, (json.dumps(self.highest, sort_keys=True) + '\n').encode(), 0o600)
        except OSError as e:
            # The newer policy still goes into force (it may be a revocation); only replay
            # protection across a restart is weakened until the disk is writable again.
            self.log('state-unwritable', error=str(e)[:200], version=pol.version)
        self.policy = pol
        self.loaded_at = now_iso()
        self.last_rejected = None
        live = {g['id'] for g in pol.doc['grants']}
        self.buckets = {k: b for k, b in self.buckets.items() if k[1] in live}
        self.log('policy-loaded', version=pol.version, sha256=pol.sha, trigger=why, grants=len(pol.doc['grants']))
        self.write_status()

    def hangup(self):
        # SIGHUP: reopen the logs (logrotate's postrotate sends it) and reload the policy now.
        for attr, path in (('access_log', self.access_path), ('gate_log', self.gate_log_path)):
            try:
                new = open(path, 'ab', buffering=0)
            except OSError:
                continue
            old, _ = getattr(self, attr), setattr(self, attr, new)
            old.close()
        asyncio.ensure_future(self.reload('sighup'))

    async def poll(self):
        while True:
            await asyncio.sleep(POLL_SECONDS)
            if self.file_stamp() != self.stamp:
                try:
                    await self.reload('changed')
                except Exception as e:  # the poll must outlive anything a load runs into
                    self.log('reload-error', error=repr(e)[:300])

    # -- invoke ----------------------------------------------------------------------------------

    def credential(self, req):
        a = req.headers.get('authorization')
        if a is None:
            return None
        scheme, _, rest = a.partition(' ')
        if scheme.lower() != 'bearer' or not rest.strip() or len(rest) > 512:
            return None
        return rest.strip()

    def take_token(self, principal, grant):
        rl = grant['rateLimit']
        if rl is None:
            return 0
        rate = rl['requestsPerMinute'] / 60.0
        cap = float(rl['requestsPerMinute'])
        key = (principal, grant['id'])
        t = time.monotonic()
        b = self.buckets.get(key)
        if b is None or b[2] != cap:
            b = [cap, t, cap]
        b[0] = min(cap, b[0] + (t - b[1]) * rate)
        b[1] = t
        self.buckets[key] = b
        if b[0] >= 1.0:
            b[0] -= 1.0
            return 0
        return max(1, math.ceil((1.0 - b[0]) / rate))

    def labels(self, principal, model, version):
        pol = self.policy
        if pol is None or (model, version) not in pol.known:
            model, version = '-', '-'
        return (principal or '-', model, version)

    async def invoke(self, req, writer, started):
        pol = self.policy
        rec = {'role': 'invoke', 'principal': None, 'model': None, 'version': None, 'status': None, 'promptTokens': None, 'completionTokens': None, 'latencyMs': None, 'simhash': None}
        prompt_text = [None]

        def done(status, body=None, headers=()):
            rec['status'] = status
            if body is not None:
                writer.write(response_bytes(status, body, headers, req.keep_alive))
            return status

        try:
            if pol is None:
                return done(503, err_body(503, 'no_policy', 'This gate has no valid policy from Airlock yet; nothing is served until one is pushed.'))
            if req.path in ('/health', '/v1/health'):
                return done(200, {'status': 'ok', 'policyVersion': pol.version})
            cred = self.credential(req)
            principal = pol.principal_for(cred) if cred else None
            if principal is None:
                return done(401, err_body(401, 'unauthenticated', 'Present an Airlock application credential as "Authorization: Bearer <credential>".'), [('WWW-Authenticate', 'Bearer realm="airlock-gate"')])
            rec['principal'] = principal
            t = time.time()
            grants = pol.live(principal, 'invoke', t)
            if req.path == '/v1/models' and req.method == 'GET':
                return await self.forward(req, writer, None, None, rec, grants)
            if req.method != 'POST' or req.path not in ('/v1/completions', '/v1/chat/completions', '/v1/embeddings'):
                code = 404 if req.method in ('GET', 'POST') else 405
                return done(code, err_body(code, 'not_found', 'The gate serves POST /v1/completions, /v1/chat/completions, /v1/embeddings and GET /v1/models.'))
            try:
                body = json.loads(req.body.decode('utf-8'))
            except (UnicodeDecodeError, ValueError, RecursionError):
                return done(400, err_body(400, 'bad_json', 'The request body is not UTF-8 JSON.'))
            if not isinstance(body, dict):
                return done(400, err_body(400, 'bad_json', 'The request body must be a JSON object.'))
            prompt_text[0] = prompt_of(body)
            name = body.get('model')
            if not isinstance(name, str) or not name or len(name) > 300:
                return done(400, err_body(400, 'no_model', 'Name the model as "model": "<model>:<version>".'))
            model, sep, version = name.partition(':')
            if sep:
                rec['model'], rec['version'] = model, version
                match = [g for g in grants if g['model'] == model and g['version'] == version]
            else:
                rec['model'] = model
                versions = sorted({g['version'] for g in grants if g['model'] == model})
                if len(versions) > 1:
                    return done(400, err_body(400, 'ambiguous_model', 'You are granted several versions of %s (%s); name one as "%s:<version>".' % (model, ', '.join(versions[:10]), model)))
                match = [g for g in grants if g['model'] == model]
                if match:
                    version = rec['version'] = match[0]['version']
            if not match:
                return done(403, err_body(403, 'not_granted', 'No unexpired invoke grant of this model version for %s.' % principal))
            host = pol.doc['hosts'].get(self.cfg['host'])
            if any(g['classification'] == 'phi' for g in match) and not (host and host['phi']):
                return done(403, err_body(403, 'phi_enclave', 'This version is classified PHI and this host is not in a PHI enclave; use the PHI endpoint.'))
            grant = min(match, key=lambda g: (g['rateLimit'] is not None, -(g['rateLimit'] or {}).get('requestsPerMinute', 0), g['id']))
            wait = self.take_token(principal, grant)
            if wait:
                return done(429, err_body(429, 'rate_limited', 'Over the rate limit of this grant (%d requests per minute).' % grant['rateLimit']['requestsPerMinute']), [('Retry-After', str(wait))])
            served = '%s:%s' % (model, version)
            if body['model'] != served:
                body['model'] = served
                fwd_body = json.dumps(body).encode()
            else:
                fwd_body = req.body
            return await self.forward(req, writer, fwd_body, body.get('stream') is True, rec, None)
        finally:
            rec['latencyMs'] = round((time.perf_counter() - started) * 1000, 2)
            if prompt_text[0]:
                try:
                    rec['simhash'] = simhash(prompt_text[0])
                except Exception:
                    rec['simhash'] = None
            self.metrics.add(self.metrics.requests, self.labels(rec['principal'], rec['model'], rec['version']) + (str(rec['status']),))
            if rec['promptTokens'] is not None or rec['completionTokens'] is not None:
                lab = self.labels(rec['principal'], rec['model'], rec['version'])
                self.metrics.add(self.metrics.prompt, lab, rec['promptTokens'] or 0)
                self.metrics.add(self.metrics.completion, lab, rec['completionTokens'] or 0)
            rec['policyVersion'] = pol.version if pol else None
            self.access(**rec)

    async def upstream(self):
        while self.idle:
            r, w = self.idle.pop()
            if not w.is_closing() and not r.at_eof():
                return r, w, True
            w.close()
        host, _, port = self.cfg['upstream'].rpartition(':')
        r, w = await asyncio.wait_for(asyncio.open_connection(host, int(port), limit=MAX_HEADER), CONNECT_TIMEOUT)
        return r, w, False

    async def forward(self, req, writer, body, stream, rec, models_filter):
        if body is None:
            body = b''
        head = ['%s %s HTTP/1.1' % (req.method, req.target), 'Host: %s' % self.cfg['upstream'], 'Content-Length: %d' % len(body)]
        for k, v in req.headers.items():
            if k not in HOP:
                head.append('%s: %s' % (k, v))
        data = ('\r\n'.join(head) + '\r\n\r\n').encode('latin-1') + body
        for attempt in (0, 1):
            try:
                ur, uw, reused = await self.upstream()
            except (OSError, asyncio.TimeoutError):
                rec['status'] = 502
                writer.write(response_bytes(502, err_body(502, 'upstream', 'The inference server does not answer.'), (), req.keep_alive))
                return 502
            try:
                uw.write(data)
                await uw.drain()
                status, headers = await within(UPSTREAM_IDLE, read_head(ur))
                break
            except (OSError, asyncio.IncompleteReadError, ValueError, asyncio.LimitOverrunError, asyncio.TimeoutError) as e:
                uw.close()
                if reused and attempt == 0 and not isinstance(e, asyncio.TimeoutError):
                    continue  # a kept-alive connection the server had closed: one fresh try
                rec['status'] = 502
                writer.write(response_bytes(502, err_body(502, 'upstream', 'The inference server broke the connection.'), (), req.keep_alive))
                return 502
        rec['status'] = status
        hmap = {k.lower(): v for k, v in headers}
        chunked = 'chunked' in hmap.get('transfer-encoding', '').lower()
        length = int(hmap['content-length']) if hmap.get('content-length', '').isdigit() else None
        reusable = (chunked or length is not None) and 'close' not in hmap.get('connection', '').lower()
        sse = 'text/event-stream' in hmap.get('content-type', '')
        usage = Usage(sse)
        out = ['HTTP/1.1 %d %s' % (status, REASONS.get(status, 'Status'))]
        for k, v in headers:
            if k.lower() not in HOP:
                out.append('%s: %s' % (k, v))
        try:
            if models_filter is not None:
                # Only what the principal may invoke; a list the gate cannot read is not passed on.
                if status != 200 or (length is None and not chunked) or (length or 0) > 4 * 1024 * 1024:
                    raise ValueError('unexpected model list')
                if chunked:
                    parts, size = [], 0
                    async for c in chunks(ur):
                        size += len(c)
                        if size > 4 * 1024 * 1024:
                            raise ValueError('model list too large')
                        parts.append(c)
                    doc = json.loads(b''.join(parts))
                else:
                    doc = json.loads(await ur.readexactly(length))
                allowed = {'%s:%s' % (g['model'], g['version']) for g in models_filter}
                if isinstance(doc, dict) and isinstance(doc.get('data'), list):
                    doc['data'] = [m for m in doc['data'] if isinstance(m, dict) and m.get('id') in allowed]
                payload = json.dumps(doc).encode()
                out.append('Content-Length: %d' % len(payload))
                writer.write(('\r\n'.join(out) + '\r\n' + ('' if req.keep_alive else 'Connection: close\r\n') + '\r\n').encode('latin-1') + payload)
            elif chunked:
                out.append('Transfer-Encoding: chunked')
                writer.write(('\r\n'.join(out) + '\r\n' + ('' if req.keep_alive else 'Connection: close\r\n') + '\r\n').encode('latin-1'))
                async for c in chunks(ur):
                    usage.feed(c)
                    writer.write(b'%x\r\n%s\r\n' % (len(c), c))
                    await writer.drain()
                writer.write(b'0\r\n\r\n')
            elif length is not None and length <= 256 * 1024 and not sse:
                # A small whole answer (the usual JSON completion): head and body in one send.
                data = await ur.readexactly(length)
                usage.feed(data)
                out.append('Content-Length: %d' % length)
                writer.write(('\r\n'.join(out) + '\r\n' + ('' if req.keep_alive else 'Connection: close\r\n') + '\r\n').encode('latin-1') + data)
            else:
                if length is not None:
                    out.append('Content-Length: %d' % length)
                else:
                    req.keep_alive = False
                writer.write(('\r\n'.join(out) + '\r\n' + ('' if req.keep_alive else 'Connection: close\r\n') + '\r\n').encode('latin-1'))
                left = length if length is not None else -1
                while left != 0:
                    c = await ur.read(65536 if left < 0 else min(65536, left))
                    if not c:
                        break
                    usage.feed(c)
                    writer.write(c)
                    if left > 0:
                        left -= len(c)
                    if len(c) >= 65536 or sse:
                        await writer.drain()
                if left > 0:
                    reusable = False
                    req.keep_alive = False
        except (OSError, asyncio.IncompleteReadError, ValueError, asyncio.LimitOverrunError):
            reusable = False
            req.keep_alive = False
            if models_filter is not None and not writer.is_closing():
                rec['status'] = 502
                writer.write(response_bytes(502, err_body(502, 'upstream', 'The inference server gave a model list the gate cannot read.'), (), False))
        usage.finish()
        rec['promptTokens'], rec['completionTokens'] = usage.prompt, usage.completion
        if reusable and len(self.idle) < MAX_IDLE_UPSTREAM:
            self.idle.append((ur, uw))
        else:
            uw.close()
        return status

    # -- pull (registry token realm) -------------------------------------------------------------

    async def token(self, req, writer):
        pol = self.policy
        reg = self.cfg['registry']
        rec = {'role': 'pull', 'principal': None, 'scope': None, 'granted': None, 'expiresAt': None, 'status': None}

        def done(status, body, headers=()):
            rec['status'] = status
            writer.write(response_bytes(status, body, headers, req.keep_alive))
            self.access(**rec)

        if pol is None:
            return done(503, err_body(503, 'no_policy', 'This gate has no valid policy from Airlock yet; no registry token is issued.'))
        if req.method != 'GET':
            return done(405, err_body(405, 'method', 'GET /token'))
        q = parse_qsl(req.query, keep_blank_values=True, max_num_fields=50) if len(req.query) < 8192 else None
        if q is None:
            return done(400, err_body(400, 'bad_query', 'The token request query is too long.'))
        service = [v for k, v in q if k == 'service']
        scopes = [v for k, v in q if k == 'scope']
        rec['scope'] = ' '.join(scopes)[:2000]
        if service and service[-1] != reg['service']:
            return done(400, err_body(400, 'bad_service', 'This realm issues tokens for the service %s only.' % reg['service']))
        principal = None
        a = req.headers.get('authorization', '')
        scheme, _, rest = a.partition(' ')
        if scheme.lower() == 'basic' and rest and len(rest) < 2048:
            try:
                user, sep, cred = base64.b64decode(rest.strip(), validate=True).decode('utf-8').rpartition(':')
            except (binascii.Error, ValueError, UnicodeDecodeError):
                user, sep, cred = '', '', ''
            if sep:
                pid = pol.principal_for(cred)
                if pid is not None and hmac.compare_digest(pid.encode(), user.encode()):
                    principal = pid
        if principal is None:
            return done(401, err_body(401, 'unauthenticated', 'Authenticate with HTTP Basic: username = the principal id, password = its Airlock credential.'), [('WWW-Authenticate', 'Basic realm="airlock-registry"')])
        rec['principal'] = principal
        t = time.time()
        pullable = {}
        for g in pol.live(principal, 'pull', t):
            # A repository's latest expiry among the principal's grants of it (None: never).
            name, e = 'models/' + g['model'], g['_expires']
            if name not in pullable:
                pullable[name] = e
            elif pullable[name] is not None:
                pullable[name] = None if e is None else max(pullable[name], e)
        access = []
        for s in ' '.join(scopes).split():
            m = re.match(r'^repository:([^:]+):([a-z,*]+)\Z', s)
            if not m:
                return done(400, err_body(400, 'bad_scope', 'A scope must be repository:<name>:<actions>.'))
            name, actions = m.group(1), m.group(2).split(',')
            if name in pullable and ('pull' in actions or '*' in actions) and not any(a['name'] == name for a in access):
                access.append({'type': 'repository', 'name': name, 'actions': ['pull']})
        now = int(t)
        # A token never outlives the grants behind it: a grant that expires in 30 s gives 30 s.
        exp = now + min(reg['ttlSeconds'], MAX_TTL)
        for a in access:
            if pullable[a['name']] is not None:
                exp = min(exp, max(now + 1, int(pullable[a['name']])))
        ttl = exp - now
        claims = {'iss': reg['issuer'], 'sub': principal, 'aud': reg['service'], 'exp': exp, 'nbf': now - 1, 'iat': now,
                  'jti': os.urandom(16).hex(), 'access': access}
        header = {'typ': 'JWT', 'alg': 'ES256', 'x5c': self.x5c}
        b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b'=').decode()
        signing_input = '%s.%s' % (b64(json.dumps(header, separators=(',', ':')).encode()), b64(json.dumps(claims, separators=(',', ':')).encode()))
        try:
            sig = await es256(reg['keyFile'], signing_input.encode())
        except Exception as e:
            self.log('token-signing-failed', error=str(e)[:200])
            return done(503, err_body(503, 'signing', 'The realm cannot sign tokens (its key is unreadable); Airlock must renew it.'))
        tok = signing_input + '.' + b64(sig)
        rec['granted'] = ' '.join('repository:%s:pull' % a['name'] for a in access)
        rec['expiresAt'] = now_iso(exp)
        rec['jti'] = claims['jti']
        self.metrics.add(self.metrics.tokens, (principal,))
        done(200, {'token': tok, 'access_token': tok, 'expires_in': ttl, 'issued_at': now_iso(now)})

    # -- connections -----------------------------------------------------------------------------

    async def client(self, reader, writer):
        if self.connections >= MAX_CONNECTIONS:
            # Slow clients holding sockets must not take the file descriptors everyone else needs.
            writer.write(response_bytes(503, err_body(503, 'busy', 'The gate has too many open connections; retry shortly.'), [('Retry-After', '1')], False))
            writer.close()
            return
        self.connections += 1
        try:
            while True:
                try:
                    req = await read_request(reader, writer)
                except BadRequest as e:
                    writer.write(response_bytes(e.status, err_body(e.status, 'bad_request', e.message), (), False))
                    self.metrics.add(self.metrics.requests, ('-', '-', '-', str(e.status)))
                    self.access(role='http', principal=None, status=e.status, latencyMs=None)
                    await linger(reader, writer)
                    break
                if req is None:
                    break
                started = time.perf_counter()
                roles = self.cfg['roles']
                if 'pull' in roles and req.path == '/token':
                    await self.token(req, writer)
                elif 'invoke' in roles:
                    await self.invoke(req, writer, started)
                else:
                    writer.write(response_bytes(404 if self.policy else 503, err_body(404, 'not_found', 'This realm serves GET /token.'), (), req.keep_alive))
                await writer.drain()
                if not req.keep_alive:
                    break
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        except Exception as e:  # never let one connection take the gate down
            self.log('connection-error', error=repr(e)[:300])
        finally:
            self.connections -= 1
            try:
                writer.close()
            except Exception:
                pass

    async def metrics_client(self, reader, writer):
        try:
            req = await read_request(reader)
            if req is not None:
                if req.path == '/metrics':
                    writer.write(response_bytes(200, self.metrics.text(self.policy.version if self.policy else None), (), False, 'text/plain; version=0.0.4; charset=utf-8'))
                else:
                    writer.write(response_bytes(404, err_body(404, 'not_found', 'GET /metrics'), (), False))
                await writer.drain()
        except BadRequest as e:
            writer.write(response_bytes(e.status, err_body(e.status, 'bad_request', e.message), (), False))
        except Exception:
            pass
        finally:
            writer.close()

    async def run(self):
        loop = asyncio.get_running_loop()
        self.lock = asyncio.Lock()
        await self.reload('start')
        loop.add_signal_handler(signal.SIGHUP, self.hangup)
        stop = loop.create_future()
        for s in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(s, lambda: stop.done() or stop.set_result(None))
        h, _, p = self.cfg['listen'].rpartition(':')
        server = await asyncio.start_server(self.client, h, int(p), limit=MAX_HEADER, reuse_address=True, backlog=1024)
        mh, _, mp = self.cfg['metricsListen'].rpartition(':')
        mserver = await asyncio.start_server(self.metrics_client, mh, int(mp), limit=MAX_HEADER, reuse_address=True)
        write_atomic(self.pid_path, ('%d\n' % os.getpid()).encode())
        self.log('started', roles=self.cfg['roles'], listen=self.cfg['listen'], metricsListen=self.cfg['metricsListen'], policyVersion=self.policy.version if self.policy else None)
        sys.stdout.write('airlock-gate: serving %s on %s, metrics on %s, policy %s\n' % ('+'.join(self.cfg['roles']), self.cfg['listen'], self.cfg['metricsListen'], self.policy.version if self.policy else 'none (503 for everything)'))
        sys.stdout.flush()
        poller = asyncio.ensure_future(self.poll())
        await stop
        poller.cancel()
        server.close()
        mserver.close()
        self.log('stopped')


async def linger(reader, writer):
    """After an error answer, half-close and discard what the client still sends (bounded), so the
    kernel does not reset the connection over unread bytes before the client has read the answer."""
    try:
        await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
        deadline = time.monotonic() + 2.0
        seen = 0
        while seen < 4 * MAX_BODY:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            c = await asyncio.wait_for(reader.read(65536), left)
            if not c:
                break
            seen += len(c)
    except Exception:
        pass


def prompt_of(body):
    """The prompt text of an OpenAI-style request, for the SimHash only (never stored)."""
    p = body.get('prompt')
    if p is None:
        p = body.get('input')
    if isinstance(p, str):
        return p
    if isinstance(p, list):
        return '\n'.join(x for x in p if isinstance(x, str))
    msgs = body.get('messages')
    if isinstance(msgs, list):
        parts = []
        for m in msgs:
            c = m.get('content') if isinstance(m, dict) else None
            if isinstance(c, str):
                parts.append(c)
            elif isinstance(c, list):
                parts.extend(x.get('text') for x in c if isinstance(x, dict) and isinstance(x.get('text'), str))
        return '\n'.join(parts)
    return None


async def es256(key_file, data):
    """ES256 over data with the P-256 key in key_file, by openssl; the JWS form r||s (RFC 7518 3.4)."""
    proc = await asyncio.create_subprocess_exec('openssl', 'dgst', '-sha256', '-sign', key_file, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, errtext = await asyncio.wait_for(proc.communicate(data), 20)
    if proc.returncode != 0:
        raise RuntimeError('openssl dgst -sign: %s' % errtext.decode('utf-8', 'replace')[:200])
    # DER: SEQUENCE { INTEGER r, INTEGER s }
    def length(b, i):
        n = b[i]
        if n < 0x80:
            return n, i + 1
        k = n & 0x7f
        return int.from_bytes(b[i + 1:i + 1 + k], 'big'), i + 1 + k

    if not out or out[0] != 0x30:
        raise RuntimeError('openssl gave no ECDSA signature')
    _, i = length(out, 1)
    ints = []
    for _ in range(2):
        if out[i] != 0x02:
            raise RuntimeError('openssl gave no ECDSA signature')
        n, i = length(out, i + 1)
        ints.append(int.from_bytes(out[i:i + n], 'big'))
        i += n
    return b''.join(x.to_bytes(32, 'big') for x in ints)


def main(argv):
    import argparse
    ap = argparse.ArgumentParser(prog='airlock-gate', description="Airlock's gate: enforces Airlock's signed policy on this host.")
    ap.add_argument('--config', default='/etc/airlock/gate/gate.json')
    ap.add_argument('--state-dir', default='/var/lib/airlock-gate')
    ap.add_argument('--run-dir', default='/run/airlock-gate')
    ap.add_argument('--log-dir', default='/var/log/airlock-gate')
    ap.add_argument('--simhash', metavar='TEXT', help='print the SimHash of TEXT and exit (for tests)')
    a = ap.parse_args(argv)
    if a.simhash is not None:
        print(simhash(a.simhash))
        return 0
    os.umask(0o027)
    try:  # room for MAX_CONNECTIONS clients and their upstream connections, within the hard limit
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = 4 * MAX_CONNECTIONS if hard == resource.RLIM_INFINITY else min(hard, 4 * MAX_CONNECTIONS)
        if soft != resource.RLIM_INFINITY and soft < want:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    except (ImportError, ValueError, OSError):
        pass
    gate = Gate(a.config, a.state_dir, a.run_dir, a.log_dir)
    asyncio.run(gate.run())
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
