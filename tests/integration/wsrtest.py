"""Shared helpers for the wsrouted integration tests.

Everything here talks to a real daemon over loopback (TCP or AF_UNIX):

* Daemon        -- writes a config, starts the binary, waits until it listens,
                   stops it by PID (SIGTERM, then SIGKILL after 10 s).
* WSClient      -- a raw RFC 6455 client on a plain socket: handshake,
                   hand-built (possibly invalid) client frames, server frame
                   reader with timeouts, close-frame and EOF assertions.
* http_exchange -- send raw bytes, read an HTTP answer until the server closes.

Every wait is bounded by a deadline; no helper loops forever.
"""

import base64
import hashlib
import os
import re
import resource
import signal
import socket
import struct
import subprocess
import time

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

OP_CONT = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA

HERE = os.path.dirname(os.path.abspath(__file__))

# Set by `make check-valgrind` (the daemon runs under memcheck, 20-50x
# slower): tests whose assertions are about time or RSS skip themselves.
UNDER_VALGRIND = bool(os.environ.get("WSROUTED_UNDER_VALGRIND"))
# The plugins built for the tests (tests/plugins), and the daemon built with
# ThreadSanitizer for the "tsan" variant of the plugin tests.
TEST_PLUGIN_DIR = os.path.abspath(os.environ.get("WSROUTED_TEST_PLUGIN_DIR")
                                  or os.path.join(HERE, "..", "plugins"))
TSAN_BIN = os.environ.get("WSROUTED_TSAN_BIN", "")


def daemon_binary():
    """Absolute path of the daemon under test ($WSROUTED_BIN or ../../daemon/wsrouted)."""
    path = os.environ.get("WSROUTED_BIN") or os.path.join(HERE, "..", "..", "daemon", "wsrouted")
    return os.path.abspath(path)


def raise_nofile(want=4096):
    """Raise the soft RLIMIT_NOFILE (inherited by the daemon) up to the hard limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def free_port(host="127.0.0.1", family=socket.AF_INET):
    """A currently free loopback port (bind to port 0, read it, close)."""
    s = socket.socket(family, socket.SOCK_STREAM)
    try:
        s.bind((host, 0))
        return s.getsockname()[1]
    finally:
        s.close()


# ---------------------------------------------------------------- configs

# Default test config: short timers, no pings (they would interleave with
# the frames the tests expect), small shutdown timeout, every close at once
# on SIGTERM (drain_window = 0; test_drain.py spreads them).
BASE_CONFIG = """\
[server]
listen = 127.0.0.1:{port}
log_level = debug
handshake_timeout = 5s
shutdown_timeout = 2s
drain_window = 0
ping_period = 0
timeout = 0
close_timeout = 500ms
{server_extra}
[route /echo]
handler = echo
{route_extra}
"""


def make_config(server_extra="", route_extra="", more="", **server):
    """BASE_CONFIG with extra [server] / [route /echo] lines and more sections;
    keyword arguments replace [server] values (e.g. timeout="1s")."""
    text = BASE_CONFIG.replace("{server_extra}", server_extra).replace("{route_extra}", route_extra)
    return set_server(text, **server) + more


def set_server(cfg, **kv):
    """Replace the first `key = ...` line (the [server] one) for each key; asserts it exists."""
    for key, value in kv.items():
        cfg, n = re.subn(r"^%s = .*$" % re.escape(key), "%s = %s" % (key, value), cfg,
                         count=1, flags=re.M)
        assert n == 1, "no '%s' line in the config template" % key
    return cfg


# ---------------------------------------------------------------- daemon


def root_opt_in(text):
    """The daemon refuses to run as root without `user =` unless `allow_root = yes`.
    The test suite runs as root in a throw-away container and wants no privilege
    drop, so configs started by Daemon get `allow_root = yes` right after
    `[server]` unless they say something about user/allow_root themselves
    (error line numbers in such logs are therefore one higher)."""
    if os.geteuid() != 0 or re.search(r"^\s*(user|allow_root)\s*=", text, re.M):
        return text
    return re.sub(r"^\[server\][ \t]*\n", "[server]\nallow_root = yes\n", text, count=1,
                  flags=re.M)



# WSR_TEST_WORKERS=N: every daemon the harness writes a config for runs with
# `workers = N` (the whole suite then exercises the threaded path).
TEST_WORKERS = os.environ.get("WSR_TEST_WORKERS", "")


# The plugins of the tree that declare WSR_HANDLER_PER_LOOP: they run with
# workers = N (one instance per worker); every other plugin needs workers = 1.
PER_LOOP_PLUGINS = ("uppercase", "threaded", "perloop")


def workers_opt_in(text, tmpdir):
    """With WSR_TEST_WORKERS set, add `workers = N` through conf.d/ beside the
    config (read after the main file), so the main file's line numbers stay as
    the test wrote them. Configs that say `workers` themselves, turn conf.d off,
    or have a route with a plugin that needs workers = 1 are left alone."""
    plugins = re.findall(r"^\s*handler\s*=\s*plugin:(\S*)", text, re.M)
    if not TEST_WORKERS or re.search(r"^\s*(workers|include_default)\s*=", text, re.M) or \
            any(p not in PER_LOOP_PLUGINS for p in plugins) or \
            not re.search(r"^\[server\]", text, re.M):
        return
    confd = os.path.join(tmpdir, "conf.d")
    os.makedirs(confd, exist_ok=True)
    with open(os.path.join(confd, "zz-test-workers.ini"), "w") as f:
        f.write("[server]\nworkers = %s\n" % TEST_WORKERS)


class DaemonError(AssertionError):
    pass


class Daemon:
    """One wsrouted process started from a config template.

    The template may use {port} (a free loopback TCP port, also self.port),
    {port2} (a second one), {tmp} (the tmp dir). It is written to
    TMP/wsrouted.ini; stdout+stderr go to TMP/wsrouted.log.
    """

    def __init__(self, tmpdir, config, ready=None, args=None, binary=None):
        self.tmpdir = str(tmpdir)
        self.binary = binary or daemon_binary()
        self.template = config
        self.args = list(args or [])
        self.ready = ready  # None: TCP {port}; str: AF_UNIX path; False: don't wait
        self.proc = None
        self.port = None
        self.port2 = None
        self.rendered = ""
        self.conf_path = os.path.join(self.tmpdir, "wsrouted.ini")
        self.log_path = os.path.join(self.tmpdir, "wsrouted.log")
        self.returncode = None
        self.stopped_by_test = False
        self._logf = None

    # -- config / process

    def render(self):
        self.port = free_port()
        self.port2 = free_port()
        while self.port2 == self.port:  # bounded in practice; ports are random
            self.port2 = free_port()
        text = self.template.replace("{port}", str(self.port)).replace(
            "{port2}", str(self.port2)).replace("{tmp}", self.tmpdir)
        text = root_opt_in(text)
        self.rendered = text
        with open(self.conf_path, "w") as f:
            f.write(text)
        workers_opt_in(text, self.tmpdir)
        return text

    def start(self, attempts=3):
        if not os.path.exists(self.binary):
            raise DaemonError("daemon binary not found: %s (set WSROUTED_BIN)" % self.binary)
        last = None
        for _ in range(attempts):
            self.render()
            self._spawn()
            if self.ready is False:
                return self
            try:
                # memcheck starts the daemon ~20 times slower, more on a busy machine.
                self.wait_ready(30.0 if UNDER_VALGRIND else 5.0)
                return self
            except DaemonError as e:
                last = e
                # Retry only the "port got taken in between" race.
                if self.proc.poll() is None or "in use" not in self.log_text().lower():
                    raise
        raise last

    def _spawn(self):
        if self._logf:
            self._logf.close()
        self._logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [self.binary, "-c", self.conf_path] + self.args,
            stdin=subprocess.DEVNULL, stdout=self._logf, stderr=subprocess.STDOUT,
            cwd=self.tmpdir)
        self.returncode = None

    @property
    def pid(self):
        return self.proc.pid

    def wait_ready(self, timeout=5.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rc = self.proc.poll()
            if rc is not None:
                self.returncode = rc
                raise DaemonError("daemon exited with status %s before listening; log:\n%s"
                                  % (rc, self.log_text()))
            try:
                if isinstance(self.ready, str):
                    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    s.settimeout(0.5)
                    s.connect(self.ready)
                else:
                    s = socket.create_connection(("127.0.0.1", self.port), timeout=0.5)
                # The kernel completes connects once the socket listens,
                # before the daemon has finished starting (its worker
                # threads' descriptors, say: tests that count fds from here
                # saw one more later). Our FIN answered by the daemon's
                # close means its event loop runs, so start-up is over.
                try:
                    s.shutdown(socket.SHUT_WR)
                    s.settimeout(max(0.05, deadline - time.monotonic()))
                    for _ in range(64):
                        if not s.recv(4096):
                            break
                finally:
                    s.close()
                # Listeners open one after another: a second 127.0.0.1 one
                # may lag the first (by long enough to matter under valgrind).
                if self.port2 and re.search(r"^\s*listen\s*=\s*127\.0\.0\.1:%d\b" % self.port2,
                                            self.rendered, re.M):
                    socket.create_connection(("127.0.0.1", self.port2), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.02)
        raise DaemonError("daemon did not accept connections within %.1fs; log:\n%s"
                          % (timeout, self.log_text()))

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def send_signal(self, sig):
        if self.alive():
            os.kill(self.proc.pid, sig)

    def wait(self, timeout):
        """Wait for exit; returns the status or None if still running."""
        try:
            self.returncode = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        return self.returncode

    def stop(self, sig=signal.SIGTERM, timeout=10.0):
        """SIGTERM (by PID), wait <= timeout, then SIGKILL. Returns (status, killed)."""
        if self.proc is None:
            return None, False
        killed = False
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, sig)
            except ProcessLookupError:
                pass
            if self.wait(timeout) is None:
                killed = True
                try:
                    os.kill(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.wait(5.0)
        self.returncode = self.proc.poll()
        if self._logf:
            self._logf.close()
            self._logf = None
        return self.returncode, killed

    # -- observation

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_tail(self, n=40):
        return "\n".join(self.log_text().splitlines()[-n:])

    def status_kb(self, field):
        """A field of /proc/PID/status in kB (VmRSS, VmHWM)."""
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        raise DaemonError("no %s in /proc/%d/status" % (field, self.proc.pid))

    def rss_kb(self):
        return self.status_kb("VmRSS")

    def num_fds(self):
        return len(os.listdir("/proc/%d/fd" % self.proc.pid))

    def fd_targets(self):
        """What each descriptor is ("4 -> socket:[123]"), for failure messages."""
        out = []
        for fd in sorted(os.listdir("/proc/%d/fd" % self.proc.pid), key=int):
            try:
                out.append("%s -> %s" % (fd, os.readlink("/proc/%d/fd/%s" % (self.proc.pid, fd))))
            except OSError:
                pass
        return out

    # -- clients

    def connect(self, path="/echo", **kw):
        """Raw websocket client after a successful (asserted 101) handshake."""
        addr = kw.pop("addr", None) or ("127.0.0.1", self.port)
        return WSClient.connect(addr, path, **kw)

    def uri(self, path="/echo"):
        return "ws://127.0.0.1:%d%s" % (self.port, path)


def run_daemon(args, timeout=10.0, binary=None):
    """Run the binary to completion (for -t, -v, -h); returns CompletedProcess."""
    return subprocess.run([binary or daemon_binary()] + list(args), stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)


# ---------------------------------------------------------------- frames


def mask_bytes(data, key):
    n = len(data)
    if n == 0:
        return b""
    k = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(k, "big")).to_bytes(n, "big")


def build_frame(opcode, payload=b"", fin=True, rsv=0, mask=True, mask_key=None,
                length=None, len_form=None):
    """A client frame.

    rsv      -- 3-bit value (4 = RSV1, 2 = RSV2, 1 = RSV3)
    mask     -- False sends the payload unmasked (MASK bit clear)
    length   -- declared payload length (default len(payload)); may lie
    len_form -- force the length encoding: 7, 16 or 64 (default: minimal)
    """
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    n = len(payload) if length is None else length
    b0 = (0x80 if fin else 0) | ((rsv & 7) << 4) | (opcode & 0xF)
    mbit = 0x80 if mask else 0
    if len_form is None:
        len_form = 7 if n < 126 else (16 if n < 65536 else 64)
    if len_form == 7:
        head = struct.pack("!BB", b0, mbit | n)
    elif len_form == 16:
        head = struct.pack("!BBH", b0, mbit | 126, n)
    else:
        head = struct.pack("!BBQ", b0, mbit | 127, n)
    if mask:
        key = mask_key if mask_key is not None else os.urandom(4)
        return head + key + mask_bytes(payload, key)
    return head + payload


def close_payload(code=None, reason=b""):
    if code is None:
        return b""
    if isinstance(reason, str):
        reason = reason.encode("utf-8")
    return struct.pack("!H", code) + reason


class Frame:
    __slots__ = ("fin", "rsv", "opcode", "payload", "masked")

    def __init__(self, fin, rsv, opcode, payload, masked):
        self.fin, self.rsv, self.opcode, self.payload, self.masked = fin, rsv, opcode, payload, masked

    def __repr__(self):
        p = self.payload if len(self.payload) <= 40 else self.payload[:40] + b"..."
        return "Frame(fin=%s rsv=%d op=%#x len=%d masked=%s %r)" % (
            self.fin, self.rsv, self.opcode, len(self.payload), self.masked, p)

    def close_code(self):
        assert self.opcode == OP_CLOSE, self
        if len(self.payload) < 2:
            return None, self.payload
        return struct.unpack("!H", self.payload[:2])[0], self.payload[2:]


class ConnectionEnded(AssertionError):
    """The server closed the TCP connection while we expected data."""


class WSTimeout(AssertionError):
    """Nothing (or not enough) arrived in time."""


def parse_head(head):
    """b'HTTP/1.1 101 ...\\r\\nName: v\\r\\n...' -> (status, reason, {lower name: [values]})."""
    lines = head.decode("latin-1").split("\r\n")
    m = re.match(r"HTTP/1\.1 (\d{3})(?: (.*))?$", lines[0])
    if not m:
        raise AssertionError("bad status line: %r" % lines[0])
    headers = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        assert sep, "bad header line %r" % line
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    return int(m.group(1)), m.group(2) or "", headers


def expected_accept(key):
    return base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()


def make_key():
    return base64.b64encode(os.urandom(16)).decode()


def handshake_request(path="/echo", host="127.0.0.1", key=None, extra=None, drop=(),
                      method="GET", version="HTTP/1.1"):
    """Bytes of an upgrade request; extra: list of (name, value); drop: header names to omit."""
    key = key or make_key()
    hdrs = [("Host", host), ("Upgrade", "websocket"), ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", key), ("Sec-WebSocket-Version", "13")]
    lower_drop = {d.lower() for d in drop}
    hdrs = [(n, v) for (n, v) in hdrs if n.lower() not in lower_drop]
    hdrs += list(extra or [])
    text = "%s %s %s\r\n" % (method, path, version)
    text += "".join("%s: %s\r\n" % (n, v) for n, v in hdrs) + "\r\n"
    return text.encode("latin-1"), key


def open_socket(addr, timeout=5.0):
    if isinstance(addr, str):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(addr)
    else:
        fam = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(addr)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


class WSClient:
    """A raw websocket client. Server frames are parsed strictly."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()
        self.status = None
        self.reason = None
        self.headers = {}
        self.key = None
        self.last_len_form = None

    # -- connection

    @classmethod
    def connect(cls, addr, path="/echo", extra=None, early=b"", expect=101, timeout=5.0,
                request=None):
        """Connect + handshake. early: bytes sent in the same send() as the head.
        expect: asserted status (None: don't assert)."""
        s = open_socket(addr, timeout)
        c = cls(s)
        if request is None:
            request, c.key = handshake_request(path, extra=extra)
        s.sendall(request + early)
        c.read_head(timeout)
        if expect is not None:
            assert c.status == expect, "expected HTTP %s, got %s %s %r" % (
                expect, c.status, c.reason, c.headers)
        if c.status == 101 and c.key:
            acc = c.headers.get("sec-websocket-accept", [None])[0]
            assert acc == expected_accept(c.key), "bad Sec-WebSocket-Accept %r" % acc
        return c

    def read_head(self, timeout=5.0):
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in self.buf:
            if len(self.buf) > 65536:
                raise AssertionError("response head too long")
            self._fill(deadline, "HTTP response head")
        i = self.buf.index(b"\r\n\r\n")
        head = bytes(self.buf[:i])
        del self.buf[:i + 4]
        self.status, self.reason, self.headers = parse_head(head)
        return self.status

    def header(self, name):
        v = self.headers.get(name.lower())
        return v[0] if v else None

    def close_socket(self):
        try:
            self.sock.close()
        except OSError:
            pass

    # -- low level

    def _fill(self, deadline, what):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise WSTimeout("timed out waiting for %s (have %d bytes)" % (what, len(self.buf)))
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(1 << 20)
        except socket.timeout:
            raise WSTimeout("timed out waiting for %s (have %d bytes)" % (what, len(self.buf)))
        except ConnectionResetError:
            raise ConnectionEnded("connection reset while waiting for %s" % what)
        if not data:
            raise ConnectionEnded("server closed the connection while waiting for %s "
                                  "(have %d bytes)" % (what, len(self.buf)))
        self.buf += data

    def _take(self, n, deadline, what):
        while len(self.buf) < n:
            self._fill(deadline, what)
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def send_raw(self, data):
        self.sock.sendall(data)

    def send_frame(self, opcode, payload=b"", **kw):
        self.sock.sendall(build_frame(opcode, payload, **kw))

    def send_text(self, text, **kw):
        self.send_frame(OP_TEXT, text.encode("utf-8") if isinstance(text, str) else text, **kw)

    def send_binary(self, data, **kw):
        self.send_frame(OP_BINARY, data, **kw)

    def send_close(self, code=None, reason=b"", **kw):
        try:
            self.send_frame(OP_CLOSE, close_payload(code, reason), **kw)
        except (BrokenPipeError, ConnectionResetError):
            pass

    # -- server frames

    def read_frame(self, timeout=3.0):
        deadline = time.monotonic() + timeout
        b0, b1 = self._take(2, deadline, "frame header")
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self._take(2, deadline, "16-bit length"))[0]
        elif n == 127:
            n = struct.unpack("!Q", self._take(8, deadline, "64-bit length"))[0]
        masked = bool(b1 & 0x80)
        key = self._take(4, deadline, "mask") if masked else None
        if n > (256 << 20):
            raise AssertionError("absurd server frame length %d" % n)
        payload = self._take(n, deadline, "frame payload (%d bytes)" % n)
        self.last_len_form = 7 if (b1 & 0x7F) < 126 else (16 if (b1 & 0x7F) == 126 else 64)
        if masked:
            payload = mask_bytes(payload, key)
        return Frame(bool(b0 & 0x80), (b0 >> 4) & 7, b0 & 0xF, payload, masked)

    def read_message(self, timeout=5.0, answer_pings=True, max_frames=100000):
        """Read one whole data message (reassembling fragments).

        Returns (opcode, payload, controls) where controls is the list of
        control frames (ping/pong) seen meanwhile. Fails on a close frame,
        on masked/RSV server frames and on fragmentation errors."""
        deadline = time.monotonic() + timeout
        controls = []
        opcode = None
        parts = []
        for _ in range(max_frames):
            f = self.read_frame(max(0.0, deadline - time.monotonic()))
            assert not f.masked, "server frame is masked: %r" % f
            assert f.rsv == 0, "server frame has RSV bits: %r" % f
            if f.opcode == OP_CLOSE:
                raise AssertionError("got close %r while reading a message" % (f.close_code(),))
            if f.opcode in (OP_PING, OP_PONG):
                assert f.fin, "fragmented control frame from server: %r" % f
                controls.append(f)
                if f.opcode == OP_PING and answer_pings:
                    self.send_frame(OP_PONG, f.payload)
                continue
            if opcode is None:
                assert f.opcode in (OP_TEXT, OP_BINARY), "unexpected frame %r" % f
                opcode = f.opcode
            else:
                assert f.opcode == OP_CONT, "expected continuation, got %r" % f
            parts.append(f.payload)
            if f.fin:
                return opcode, b"".join(parts), controls
        raise AssertionError("message with more than %d frames" % max_frames)

    def echo(self, opcode, payload, timeout=5.0):
        """Send a message and assert it comes back identical."""
        self.send_frame(opcode, payload)
        op, data, _ = self.read_message(timeout)
        assert op == opcode, "echo opcode %#x, sent %#x" % (op, opcode)
        assert data == payload, "echo payload differs (%d vs %d bytes)" % (len(data), len(payload))
        return data

    def read_close(self, timeout=3.0, skip=(OP_PING, OP_PONG)):
        """The next frame (ignoring control frames in skip) must be a close.
        Returns (code or None, reason bytes)."""
        deadline = time.monotonic() + timeout
        for _ in range(1000):
            f = self.read_frame(max(0.0, deadline - time.monotonic()))
            if f.opcode in skip:
                continue
            assert f.opcode == OP_CLOSE, "expected a close frame, got %r" % f
            assert f.fin and not f.masked and f.rsv == 0, "bad close frame %r" % f
            assert len(f.payload) != 1, "server sent a 1-byte close payload"
            return f.close_code()
        raise AssertionError("too many control frames before close")

    def expect_eof(self, timeout=3.0, allow_data=False, close=True):
        """Assert the server closes the TCP connection within timeout.
        Returns the bytes received meanwhile (must be none unless allow_data).
        close=False keeps our side of the socket open afterwards."""
        deadline = time.monotonic() + timeout
        extra = bytes(self.buf)
        self.buf.clear()
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WSTimeout("server did not close the connection within %.1fs" % timeout)
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                raise WSTimeout("server did not close the connection within %.1fs" % timeout)
            except ConnectionResetError:
                data = b""
            if not data:
                break
            extra += data
            if len(extra) > (64 << 20):
                raise AssertionError("server keeps sending data instead of closing")
        if not allow_data:
            assert extra == b"", "server sent %d unexpected bytes before closing: %r" % (
                len(extra), extra[:60])
        if close:
            self.close_socket()
        return extra

    def expect_close(self, code, timeout=3.0, codes=None):
        """Server must send close with `code` (or one of `codes`), we answer with
        a close, then the server must close the TCP connection."""
        got, reason = self.read_close(timeout)
        allowed = codes if codes is not None else (code,)
        assert got in allowed, "close code %r (reason %r), expected %s" % (got, reason, allowed)
        self.send_close(got if got not in (None, 1005, 1006, 1015) else None)
        self.expect_eof(timeout)
        return got, reason

    def is_open(self, timeout=2.0):
        """Echo round trip works (connection still usable)."""
        payload = os.urandom(8).hex()
        self.send_text(payload)
        op, data, _ = self.read_message(timeout)
        return op == OP_TEXT and data == payload.encode()


# ---------------------------------------------------------------- plain HTTP


def http_exchange(addr, request, timeout=5.0):
    """Send raw request bytes, read until the server closes (or timeout).
    Returns (status, headers, body, closed) where closed says whether the
    server closed the connection within the timeout."""
    s = open_socket(addr, timeout)
    try:
        try:
            s.sendall(request)
        except (BrokenPipeError, ConnectionResetError):
            pass
        deadline = time.monotonic() + timeout
        data = b""
        closed = False
        while time.monotonic() < deadline:
            s.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                closed = True
                break
            if not chunk:
                closed = True
                break
            data += chunk
            if len(data) > (1 << 20):
                break
    finally:
        s.close()
    assert b"\r\n\r\n" in data, "no complete HTTP response head, got %r" % data[:200]
    head, _, body = data.partition(b"\r\n\r\n")
    status, _reason, headers = parse_head(head)
    return status, headers, body, closed


def wait_until(pred, timeout, interval=0.05):
    """Poll pred() until true or timeout; returns the last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(interval)


def test_plugin_dir(variant="plain"):
    """The test plugins' directory; for variant "tsan", their ThreadSanitizer
    builds (the test is skipped where there are none)."""
    if variant != "tsan":
        return TEST_PLUGIN_DIR
    if not os.path.exists(TSAN_BIN):
        import pytest
        pytest.skip("no ThreadSanitizer build (--enable-sanitize builds have none)")
    return os.path.join(TEST_PLUGIN_DIR, "tsan")


def start_variant(daemon_factory, cfg, variant="plain"):
    """A daemon for cfg: the normal binary, or for "tsan" the ThreadSanitizer one."""
    d = daemon_factory(cfg, start=False)
    if variant == "tsan":
        d.binary = TSAN_BIN
    d.start()
    return d


def under_sanitizer(d):
    """"asan" or "tsan" when daemon d runs under AddressSanitizer or
    ThreadSanitizer, else None. Their redzones, quarantine and shadow memory
    count in RSS, and they slow the daemon several times: tests of memory
    figures or of full-size load skip there."""
    with open("/proc/%d/maps" % d.pid) as f:
        maps = f.read()
    if "libasan" in maps:
        return "asan"
    if "libtsan" in maps:
        return "tsan"
    return None
