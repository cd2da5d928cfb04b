"""wsrouted-cli, the command-line client, against three kinds of server:

* the real daemon (conftest's daemon_factory: free loopback port, config in
  tmp_path, stopped by PID with SIGTERM at teardown);
* an independent server, python3-websockets (websockets.serve in a thread),
  plain and TLS with a self-signed certificate made by the openssl CLI;
* raw-socket servers that answer the handshake and frames by hand, for every
  way a server can break RFC 6455 and for checks on the client's own frames
  (masking, fragmentation, close codes).

The client binary is $WSROUTED_CLI_BIN (default <repo>/cli/wsrouted-cli).
Every wait is bounded: subprocess timeouts, socket timeouts, thread joins.
"""

import asyncio
import math
import os
import re
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import threading
import time

import pytest
import websockets

import wsrtest
from wsrtest import OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))

# Exit statuses, as documented in wsrouted-cli(1).
RC_OK, RC_LOCAL, RC_USAGE, RC_CONNECT, RC_REFUSED = 0, 1, 2, 3, 4
RC_PROTOCOL, RC_TIMEOUT, RC_ABNORMAL, RC_TLS = 5, 6, 7, 8


def cli_binary():
    path = os.environ.get("WSROUTED_CLI_BIN") or os.path.join(REPO, "cli", "wsrouted-cli")
    return os.path.abspath(path)


@pytest.fixture(scope="module", autouse=True)
def _cli_exists():
    if not os.access(cli_binary(), os.X_OK):
        pytest.fail("client binary not found: %s (set WSROUTED_CLI_BIN)" % cli_binary(),
                    pytrace=False)


def run_cli(*args, input=b"", stdin=None, timeout=20):
    """Run the client to completion; stdin is `input` (EOF after it) or a file object."""
    kw = {"stdin": stdin} if stdin is not None else {"input": input}
    return subprocess.run([cli_binary()] + [str(a) for a in args], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=timeout, **kw)


def check(p, rc, stdout=None, daemon=None):
    """Assert the exit status (and stdout), showing stderr (and the daemon's
    log) when it differs."""
    assert p.returncode == rc, "exit %d, expected %d; stderr:\n%s%s" % (
        p.returncode, rc, p.stderr.decode("utf-8", "replace"),
        "\ndaemon log:\n" + daemon.log_tail() if daemon is not None else "")
    if stdout is not None:
        assert p.stdout == stdout, "stdout %r, expected %r" % (p.stdout[:200], stdout[:200])
    return p


def err(p):
    return p.stderr.decode("utf-8", "replace")


# ---------------------------------------------------------------- python3-websockets server


class PyServer:
    """websockets.serve in a thread with its own event loop.

    handler(ws, rec) is a coroutine; rec is a dict recorded per connection
    (path, headers, subprotocol, then close_code/close_reason at the end).
    """

    def __init__(self, handler, ssl_context=None, subprotocols=None):
        self.handler = handler
        self.ssl_context = ssl_context
        self.subprotocols = subprotocols
        self.records = []
        self.errors = []
        self.port = None
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self.thread.start()
        assert self.ready.wait(5), "python websockets server did not start"
        assert self.port, "python websockets server failed: %r" % self.errors
        return self

    def __exit__(self, *exc):
        fut = asyncio.run_coroutine_threadsafe(self._stop(), self.loop)
        fut.result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        assert not self.thread.is_alive(), "server thread did not stop"

    def _run(self):
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._start())
        except Exception as e:  # reported by __enter__
            self.errors.append(e)
            self.ready.set()
            return
        self.ready.set()
        self.loop.run_forever()

    async def _start(self):
        self.server = await websockets.serve(
            self._handle, "127.0.0.1", 0, ssl=self.ssl_context, subprotocols=self.subprotocols,
            ping_interval=None, max_size=None, close_timeout=2)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _stop(self):
        self.server.close()
        await asyncio.wait_for(self.server.wait_closed(), 5)

    async def _handle(self, ws):
        rec = {"path": ws.path, "headers": ws.request_headers, "subprotocol": ws.subprotocol,
               "received": []}
        self.records.append(rec)
        try:
            await asyncio.wait_for(self.handler(ws, rec), 10)
        except websockets.ConnectionClosed:
            pass
        except Exception as e:
            self.errors.append(e)
        await asyncio.wait_for(ws.wait_closed(), 5)
        rec["close_code"] = ws.close_code
        rec["close_reason"] = ws.close_reason

    def uri(self, path="/", host="127.0.0.1", scheme="ws"):
        return "%s://%s:%d%s" % (scheme, host, self.port, path)

    def wait_records(self, n=1, timeout=5.0):
        """Wait until n connections have finished (close code recorded)."""
        ok = wsrtest.wait_until(
            lambda: len(self.records) >= n and all("close_code" in r for r in self.records),
            timeout)
        assert ok, "server saw %d connections, finished: %r" % (len(self.records), self.records)
        assert not self.errors, "server handler errors: %r" % self.errors
        return self.records


async def echo_handler(ws, rec):
    async for msg in ws:
        rec["received"].append(msg)
        await ws.send(msg)


# ---------------------------------------------------------------- raw servers


class RawConn:
    """Server side of one raw connection: handshake and frames by hand."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()

    def _fill(self):
        data = self.sock.recv(1 << 20)
        if not data:
            raise EOFError("client closed the connection")
        self.buf += data

    def recv_exact(self, n):
        while len(self.buf) < n:
            self._fill()
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def read_request(self):
        while b"\r\n\r\n" not in self.buf:
            assert len(self.buf) < 65536, "request head too long"
            self._fill()
        i = self.buf.index(b"\r\n\r\n")
        head = bytes(self.buf[:i]).decode("latin-1")
        del self.buf[:i + 4]
        lines = head.split("\r\n")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers.setdefault(name.strip().lower(), []).append(value.strip())
        return lines[0], headers

    def handshake(self, extra=""):
        """Read the request, answer a valid 101 (plus extra header lines)."""
        line, headers = self.read_request()
        key = headers["sec-websocket-key"][0]
        self.sock.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                           "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n%s\r\n"
                           % (wsrtest.expected_accept(key), extra)).encode())
        return line, headers

    def read_frame(self):
        """A client frame: (fin, rsv, opcode, mask key or None, unmasked payload)."""
        b0, b1 = self.recv_exact(2)
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self.recv_exact(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", self.recv_exact(8))[0]
        assert n <= (64 << 20), "absurd frame length %d" % n
        key = self.recv_exact(4) if b1 & 0x80 else None
        payload = self.recv_exact(n)
        if key is not None:
            payload = wsrtest.mask_bytes(payload, key)
        return bool(b0 & 0x80), (b0 >> 4) & 7, b0 & 0xF, key, payload

    def send(self, data):
        self.sock.sendall(data)

    def send_frame(self, opcode, payload=b"", **kw):
        kw.setdefault("mask", False)
        self.sock.sendall(wsrtest.build_frame(opcode, payload, **kw))

    def read_close(self, max_frames=100):
        """Skip data/pongs up to the client's close; return (code, reason, mask key)."""
        for _ in range(max_frames):
            fin, rsv, op, key, payload = self.read_frame()
            if op == OP_CLOSE:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                return code, payload[2:], key
        raise AssertionError("no close frame from the client")

    def wait_eof(self, timeout=5.0):
        """Read until the client closes the connection (True) or timeout (False)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                if not self.sock.recv(65536):
                    return True
            except socket.timeout:
                return False
            except OSError:
                return True
        return False


class RawServer:
    """A loopback TCP server in a thread running scenario(RawConn, rec) once."""

    def __init__(self, scenario):
        self.scenario = scenario
        self.rec = {}
        self.error = None
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(8)
        self.lsock.settimeout(10)
        self.port = self.lsock.getsockname()[1]
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.lsock.close()
        self.thread.join(10)

    def _run(self):
        try:
            sock, _ = self.lsock.accept()
        except OSError as e:
            self.error = e
            return
        sock.settimeout(5)
        try:
            self.scenario(RawConn(sock), self.rec)
        except BaseException as e:  # noqa: B902 -- re-raised in the test by join()
            self.error = e
        finally:
            sock.close()

    def join(self, timeout=10):
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "raw server scenario still running"
        if self.error is not None:
            raise AssertionError("raw server: %r" % (self.error,))
        return self.rec

    def uri(self, path="/"):
        return "ws://127.0.0.1:%d%s" % (self.port, path)


# ---------------------------------------------------------------- against the daemon


def test_message_round_trip(daemon):
    p = run_cli("-m", "hello", "-m", "héllo wörld €𝄞", "-m", "", daemon.uri())
    check(p, RC_OK, "hello\nhéllo wörld €𝄞\n\n".encode())
    assert wsrtest.wait_until(lambda: "code=1000" in daemon.log_text(), 3), daemon.log_tail()


def test_stdin_lines(daemon):
    p = run_cli(daemon.uri(), input="one\ntwo\n\nthree €\nlast, no newline".encode())
    check(p, RC_OK, "one\ntwo\n\nthree €\nlast, no newline\n".encode())


def test_stdin_eof_without_input_closes_normally(daemon):
    check(run_cli(daemon.uri()), RC_OK, b"")


def test_count_stops_after_n(daemon):
    p = run_cli("-n", "2", daemon.uri(), input=b"a\nb\nc\nd\n")
    check(p, RC_OK, b"a\nb\n")
    p = run_cli("-n", "0", daemon.uri(), input=b"a\n")
    check(p, RC_OK, b"")


def test_binary_hex_and_raw(daemon):
    data = bytes(range(256))
    p = run_cli("--binary", daemon.uri(), input=data)
    check(p, RC_OK, data.hex().encode() + b"\n")
    p = run_cli("--binary", "-m", "\x01\x7f", daemon.uri())
    check(p, RC_OK, b"017f\n")
    p = run_cli("--binary", "--raw", daemon.uri(), input=data)
    check(p, RC_OK, data)


def test_binary_16mib_message(daemon_factory, tmp_path):
    """One read of a 16 MiB file is one message, echoed whole."""
    d = daemon_factory(wsrtest.make_config(server_extra="max_frame_size = 32MiB\n"
                                                        "max_message_size = 32MiB\n"
                                                        "max_output_buffer = 32MiB\n"))
    data = os.urandom(16 << 20)
    src = tmp_path / "in.bin"
    src.write_bytes(data)
    with open(src, "rb") as f:
        p = run_cli("--binary", "--raw", "--max-frame-size", "16MiB", d.uri(), stdin=f,
                    timeout=30)
    check(p, RC_OK, daemon=d)
    assert len(p.stdout) == len(data) and p.stdout == data
    assert wsrtest.wait_until(lambda: "msgs_in=1 " in d.log_text(), 3), d.log_tail()


def test_fragments_accepted_by_daemon(daemon_factory, tmp_path):
    """With --max-frame-size 64KiB the daemon (max_frame_size = 64KiB) gets only
    64 KiB frames: a 1 MiB message is accepted, not closed with 1009."""
    d = daemon_factory(wsrtest.make_config(server_extra="max_frame_size = 64KiB\n"))
    data = os.urandom(1 << 20)
    src = tmp_path / "in.bin"
    src.write_bytes(data)
    with open(src, "rb") as f:
        p = run_cli("--binary", "--raw", "--max-frame-size", "64KiB", d.uri(), stdin=f)
    # The echo comes back as one 1 MiB frame, over our own limit: we fail with
    # 1009 (or, when stdin's end came first and our close 1000 is already out,
    # just stop).
    check(p, RC_PROTOCOL)
    assert "frame larger than max_frame_size (closing with 1009)" in err(p)
    # Wait for the close line of the upgraded connection (the readiness probe
    # logs a close of its own, without msgs_in).
    assert wsrtest.wait_until(lambda: "route=/echo code=" in d.log_text(), 3)
    log = d.log_text()
    assert "msgs_in=1 " in log, log     # the daemon took the whole message ...
    assert "frame larger" not in log, log   # ... without refusing a frame


def test_ipv6_literal(daemon_factory):
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.bind(("::1", 0))
        s.close()
    except OSError:
        pytest.skip("no IPv6 loopback")
    d = daemon_factory(wsrtest.make_config(server_extra="listen = [::1]:{port2}\n"))
    p = run_cli("-m", "v6", "ws://[::1]:%d/echo" % d.port2)
    check(p, RC_OK, b"v6\n")


def test_404_is_refused_with_status_line(daemon):
    p = check(run_cli("-m", "x", daemon.uri("/nope")), RC_REFUSED, b"")
    assert "HTTP/1.1 404 Not Found" in err(p)


def test_origin_allowlist(daemon_factory):
    d = daemon_factory(wsrtest.make_config(route_extra="origins = https://good.example\n"))
    check(run_cli("--origin", "https://good.example", "-m", "ok", d.uri()), RC_OK, b"ok\n")
    p = check(run_cli("--origin", "https://evil.example", "-m", "x", d.uri()), RC_REFUSED)
    assert "403" in err(p)
    p = check(run_cli("-m", "x", d.uri()), RC_REFUSED)
    assert "403" in err(p)


def test_subprotocol_negotiation(daemon_factory):
    d = daemon_factory(wsrtest.make_config(route_extra="subprotocols = chat.v1\n"))
    p = check(run_cli("-v", "--subprotocol", "x.v9, chat.v1", "-m", "hi", d.uri()),
              RC_OK, b"hi\n")
    assert "> Sec-WebSocket-Protocol: x.v9, chat.v1" in err(p)
    assert "Subprotocol: chat.v1" in err(p)
    p = check(run_cli("-v", "--subprotocol", "x.v9", "-m", "hi", d.uri()), RC_OK, b"hi\n")
    assert "Subprotocol" not in err(p)


def test_verbose_shows_handshake_and_control_frames(daemon):
    p = check(run_cli("-v", "--close", "1000:done", "-m", "hi", daemon.uri()), RC_OK, b"hi\n")
    e = err(p)
    assert "> GET /echo HTTP/1.1" in e
    assert "< HTTP/1.1 101 Switching Protocols" in e
    assert "< Sec-WebSocket-Accept:" in e
    assert '> close 1000 "done"' in e
    assert "< close 1000" in e


def test_answers_daemon_pings(daemon_factory):
    """The daemon pings every 100 ms and cuts after 400 ms without input: an
    idle client that answers pings survives a second of silence."""
    d = daemon_factory(wsrtest.make_config(route_extra="ping_period = 100ms\n"
                                                       "timeout = 400ms\n"))
    proc = subprocess.Popen([cli_binary(), "-v", d.uri()], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        time.sleep(1.0)
        out, errb = proc.communicate(b"still here\n", timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    e = errb.decode()
    assert proc.returncode == RC_OK, e
    assert out == b"still here\n", e
    assert e.count("< ping") >= 5 and e.count("> pong") >= 5, e


def test_sigint_closes_with_1001(daemon):
    proc = subprocess.Popen([cli_binary(), "-v", daemon.uri()], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert wsrtest.wait_until(lambda: "event=open" in daemon.log_text(), 5)
        proc.send_signal(signal.SIGINT)
        proc.wait(10)  # stdin stays open: only the signal can end the session
        out, errb = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    assert proc.returncode == RC_OK, errb
    assert b"> close 1001" in errb and b"< close 1001" in errb, errb


def test_stdin_not_utf8_is_a_local_error(daemon):
    p = check(run_cli(daemon.uri(), input=b"ok\n\xff\xfe\n"), RC_LOCAL)
    assert "not UTF-8" in err(p)


# ---------------------------------------------------------------- against python3-websockets


def test_headers_origin_subprotocol_seen_by_server():
    with PyServer(echo_handler, subprotocols=["chat.v2", "other"]) as srv:
        p = run_cli("-v", "-H", "X-Test: 42", "--header", "Authorization: Bearer t0k",
                    "--origin", "https://app.example", "--subprotocol", "chat.v1",
                    "--subprotocol", "chat.v2", "-m", "hi", srv.uri("/chat?room=1"))
        check(p, RC_OK, b"hi\n")
        rec = srv.wait_records()[0]
    h = rec["headers"]
    assert h["X-Test"] == "42"
    assert h["Authorization"] == "Bearer t0k"
    assert h["Origin"] == "https://app.example"
    assert h["Sec-WebSocket-Protocol"] == "chat.v1, chat.v2"
    assert h["Host"] == "127.0.0.1:%d" % srv.port
    assert h["User-Agent"].startswith("wsrouted-cli/")
    assert rec["path"] == "/chat?room=1"
    assert rec["subprotocol"] == "chat.v2"
    assert "Subprotocol: chat.v2" in err(p)
    assert rec["received"] == ["hi"]
    assert rec["close_code"] == 1000


def test_default_path_is_slash():
    with PyServer(echo_handler) as srv:
        check(run_cli("-m", "x", "ws://127.0.0.1:%d" % srv.port), RC_OK, b"x\n")
        check(run_cli("-m", "y", "ws://127.0.0.1:%d?q=1" % srv.port), RC_OK, b"y\n")
        recs = srv.wait_records(2)
    assert [r["path"] for r in recs] == ["/", "/?q=1"]


def test_close_code_and_reason_sent():
    with PyServer(echo_handler) as srv:
        p = run_cli("--close", "4001:bye now ✓", "-m", "hi", srv.uri())
        check(p, RC_OK, b"hi\n")  # the server echoes our own 4001: a normal end
        rec = srv.wait_records()[0]
    assert rec["close_code"] == 4001
    assert rec["close_reason"] == "bye now ✓"


def test_binary_message_from_server_and_count():
    async def handler(ws, rec):
        await ws.send(b"\x00\x01\xfe\xff")
        await ws.send("text after")
        await ws.send(b"never read")
        await ws.wait_closed()
    with PyServer(handler) as srv:
        check(run_cli("-n", "2", srv.uri()), RC_OK, b"0001feff\ntext after\n")
        check(run_cli("-n", "1", "--raw", srv.uri()), RC_OK, b"\x00\x01\xfe\xff")
        recs = srv.wait_records(2)
    assert [r["close_code"] for r in recs] == [1000, 1000]


def test_fragmented_message_from_server():
    big = os.urandom(300000)

    async def handler(ws, rec):
        await ws.send([big[:100000], big[100000:200000], big[200000:]])
        await ws.send(["frag", "mented ", "€"])
        await ws.wait_closed()
    with PyServer(handler) as srv:
        p = run_cli("-n", "2", "--raw", srv.uri())
        check(p, RC_OK, big + "fragmented €\n".encode())


def test_server_close_4000_is_abnormal():
    async def handler(ws, rec):
        await ws.close(4000, "custom reason")
    with PyServer(handler) as srv:
        p = check(run_cli("-m", "x", srv.uri()), RC_ABNORMAL, b"")
        srv.wait_records()
    assert "4000" in err(p) and "custom reason" in err(p)


def test_server_close_1001_is_normal():
    async def handler(ws, rec):
        await ws.close(1001, "going away")
    with PyServer(handler) as srv:
        check(run_cli(srv.uri()), RC_OK, b"")


def test_ping_period_sends_pings():
    async def handler(ws, rec):
        await asyncio.sleep(0.6)
        await ws.send("late")
        await ws.wait_closed()
    with PyServer(handler) as srv:
        p = check(run_cli("-v", "--ping-period", "100ms", "-n", "1", srv.uri()), RC_OK,
                  b"late\n")
    e = err(p)
    # websockets answers each valid (masked) ping with a pong.
    assert e.count("> ping") >= 3 and e.count("< pong") >= 3, e


def test_idle_timeout_while_open():
    async def handler(ws, rec):
        await ws.wait_closed()
    with PyServer(handler) as srv:
        t0 = time.monotonic()
        p = check(run_cli("--timeout", "500ms", "-n", "1", srv.uri()), RC_TIMEOUT, b"")
        elapsed = time.monotonic() - t0
        rec = srv.wait_records()[0]
    assert 0.4 <= elapsed < 4, elapsed
    assert "timeout" in err(p)
    assert rec["close_code"] == 1001


# ---------------------------------------------------------------- raw servers: the client's frames


def test_fragmentation_and_masking_round_trip(tmp_path):
    """--binary --raw of 1.5 MiB random bytes with --max-frame-size 65536: one
    message in 65536-byte frames, each masked with its own key, echoed frame by
    frame by a raw server, reassembled byte-exact."""
    data = os.urandom((3 << 19) + 123)
    src = tmp_path / "in.bin"
    src.write_bytes(data)

    def scenario(c, rec):
        c.handshake()
        rec["frames"] = []
        for _ in range(10000):
            fin, rsv, op, key, payload = c.read_frame()
            rec["frames"].append((fin, rsv, op, key, len(payload)))
            if op == OP_CLOSE:
                c.send_frame(OP_CLOSE, payload)
                c.wait_eof()
                return
            c.send_frame(op, payload, fin=fin)

    with RawServer(scenario) as srv:
        with open(src, "rb") as f:
            p = run_cli("--binary", "--raw", "--max-frame-size", "65536", srv.uri(), stdin=f)
        rec = srv.join()
    check(p, RC_OK)
    assert p.stdout == data
    frames = rec["frames"]
    data_frames = frames[:-1]
    assert frames[-1][2] == OP_CLOSE
    assert len(data_frames) == math.ceil(len(data) / 65536)
    assert [f[2] for f in data_frames] == [OP_BINARY] + [OP_CONT] * (len(data_frames) - 1)
    assert [f[0] for f in data_frames] == [False] * (len(data_frames) - 1) + [True]
    assert all(f[4] <= 65536 for f in data_frames)
    assert all(f[1] == 0 for f in frames)
    keys = [f[3] for f in frames]
    assert all(k is not None for k in keys), "unmasked client frame"
    assert len(set(keys)) == len(keys), "masking keys repeat"


def test_text_lines_are_masked_frames():
    def scenario(c, rec):
        c.handshake()
        rec["msgs"] = []
        for _ in range(10):
            fin, rsv, op, key, payload = c.read_frame()
            if op == OP_CLOSE:
                rec["close"] = payload
                c.send_frame(OP_CLOSE, payload)
                c.wait_eof()
                return
            rec["msgs"].append((op, fin, key is not None, payload))
    with RawServer(scenario) as srv:
        check(run_cli(srv.uri(), input="a\nbé\n".encode()), RC_OK)
        rec = srv.join()
    assert rec["msgs"] == [(OP_TEXT, True, True, b"a"), (OP_TEXT, True, True, "bé".encode())]
    assert rec["close"] == struct.pack("!H", 1000)


def test_pong_fragments_and_close_echo():
    """A ping inside a fragmented text message whose UTF-8 character is split
    across fragments; the pong carries the ping's payload; the server's close
    is answered with its code."""
    def scenario(c, rec):
        c.handshake()
        c.send_frame(OP_TEXT, b"h\xc3", fin=False)
        c.send_frame(OP_PING, b"abc")
        c.send_frame(OP_CONT, b"\xa9llo", fin=True)
        fin, rsv, op, key, payload = c.read_frame()
        rec["pong"] = (op, key is not None, payload)
        c.send_frame(OP_CLOSE, wsrtest.close_payload(1000, "bye"))
        rec["close"] = c.read_close()[:2]
        rec["eof"] = c.wait_eof()
    with RawServer(scenario) as srv:
        p = run_cli("-v", "-n", "5", srv.uri())
        rec = srv.join()
    check(p, RC_OK, "héllo\n".encode())
    assert rec["pong"] == (OP_PONG, True, b"abc")
    assert rec["close"] == (1000, b"")
    assert rec["eof"], "client kept the connection open"
    e = err(p)
    assert "< ping (3 bytes)" in e and "> pong (3 bytes)" in e
    assert '< close 1000 "bye"' in e and "> close 1000" in e


# ---------------------------------------------------------------- raw servers: protocol errors


def _bad_frame_server(frame):
    def scenario(c, rec):
        c.handshake()
        c.send(frame)
        rec["close"] = c.read_close()
        rec["eof"] = c.wait_eof()
    return scenario


BAD_FRAMES = [
    ("masked", wsrtest.build_frame(OP_TEXT, b"hi", mask=True), 1002),
    ("bad_utf8", wsrtest.build_frame(OP_TEXT, b"ok \xff\xfe", mask=False), 1007),
    ("utf8_surrogate", wsrtest.build_frame(OP_TEXT, b"\xed\xa0\x80", mask=False), 1007),
    ("rsv1", wsrtest.build_frame(OP_TEXT, b"hi", rsv=4, mask=False), 1002),
    ("opcode_3", wsrtest.build_frame(0x3, b"", mask=False), 1002),
    ("long_ping", wsrtest.build_frame(OP_PING, b"p" * 126, mask=False), 1002),
    ("fragmented_ping", wsrtest.build_frame(OP_PING, b"", fin=False, mask=False), 1002),
    ("lone_continuation", wsrtest.build_frame(OP_CONT, b"x", mask=False), 1002),
    ("close_1_byte", wsrtest.build_frame(OP_CLOSE, b"\x03", mask=False), 1002),
    ("close_code_1005", wsrtest.build_frame(OP_CLOSE, struct.pack("!H", 1005), mask=False), 1002),
    ("close_reason_utf8", wsrtest.build_frame(OP_CLOSE, struct.pack("!H", 1000) + b"\xc3",
                                              mask=False), 1007),
    ("over_max_frame", wsrtest.build_frame(OP_BINARY, b"x" * 1001, mask=False), 1009),
]


@pytest.mark.parametrize("frame,code", [(f, c) for _, f, c in BAD_FRAMES],
                         ids=[n for n, _, _ in BAD_FRAMES])
def test_protocol_errors(frame, code):
    with RawServer(_bad_frame_server(frame)) as srv:
        p = run_cli("--max-frame-size", "1000", "-n", "1", srv.uri())
        rec = srv.join()
    check(p, RC_PROTOCOL, b"")
    assert "protocol error" in err(p)
    got, reason, key = rec["close"]
    assert got == code, "client closed with %r (%r), expected %d" % (got, reason, code)
    assert key is not None, "close frame not masked"
    assert rec["eof"], "client did not close the TCP connection"


BAD_ANSWERS = [
    ("wrong_accept", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
     "Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"),
    ("no_upgrade", "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
     "Sec-WebSocket-Accept: {accept}\r\n\r\n"),
    ("unoffered_subprotocol", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
     "Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n"
     "Sec-WebSocket-Protocol: chat\r\n\r\n"),
    ("unoffered_extension", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
     "Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n"
     "Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n"),
    ("not_http", "SSH-2.0-OpenSSH_9.2\r\n\r\n"),
]


@pytest.mark.parametrize("answer", [a for _, a in BAD_ANSWERS], ids=[n for n, _ in BAD_ANSWERS])
def test_invalid_handshake_answers(answer):
    def scenario(c, rec):
        _, headers = c.read_request()
        accept = wsrtest.expected_accept(headers["sec-websocket-key"][0])
        c.send(answer.replace("{accept}", accept).encode())
        rec["eof"] = c.wait_eof()
    with RawServer(scenario) as srv:
        p = run_cli("-m", "x", srv.uri())
        rec = srv.join()
    check(p, RC_PROTOCOL, b"")
    assert "invalid handshake answer" in err(p)
    assert rec["eof"]


def test_handshake_403_prints_status_line():
    def scenario(c, rec):
        c.read_request()
        c.send(b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\n"
               b"Content-Length: 10\r\nConnection: close\r\n\r\nforbidden\n")
    with RawServer(scenario) as srv:
        p = run_cli("-m", "x", srv.uri())
        srv.join()
    check(p, RC_REFUSED, b"")
    assert "HTTP/1.1 403 Forbidden" in err(p)


def test_tcp_close_without_close_frame():
    def scenario(c, rec):
        c.handshake()
        c.send_frame(OP_TEXT, b"first")
    with RawServer(scenario) as srv:
        p = run_cli("-n", "2", srv.uri())
        srv.join()
    check(p, RC_ABNORMAL, b"first\n")
    assert "without a close frame" in err(p)


# ---------------------------------------------------------------- timeouts and connect failures


def test_handshake_never_answered_times_out():
    def scenario(c, rec):
        c.read_request()
        rec["eof"] = c.wait_eof(8)
    with RawServer(scenario) as srv:
        t0 = time.monotonic()
        p = run_cli("--timeout", "500ms", "-m", "x", srv.uri())
        elapsed = time.monotonic() - t0
        rec = srv.join()
    check(p, RC_TIMEOUT, b"")
    assert 0.4 <= elapsed < 4, elapsed
    assert rec["eof"]


def test_close_never_answered_times_out():
    def scenario(c, rec):
        c.handshake()
        rec["close"] = c.read_close()[:2]
        rec["eof"] = c.wait_eof(8)  # and never answer it
    with RawServer(scenario) as srv:
        t0 = time.monotonic()
        p = run_cli("--timeout", "500ms", "--close", "3001", srv.uri())
        elapsed = time.monotonic() - t0
        rec = srv.join()
    check(p, RC_TIMEOUT, b"")
    assert 0.4 <= elapsed < 4, elapsed
    assert rec["close"] == (3001, b"")
    assert "no close frame" in err(p)


def test_connection_refused():
    port = wsrtest.free_port()
    p = check(run_cli("-m", "x", "ws://127.0.0.1:%d/" % port), RC_CONNECT, b"")
    assert "refused" in err(p).lower()


def test_dns_failure():
    p = check(run_cli("-m", "x", "ws://no-such-host.invalid/"), RC_CONNECT, b"")
    assert "no-such-host.invalid" in err(p)


def test_connect_timeout():
    """A listener whose backlog is full drops SYNs: connect() hangs."""
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    fillers = []
    try:
        ls.bind(("127.0.0.1", 0))
        ls.listen(0)
        port = ls.getsockname()[1]
        for _ in range(8):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))
            fillers.append(s)
        probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        fillers.append(probe)
        probe.settimeout(0.3)
        try:
            probe.connect(("127.0.0.1", port))
            pytest.skip("this kernel completes connects beyond the listen backlog")
        except (socket.timeout, OSError):
            pass
        t0 = time.monotonic()
        p = run_cli("--connect-timeout", "400ms", "-m", "x", "ws://127.0.0.1:%d/" % port)
        elapsed = time.monotonic() - t0
    finally:
        for s in fillers:
            s.close()
        ls.close()
    check(p, RC_CONNECT, b"")
    assert "timed out" in err(p)
    assert 0.3 <= elapsed < 4, elapsed


# ---------------------------------------------------------------- TLS


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    """Self-signed certificates: one for DNS:localhost, one for IP:127.0.0.1."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("the openssl command is needed for the TLS tests")
    d = tmp_path_factory.mktemp("certs")
    out = {}
    for name, san in (("dns", "DNS:localhost"), ("ip", "IP:127.0.0.1")):
        key, crt = d / (name + ".key"), d / (name + ".crt")
        subprocess.run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                        "-subj", "/CN=wsrouted-test-" + name, "-addext",
                        "subjectAltName=" + san, "-keyout", str(key), "-out", str(crt)],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       timeout=30)
        out[name] = (str(crt), str(key))
    return out


def tls_server(cert):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*cert)
    return PyServer(echo_handler, ssl_context=ctx)


def test_tls_cacert_verifies(certs):
    with tls_server(certs["dns"]) as srv:
        p = run_cli("-v", "--cacert", certs["dns"][0], "-m", "secure",
                    srv.uri(host="localhost", scheme="wss"))
        check(p, RC_OK, b"secure\n")
        assert "certificate verified" in err(p)
        srv.wait_records()


def test_tls_binary_round_trip(certs, tmp_path):
    """3 MiB each way through TLS: partial SSL_write/SSL_read and SSL_pending."""
    data = os.urandom((3 << 20) + 7)
    src = tmp_path / "in.bin"
    src.write_bytes(data)
    with tls_server(certs["dns"]) as srv:
        with open(src, "rb") as f:
            # -n 1: websockets answers a close at once, even before an echo
            # it has not sent yet, so close only once the echo is in.
            p = run_cli("--cacert", certs["dns"][0], "--binary", "--raw", "-n", "1",
                        srv.uri(host="localhost", scheme="wss"), stdin=f)
        rec = srv.wait_records()[0]
    check(p, RC_OK)
    assert p.stdout == data
    assert len(rec["received"]) == 1 and rec["received"][0] == data
    assert rec["close_code"] == 1000


def test_tls_default_verification_fails(certs):
    with tls_server(certs["dns"]) as srv:
        p = run_cli("-m", "x", srv.uri(host="localhost", scheme="wss"))
    check(p, RC_TLS, b"")
    assert "certificate" in err(p)


def test_tls_insecure(certs):
    with tls_server(certs["dns"]) as srv:
        check(run_cli("--insecure", "-m", "anyway", srv.uri(host="localhost", scheme="wss")),
              RC_OK, b"anyway\n")
        check(run_cli("-k", "-m", "by ip", srv.uri(scheme="wss")), RC_OK, b"by ip\n")


def test_tls_hostname_mismatch(certs):
    with tls_server(certs["dns"]) as srv:
        # Trusted certificate, but it names localhost, not 127.0.0.1.
        p = run_cli("--cacert", certs["dns"][0], "-m", "x", srv.uri(scheme="wss"))
    check(p, RC_TLS, b"")
    assert "mismatch" in err(p)


def test_tls_ip_address_certificate(certs):
    with tls_server(certs["ip"]) as srv:
        check(run_cli("--cacert", certs["ip"][0], "-m", "ip ok", srv.uri(scheme="wss")),
              RC_OK, b"ip ok\n")
        p = run_cli("--cacert", certs["ip"][0], "-m", "x",
                    srv.uri(host="localhost", scheme="wss"))
    check(p, RC_TLS, b"")


def test_tls_to_plain_http_server_fails():
    def scenario(c, rec):
        rec["hello"] = c.sock.recv(4096)  # the ClientHello
        c.send(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    with RawServer(scenario) as srv:
        p = run_cli("--insecure", "-m", "x", "wss://127.0.0.1:%d/" % srv.port)
        rec = srv.join()
    check(p, RC_TLS, b"")
    assert rec["hello"][:1] == b"\x16", "not a TLS handshake record"


# ---------------------------------------------------------------- usage, help, man page


@pytest.mark.parametrize("args", [
    [],
    ["http://127.0.0.1/"],
    ["ws://127.0.0.1/a b"],
    ["ws://127.0.0.1/#frag"],
    ["ws://127.0.0.1:0/"],
    ["ws://a/", "ws://b/"],
    ["--timeout", "soon", "ws://h/"],
    ["--ping-period", "-1s", "ws://h/"],
    ["--max-frame-size", "0", "ws://h/"],
    ["--max-frame-size", "3GiB", "ws://h/"],
    ["--close", "1005", "ws://h/"],
    ["--close", "999:x", "ws://h/"],
    ["--close", "1000:" + "r" * 124, "ws://h/"],
    ["--header", "Upgrade: h2c", "ws://h/"],
    ["--header", "no colon", "ws://h/"],
    ["--subprotocol", "a b", "ws://h/"],
    ["--subprotocol", "a,a", "ws://h/"],
    ["-n", "x", "ws://h/"],
    ["--no-such-option", "ws://h/"],
    ["-m", os.fsdecode(b"\xff"), "ws://h/"],
], ids=lambda a: " ".join(a)[:40] or "no-args")
def test_usage_errors(args):
    p = run_cli(*args)
    check(p, RC_USAGE, b"")
    assert err(p).strip(), "usage error without a message"


def test_help_and_version():
    p = check(run_cli("--help"), RC_OK)
    assert p.stdout.startswith(b"usage: wsrouted-cli")
    p = check(run_cli("--version"), RC_OK)
    assert re.match(rb"wsrouted-cli \d+\.\d+", p.stdout), p.stdout


def test_man_page_documents_options_and_exit_codes():
    path = os.path.join(REPO, "man", "wsrouted-cli.1")
    with open(path, encoding="utf-8") as f:
        man = f.read()
    helptext = check(run_cli("--help"), RC_OK).stdout.decode()
    opts = set(re.findall(r"--[a-z][a-z-]+", helptext))
    assert len(opts) >= 18, opts
    # mdoc source: "Fl \-max\-frame\-size" renders as --max-frame-size.
    plain = re.sub(r"\bFl -", "--", man.replace("\\-", "-"))
    missing = [o for o in sorted(opts) if o not in plain]
    assert not missing, "options missing from the man page: %s" % missing
    for code in range(0, 9):
        assert re.search(r"^\.It Sy %d$|^\.TP\n\.B %d$|^\.IP %d\b" % (code, code, code),
                         man, re.M), "exit status %d not documented" % code
    assert "/echo" in plain
    groff = shutil.which("groff")
    if groff:
        r = subprocess.run([groff, "-mandoc", "-Tutf8", "-ww", "-z", path],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20)
        assert r.returncode == 0 and not r.stderr.strip(), r.stderr.decode()
