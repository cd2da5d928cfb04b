"""The built-in backend handler: each WebSocket connection proxied to a
real TCP or Unix-socket backend (websockify-style), binary or text framing,
1013 when the backend refuses, 1000 when it closes, bounded buffering when
the client does not read."""

import os
import socket
import threading
import time

import pytest

import wsrtest
from wsrtest import OP_BINARY, OP_CLOSE, OP_TEXT, run_daemon


class Backend:
    """A threaded loopback server; mode: echo, bye (send + close), flood."""

    def __init__(self, family=socket.AF_INET, path=None, mode="echo", flood=0):
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        if family == socket.AF_UNIX:
            self.sock.bind(path)
            self.addr = "unix:" + path
        else:
            self.sock.bind(("127.0.0.1", 0))
            self.addr = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.mode = mode
        self.flood = flood
        self.stop = False
        self.accepted = 0
        self.threads = [threading.Thread(target=self.run, daemon=True)]
        self.threads[0].start()

    def run(self):
        while not self.stop:
            try:
                s, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.accepted += 1
            t = threading.Thread(target=self.serve, args=(s,), daemon=True)
            self.threads.append(t)
            t.start()

    def serve(self, s):
        s.settimeout(10)
        try:
            if self.mode == "bye":
                s.sendall(b"bye")
                return
            if self.mode == "flood":
                chunk = b"f" * 65536
                sent = 0
                while sent < self.flood and not self.stop:
                    s.sendall(chunk)
                    sent += len(chunk)
                return
            for _ in range(10000):
                data = s.recv(65536)
                if not data:
                    return
                s.sendall(data)
        except OSError:
            pass
        finally:
            s.close()

    def close(self):
        self.stop = True
        self.sock.close()
        for t in self.threads:
            t.join(15)


@pytest.fixture
def backend_factory():
    made = []

    def make(**kw):
        b = Backend(**kw)
        made.append(b)
        return b
    yield make
    for b in made:
        b.close()


def config(backend, extra=""):
    return wsrtest.make_config() + "[route /b]\nhandler = backend\nbackend = %s\n%s" % (
        backend, extra)


def test_tcp_echo_binary(daemon_factory, backend_factory):
    be = backend_factory()
    d = daemon_factory(config(be.addr))
    c = d.connect("/b")
    c.send_binary(b"\x00\x01hello")
    got = b""
    while len(got) < 7:
        op, data, _ = c.read_message()
        assert op == OP_BINARY
        got += data
    assert got == b"\x00\x01hello"
    c.send_close(1000)
    c.expect_close(1000)


def test_unix_echo_text(daemon_factory, backend_factory, tmp_path):
    be = backend_factory(family=socket.AF_UNIX, path=str(tmp_path / "be.sock"))
    d = daemon_factory(config(be.addr, "framing = text\n"))
    c = d.connect("/b")
    msg = "h\u00e9llo \u2603 w\u00f6rld " * 2000   # multi-byte, across chunks
    c.send_text(msg)
    got = b""
    while len(got) < len(msg.encode()):
        op, data, _ = c.read_message()
        assert op == OP_TEXT
        data.decode("utf-8")  # each message is valid UTF-8 on its own
        got += data
    assert got == msg.encode()
    c.send_close(1000)
    c.expect_close(1000)


def test_refused_is_1013(daemon_factory):
    port = wsrtest.free_port()
    d = daemon_factory(config("127.0.0.1:%d" % port))
    c = d.connect("/b")
    c.expect_close(1013)


def test_missing_unix_socket_is_1013(daemon_factory, tmp_path):
    d = daemon_factory(config("unix:%s" % (tmp_path / "nobody.sock")))
    c = d.connect("/b")
    c.expect_close(1013)


def test_backend_close_is_1000(daemon_factory, backend_factory):
    be = backend_factory(mode="bye")
    d = daemon_factory(config(be.addr))
    c = d.connect("/b")
    assert c.read_message()[:2] == (OP_BINARY, b"bye")
    c.expect_close(1000)


def test_slow_client_bounds_memory(daemon_factory, backend_factory):
    total = 64 << 20
    be = backend_factory(mode="flood", flood=total)
    d = daemon_factory(config(be.addr, ))
    c = d.connect("/b")
    time.sleep(1.5)  # not reading: the daemon must stop reading the backend
    rss = d.rss_kb()
    assert rss < 48 * 1024, "daemon RSS %d kB while a client does not read" % rss
    got = 0
    c.sock.settimeout(10)
    while got < total:
        op, data, _ = c.read_message(10.0)
        got += len(data)
    assert got == total
    c.expect_close(1000)


@pytest.mark.parametrize("lines, message", [
    ("framing = text", "the backend handler needs 'backend = HOST:PORT' or "
                       "'backend = unix:/PATH'"),
    ("backend = localhost:80", "backend: expected HOST:PORT, [IPv6]:PORT or unix:/PATH "
                               "with a numeric host and a port, got 'localhost:80'"),
    ("backend = 127.0.0.1:1\nframing = utf8", "framing: expected binary or text, got 'utf8'"),
    ("backend = 127.0.0.1:1\ntimeoutz = 1", "timeoutz: unknown key for the backend handler, "
                                            "expected backend, framing or connect_timeout"),
])
def test_option_errors(tmp_path, lines, message):
    text = wsrtest.make_config().replace("{port}", "1") + \
        "[route /b]\nhandler = backend\n%s\n" % lines
    p = tmp_path / "t.ini"
    p.write_text(text)
    r = run_daemon(["-t", "-c", str(p)])
    last = lines.splitlines()[-1]
    n = text.splitlines().index(last) + 1 if ":" in message.split(" ")[0] else \
        text.splitlines().index("[route /b]") + 1
    assert r.returncode == 1
    assert r.stderr.decode() == "wsrouted: %s:%d: handler 'backend': %s\n" % (p, n, message)
