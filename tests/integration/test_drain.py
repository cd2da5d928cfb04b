"""Drain and connection lifetime.

* SIGTERM with drain_window: 2,000 clients get their close frames (1001)
  spread over the window, then the daemon exits 0;
* SIGUSR2: the same with 1012 (service restart), exit status 75;
* a reload that removes a route drains that route's connections only;
* shutdown_timeout cuts a peer that never answers the close;
* a connection still in its handshake gets a 503, not a drop;
* max_connection_lifetime closes with 1001 within [lifetime * 0.9, lifetime].

Close arrival times are taken by one selector over every client socket, so
a slow reader does not delay the others; every loop is bounded in count
and time.
"""

import os
import re
import selectors
import signal
import socket
import struct
import time

import pytest

import wsrtest
from wsrtest import OP_TEXT

JITTER = 0.10       # CONFIG_LIFETIME_JITTER_PERCENT
TICK = 0.02         # the timing wheel's tick (timer.h)


# ------------------------------------------------------------ many clients


class Peer:
    """One raw client socket watched by Crowd: the server's close frame and EOF."""

    __slots__ = ("sock", "buf", "opened_at", "close_at", "code", "reason", "eof_at",
                 "answer", "path")

    def __init__(self, sock, opened_at, path, answer):
        self.sock, self.opened_at, self.path, self.answer = sock, opened_at, path, answer
        self.buf = bytearray()
        self.close_at = self.code = self.reason = self.eof_at = None


def open_clients(d, n, path="/echo", answer=True, batch=200):
    """n upgraded clients; requests are sent a batch at a time, then the 101s read."""
    peers = []
    for start in range(0, n, batch):
        pending = []
        for _ in range(min(batch, n - start)):
            s = wsrtest.open_socket(("127.0.0.1", d.port), timeout=10)
            req, _ = wsrtest.handshake_request(path)
            s.sendall(req)
            pending.append(s)
        for s in pending:
            c = wsrtest.WSClient(s)
            c.read_head(10.0)
            assert c.status == 101, (c.status, c.reason)
            assert not c.buf, "bytes after the 101: %r" % bytes(c.buf)
            peers.append(Peer(s, time.monotonic(), path, answer))
    return peers


def collect_closes(peers, timeout, close=True):
    """Watch every socket until each peer saw its close frame and EOF, or timeout.
    A peer with answer=True replies to the close frame at once. close=False
    leaves the sockets open (a peer that never answers nor goes)."""
    sel = selectors.DefaultSelector()
    for p in peers:
        p.sock.setblocking(False)
        sel.register(p.sock, selectors.EVENT_READ, p)
    deadline = time.monotonic() + timeout
    left = len(peers)
    for _ in range(1000000):
        if left == 0 or time.monotonic() >= deadline:
            break
        for key, _ in sel.select(max(0.0, min(0.2, deadline - time.monotonic()))):
            p = key.data
            now = time.monotonic()
            try:
                data = p.sock.recv(65536)
            except BlockingIOError:
                continue
            except ConnectionResetError:
                data = b""
            if not data:
                p.eof_at = now
                sel.unregister(p.sock)
                left -= 1
                continue
            p.buf += data
            if p.close_at is None and len(p.buf) >= 2:
                n = p.buf[1] & 0x7F
                assert p.buf[0] == 0x88 and n < 126, "not a close frame: %r" % bytes(p.buf[:20])
                if len(p.buf) >= 2 + n:
                    p.close_at = now
                    p.code = struct.unpack("!H", p.buf[2:4])[0] if n >= 2 else None
                    p.reason = bytes(p.buf[4:2 + n]).decode()
                    if p.answer:
                        try:
                            p.sock.send(wsrtest.build_frame(wsrtest.OP_CLOSE,
                                                            bytes(p.buf[2:4])))
                        except OSError:
                            pass
    sel.close()
    if close:
        for p in peers:
            p.sock.close()


def buckets(times, start, window, n=10):
    counts = [0] * n
    for t in times:
        counts[min(n - 1, max(0, int((t - start) / window * n)))] += 1
    return counts


# ------------------------------------------------------------ SIGTERM spread


def test_sigterm_spreads_2000_closes_over_the_window(daemon_factory):
    window = 4.0
    d = daemon_factory(wsrtest.make_config(drain_window="4s", shutdown_timeout="9s",
                                           close_timeout="2s", log_level="info"))
    peers = open_clients(d, 2000)
    t0 = time.monotonic()
    d.send_signal(signal.SIGTERM)
    collect_closes(peers, window + 5.0)
    rc = d.wait(max(0.1, window + 3.0 - (time.monotonic() - t0)))
    exit_after = time.monotonic() - t0

    missing = [i for i, p in enumerate(peers) if p.close_at is None]
    assert not missing, "%d of 2000 clients got no close frame" % len(missing)
    wrong = [(p.code, p.reason) for p in peers if p.code != 1001]
    assert not wrong, "close codes other than 1001: %r" % wrong[:5]
    assert all(p.reason == "server shutting down" for p in peers)
    times = sorted(p.close_at - t0 for p in peers)
    counts = buckets(times, 0.0, window)
    fair = len(times) / 10
    assert max(counts) <= 3 * fair, "a tenth of the window holds %d closes (fair share %d): " \
        "%r" % (max(counts), fair, counts)
    assert min(counts) >= fair / 3, "a tenth of the window holds only %d closes: %r" % (
        min(counts), counts)
    assert times[0] <= 0.1 * window + 0.3, "first close %.3f s after SIGTERM" % times[0]
    assert 0.9 * window <= times[-1] <= window + 0.5, "last close at %.3f s, window %.1f s" % (
        times[-1], window)
    assert all(p.eof_at is not None for p in peers), "clients the daemon did not disconnect"
    assert rc == 0, "exit status %r %.2f s after SIGTERM (None: still running)" % (rc, exit_after)
    assert exit_after <= window + 2.5, "exit %.2f s after SIGTERM" % exit_after
    print("close times by tenth of the window: %r; first %.3f s, last %.3f s; exit after "
          "%.2f s" % (counts, times[0], times[-1], exit_after))


def test_sigusr2_is_a_restart_drain_with_1012(daemon_factory):
    d = daemon_factory(wsrtest.make_config(drain_window="300ms", shutdown_timeout="5s"))
    peers = open_clients(d, 20)
    t0 = time.monotonic()
    d.send_signal(signal.SIGUSR2)
    collect_closes(peers, 4.0)
    assert [(p.code, p.reason) for p in peers] == [(1012, "service restart")] * 20
    assert max(p.close_at for p in peers) - t0 <= 0.3 + 0.5
    rc = d.wait(3.0)
    assert rc == 75, "exit status %r after SIGUSR2 (75: restart me)" % rc
    assert "event=shutdown signal=USR2" in d.log_text()


# ------------------------------------------------------------ hard close, handshakes


def test_shutdown_timeout_cuts_a_peer_that_never_answers(daemon_factory):
    """The hard close fires at shutdown_timeout (counted from the signal) even
    though close_timeout would wait longer: the daemon exits 0 then."""
    d = daemon_factory(wsrtest.make_config(drain_window="500ms", shutdown_timeout="1500ms",
                                           close_timeout="10s"))
    peers = open_clients(d, 3, answer=False)
    t0 = time.monotonic()
    d.send_signal(signal.SIGTERM)
    # The close frame, then the daemon's FIN (its lingering close); we stay.
    collect_closes(peers, 1.2, close=False)
    assert [p.code for p in peers] == [1001] * 3
    assert all(p.close_at - t0 <= 0.5 + 0.3 for p in peers)
    assert d.alive(), "the daemon did not wait for the peers' answers"
    rc = d.wait(3.0)
    elapsed = time.monotonic() - t0
    assert rc == 0, "exit status %r (None: still running 3 s after shutdown_timeout)" % rc
    assert 1.4 <= elapsed <= 2.5, "exit %.2f s after SIGTERM, shutdown_timeout 1.5 s" % elapsed
    assert "event=shutdown_timeout open=3" in d.log_text()
    for p in peers:
        p.sock.close()


def test_window_leaves_the_last_peer_its_close_timeout(daemon_factory):
    """drain_window 5 s does not fit shutdown_timeout 2 s with close_timeout
    800 ms: the window is cut to 1.2 s, so every peer gets its Close well
    before the hard close (with the window cut only to shutdown_timeout, the
    last slot and the hard close raced and a peer could be cut unwarned)."""
    d = daemon_factory(wsrtest.make_config(drain_window="5s", shutdown_timeout="2s",
                                           close_timeout="800ms", log_level="info"))
    peers = open_clients(d, 40)
    t0 = time.monotonic()
    d.send_signal(signal.SIGTERM)
    collect_closes(peers, 4.0)
    assert [p.code for p in peers] == [1001] * 40
    last = max(p.close_at for p in peers) - t0
    assert last <= 1.2 + 0.4, "last close %.2f s after SIGTERM, window cut to 1.2 s" % last
    assert last >= 0.6, "closes not spread (last at %.2f s)" % last
    assert d.wait(3.0) == 0
    assert "drain_window_ms=1200" in d.log_text()
    assert "event=shutdown_timeout" not in d.log_text()


def test_handshakes_in_progress_get_503(daemon_factory):
    d = daemon_factory(wsrtest.make_config(drain_window="2s", shutdown_timeout="3s",
                                           close_timeout="3s"))
    partial = wsrtest.open_socket(("127.0.0.1", d.port))
    partial.sendall(b"GET /echo HTTP/1.1\r\nHost: x\r\n")     # head not finished
    silent = wsrtest.open_socket(("127.0.0.1", d.port))       # nothing sent yet
    ws = d.connect()                      # keeps the daemon draining meanwhile
    assert wsrtest.wait_until(lambda: d.log_text().count("event=accept") >= 3, 3.0)
    d.send_signal(signal.SIGTERM)
    for s in (partial, silent):
        c = wsrtest.WSClient(s)
        c.read_head(2.0)
        assert c.status == 503, (c.status, c.reason)
        c.expect_eof(2.0, allow_data=True)
        s.close()           # else the daemon lingers on it for close_timeout
    code, reason = ws.read_close(3.0)
    assert (code, reason) == (1001, b"server shutting down")
    ws.send_close(1001)
    ws.expect_eof(2.0)
    ws.close_socket()
    # Every peer answered and went: out well before shutdown_timeout (3 s).
    assert d.wait(2.0) == 0
    # No new connection meanwhile: the listeners were closed first.
    with pytest.raises(OSError):
        wsrtest.open_socket(("127.0.0.1", d.port), timeout=1.0)


def test_tls_handshake_in_progress_gets_503_once_it_reaches_http(daemon_factory, tmp_path):
    """Connected before SIGTERM, TLS handshake after it: the 503 comes over TLS."""
    from test_tls import client_ctx, make_cert, tls_config
    cert, key = make_cert(tmp_path)
    d = daemon_factory(wsrtest.set_server(tls_config(cert, key), drain_window="1s",
                                          shutdown_timeout="4s"))
    raw = wsrtest.open_socket(("127.0.0.1", d.port))          # no ClientHello yet
    assert wsrtest.wait_until(lambda: "event=accept" in d.log_text(), 3.0)
    d.send_signal(signal.SIGTERM)
    assert wsrtest.wait_until(lambda: "event=shutdown" in d.log_text(), 3.0)
    s = client_ctx(cert).wrap_socket(raw, server_hostname="localhost")
    req, _ = wsrtest.handshake_request("/echo")
    s.sendall(req)
    c = wsrtest.WSClient(s)
    c.read_head(3.0)
    assert c.status == 503, (c.status, c.reason)
    s.close()
    assert d.wait(3.0) == 0


# ------------------------------------------------------------ reload


def test_reload_drains_the_removed_route_only(daemon_factory):
    more = "[route /gone]\nhandler = echo\n"
    d = daemon_factory(wsrtest.make_config(drain_window="1s", more=more))
    gone = open_clients(d, 40, path="/gone")
    kept = [d.connect("/echo") for _ in range(5)]
    with open(d.conf_path) as f:
        text = f.read()
    with open(d.conf_path, "w") as f:
        f.write(text.replace(more, ""))
    t0 = time.monotonic()
    d.send_signal(signal.SIGHUP)
    collect_closes(gone, 4.0)
    assert [(p.code, p.reason) for p in gone] == [(1001, "route removed")] * 40
    times = sorted(p.close_at - t0 for p in gone)
    assert times[-1] <= 1.0 + 0.5, "last close %.2f s after SIGHUP, drain_window 1s" % times[-1]
    assert times[-1] - times[0] >= 0.6, "closes not spread: %.3f..%.3f s" % (times[0], times[-1])
    assert max(buckets(times, 0.0, 1.0)) <= 3 * 4, buckets(times, 0.0, 1.0)
    for c in kept:
        assert c.is_open(), "a connection of a kept route was closed"
    # One line per loop that had some (with workers, one per worker thread).
    drained = [int(n) for n in re.findall(r"event=route_drain (?:worker=\d+ )?connections=(\d+) "
                                          r"code=1001", d.log_text())]
    assert sum(drained) == 40, drained
    c = wsrtest.WSClient.connect(("127.0.0.1", d.port), "/gone", expect=None)
    assert c.status == 404
    c.close_socket()
    for c in kept:
        c.close_socket()


# ------------------------------------------------------------ lifetime


def test_max_connection_lifetime_with_jitter(daemon_factory):
    """[server] sets 1.2 s for every route; /forever overrides it with 0."""
    life = 1.2
    d = daemon_factory(wsrtest.make_config(
        server_extra="max_connection_lifetime = 1200ms",
        more="[route /forever]\nhandler = echo\nmax_connection_lifetime = 0\n"))
    short = open_clients(d, 30)
    forever = [d.connect("/forever") for _ in range(5)]
    collect_closes(short, life + 2.0)
    assert [(p.code, p.reason) for p in short] == [(1001, "connection lifetime reached")] * 30
    # The client sees the 101 a little after the daemon counts from; the wheel ticks 20 ms.
    lived = sorted(p.close_at - p.opened_at for p in short)
    slack = 0.25 if wsrtest.under_sanitizer(d) else 0.15
    assert lived[0] >= life * (1 - JITTER) - 0.05, "closed after %.3f s" % lived[0]
    assert lived[-1] <= life + TICK + slack, "closed after %.3f s" % lived[-1]
    assert lived[-1] - lived[0] >= 0.02, "no jitter: %r" % lived
    for c in forever:
        assert c.is_open(), "a connection of a route with max_connection_lifetime = 0 closed"
        c.close_socket()


def test_lifetime_close_is_a_normal_close_handshake(daemon):
    """Per route, on the websockets client: close 1001, wasClean."""
    import asyncio
    import websockets
    d = daemon
    with open(d.conf_path) as f:
        text = f.read()
    with open(d.conf_path, "w") as f:
        f.write(text + "[route /brief]\nhandler = echo\nmax_connection_lifetime = 500ms\n")
    d.send_signal(signal.SIGHUP)
    assert wsrtest.wait_until(lambda: "event=reloaded" in d.log_text(), 3.0)

    async def go():
        async with websockets.connect(d.uri("/brief"), ping_interval=None,
                                      open_timeout=5, close_timeout=5) as ws:
            await ws.send("x")
            assert await ws.recv() == "x"
            await asyncio.wait_for(ws.wait_closed(), 3.0)
            return ws.close_code, ws.close_reason
    assert asyncio.run(asyncio.wait_for(go(), 10)) == (1001, "connection lifetime reached")
    assert d.connect("/echo").is_open()


# ------------------------------------------------------------ systemd STATUS=


@pytest.mark.skipif(os.environ.get("WSROUTED_HAVE_SYSTEMD", "yes") != "yes",
                    reason="built --without-systemd")
def test_status_counts_connections_left_while_draining(daemon_factory, tmp_path, monkeypatch):
    path = str(tmp_path / "notify.sock")
    ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    ns.bind(path)
    monkeypatch.setenv("NOTIFY_SOCKET", path)     # inherited by the daemon
    try:
        d = daemon_factory(wsrtest.make_config(drain_window="3s", shutdown_timeout="6s"))
        peers = open_clients(d, 10)
        d.send_signal(signal.SIGTERM)
        statuses = []
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline and not any("left" in s for s in statuses):
            ns.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                msg = ns.recv(4096).decode()
            except socket.timeout:
                break
            statuses += [l[7:] for l in msg.split("\n") if l.startswith("STATUS=")]
        draining = [s for s in statuses if s.startswith("draining")]
        assert draining, statuses
        assert re.match(r"draining, closing with 1001: 10 connection\(s\) left, "
                        r"hard close in [56]s(, workers [0-9+]+)?$", draining[0]), draining
        collect_closes(peers, 5.0)
        assert d.wait(3.0) == 0
    finally:
        ns.close()
