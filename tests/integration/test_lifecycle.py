"""Signals, graceful shutdown, logging, listeners (several TCP, IPv6, unix)."""

import asyncio
import os
import re
import signal
import socket
import time

import pytest
import websockets

import wsrtest
from wsrtest import OP_TEXT, WSClient


def connect_many(d, n):
    clients = []
    for i in range(n):
        c = d.connect()
        clients.append(c)
    for i, c in enumerate(clients):  # every one is really open
        c.echo(OP_TEXT, b"client %d" % i)
    return clients


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_graceful_shutdown_sends_1001(daemon_factory, sig):
    d = daemon_factory()
    clients = connect_many(d, 50)
    ports = [c.sock.getsockname()[1] for c in clients]
    t0 = time.monotonic()
    d.send_signal(sig)
    codes = []
    for c in clients:
        code, _ = c.read_close(3.0)
        codes.append(code)
        c.send_close(code)
    bad = [(i, code) for i, code in enumerate(codes) if code != 1001]
    assert not bad, "clients that did not get close 1001: %r" % bad[:10]
    for c in clients:
        c.expect_eof(3.0)
    rc = d.wait(max(0.1, 3.0 - (time.monotonic() - t0)))
    assert rc is not None, "daemon still running 3 s after %s" % sig.name
    assert rc == 0, "daemon exit status %r after %s" % (rc, sig.name)
    log = d.log_text()
    assert log.strip(), "empty log"
    assert "127.0.0.1" in log, "peer address not in the log"
    assert any(str(p) in log for p in ports), "no client port (peer=127.0.0.1:PORT) in the log"
    assert "1001" in log, "close code 1001 not logged"


def test_shutdown_with_websockets_clients(daemon_factory):
    d = daemon_factory()

    async def go():
        conns = [await websockets.connect(d.uri(), ping_interval=None, open_timeout=5,
                                          close_timeout=5) for _ in range(10)]
        for ws in conns:
            await ws.send("hi")
            assert await ws.recv() == "hi"
        d.send_signal(signal.SIGTERM)
        await asyncio.wait_for(asyncio.gather(*(ws.wait_closed() for ws in conns)), 5)
        return [ws.close_code for ws in conns]
    codes = asyncio.run(asyncio.wait_for(go(), 20))
    assert codes == [1001] * 10, codes
    assert d.wait(3.0) == 0


def test_shutdown_timeout_with_unresponsive_clients(daemon_factory):
    """Clients that never answer the close must not hold the daemon past shutdown_timeout."""
    cfg = wsrtest.make_config(shutdown_timeout="1s", close_timeout="10s")
    d = daemon_factory(cfg)
    clients = connect_many(d, 5)
    t0 = time.monotonic()
    d.send_signal(signal.SIGTERM)
    for c in clients:
        assert c.read_close(3.0)[0] == 1001
    rc = d.wait(4.0)
    elapsed = time.monotonic() - t0
    assert rc is not None, "daemon still running 4 s after SIGTERM (shutdown_timeout = 1s)"
    assert elapsed <= 3.0, "exit took %.2f s with shutdown_timeout = 1s" % elapsed
    for c in clients:
        c.expect_eof(1.0)


def test_sigterm_with_pending_handshakes(daemon):
    """Connections still in the handshake do not hold the daemon up."""
    socks = []
    for i in range(5):
        s = wsrtest.open_socket(("127.0.0.1", daemon.port))
        s.sendall(b"GET /echo HTTP/1.1\r\nHost: x\r\n")  # head not finished
        socks.append(s)
    ws = daemon.connect()
    time.sleep(0.1)
    t0 = time.monotonic()
    daemon.send_signal(signal.SIGTERM)
    assert ws.read_close(3.0)[0] == 1001
    ws.send_close(1001)
    rc = daemon.wait(3.0)
    assert rc == 0, "exit status %r (None: still running 3 s after SIGTERM)" % rc
    assert time.monotonic() - t0 < 3.0
    for s in socks:
        c = WSClient(s)
        c.expect_eof(2.0, allow_data=True)


def test_sigterm_idle_daemon_exits_0(daemon):
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(3.0) == 0


def test_no_new_connections_during_shutdown(daemon_factory):
    cfg = wsrtest.make_config(shutdown_timeout="3s", close_timeout="10s")
    d = daemon_factory(cfg)
    c = d.connect()
    d.send_signal(signal.SIGTERM)
    assert c.read_close(3.0)[0] == 1001
    # c does not answer, so the daemon is still draining: it must not accept new websockets.
    assert d.alive()
    try:
        n = WSClient.connect(("127.0.0.1", d.port), expect=None, timeout=2.0)
    except (ConnectionRefusedError, ConnectionResetError, wsrtest.ConnectionEnded):
        pass
    else:
        assert n.status != 101, "websocket accepted during shutdown"
    c.send_close(1001)
    c.expect_eof(3.0)
    assert d.wait(3.0) == 0


def test_log_has_connection_events(daemon):
    c = daemon.connect()
    port = c.sock.getsockname()[1]
    c.echo(OP_TEXT, b"x")
    c.send_close(1000)
    assert c.read_close()[0] == 1000
    c.expect_eof()

    def logged():
        log = daemon.log_text()
        return "127.0.0.1:%d" % port in log and "/echo" in log
    assert wsrtest.wait_until(logged, 2.0), "no log line with peer=127.0.0.1:%d and the route:\n%s" \
        % (port, daemon.log_tail())


def test_daemon_survives_many_short_connections(daemon):
    """Open/close churn leaks neither descriptors nor the process."""
    time.sleep(0.1)
    before = daemon.num_fds()
    for i in range(200):
        c = daemon.connect()
        if i % 2:
            c.send_close(1000)
            c.read_close()
        c.close_socket()
    ok = wsrtest.wait_until(lambda: daemon.num_fds() <= before + 2, 3.0)
    assert ok, "descriptors: %d before, %d after 200 closed connections" % (before, daemon.num_fds())
    daemon.connect().echo(OP_TEXT, b"alive")


# ------------------------------------------------------------ listeners


def test_unix_socket_listen(daemon_factory, tmp_path):
    path = os.path.join(str(tmp_path), "ws.sock")
    cfg = wsrtest.make_config(listen="unix:%s" % path)
    daemon_factory(cfg, ready=path)
    c = WSClient.connect(path)
    c.echo(OP_TEXT, b"over AF_UNIX")
    c.echo(wsrtest.OP_BINARY, os.urandom(100000))
    c.send_close(1000)
    assert c.read_close()[0] == 1000
    c.expect_eof()


def test_unix_socket_file_removed_at_stop_and_reload(daemon_factory, tmp_path):
    """The daemon removes the socket files it bound: when a reload drops the
    line, and at stop; a file someone else bound since is left alone."""
    kept = os.path.join(str(tmp_path), "kept.sock")
    gone = os.path.join(str(tmp_path), "gone.sock")
    cfg = wsrtest.make_config(listen="unix:%s\nlisten = unix:%s" % (kept, gone))
    d = daemon_factory(cfg, ready=kept)
    assert wsrtest.wait_until(lambda: os.path.exists(gone), 2.0)
    with open(d.conf_path) as f:
        text = f.read()
    with open(d.conf_path, "w") as f:
        f.write(text.replace("listen = unix:%s\n" % gone, ""))
    d.send_signal(signal.SIGHUP)
    assert wsrtest.wait_until(lambda: "event=reloaded" in d.log_text(), 5.0), d.log_tail()
    assert not os.path.exists(gone)
    WSClient.connect(kept).echo(OP_TEXT, b"still served")
    # Another socket bound at the kept path (say, a new instance) is not ours.
    os.unlink(kept)
    other = socket.socket(socket.AF_UNIX)
    other.bind(kept)
    try:
        assert d.stop() == (0, False)
        assert os.path.exists(kept)
    finally:
        other.close()
    os.unlink(kept)
    d2 = daemon_factory(cfg.replace("listen = unix:%s\n" % gone, ""), ready=kept)
    assert d2.stop() == (0, False)
    assert not os.path.exists(kept)


def test_unix_and_tcp_listen_together(daemon_factory, tmp_path):
    path = os.path.join(str(tmp_path), "both.sock")
    cfg = wsrtest.make_config(listen="127.0.0.1:{port}\nlisten = unix:%s" % path)
    # Ready once the unix socket accepts (it is opened after the TCP one):
    # the file exists from bind(), a moment before listen() (seen under TSan).
    d = daemon_factory(cfg, ready=path)
    WSClient.connect(path).echo(OP_TEXT, b"unix")
    d.connect().echo(OP_TEXT, b"tcp")


def test_two_tcp_listeners(daemon_factory):
    cfg = wsrtest.make_config(listen="127.0.0.1:{port}\nlisten = 127.0.0.1:{port2}")
    d = daemon_factory(cfg)
    d.connect().echo(OP_TEXT, b"first")
    WSClient.connect(("127.0.0.1", d.port2)).echo(OP_TEXT, b"second")


def test_ipv6_loopback_listen(daemon_factory):
    try:
        s = socket.socket(socket.AF_INET6)
        s.bind(("::1", 0))
        s.close()
    except OSError:
        pytest.skip("no IPv6 loopback here")
    cfg = wsrtest.make_config(listen="127.0.0.1:{port}\nlisten = [::1]:{port2}")
    d = daemon_factory(cfg)

    def v6_listens():
        try:
            wsrtest.open_socket(("::1", d.port2), timeout=1.0).close()
            return True
        except OSError:
            return False
    # Ready means the first listener answers; the second may come a moment
    # later (seen under valgrind, where that moment is long).
    assert wsrtest.wait_until(v6_listens, 5)
    c = WSClient.connect(("::1", d.port2))
    c.echo(OP_TEXT, b"v6")


def test_journald_priority_prefixes(daemon_factory, monkeypatch):
    """Under systemd (JOURNAL_STREAM set) every log line starts with a
    syslog priority prefix instead of a timestamp."""
    monkeypatch.setenv("JOURNAL_STREAM", "8:12345")
    d = daemon_factory(wsrtest.make_config(log_level="info"))
    c = d.connect()
    c.echo(wsrtest.OP_TEXT, b"journal")
    c.send_close(1000)
    c.read_close(3.0)
    c.close_socket()
    assert wsrtest.wait_until(lambda: "event=close" in d.log_text(), 3)
    lines = [l for l in d.log_text().splitlines() if l]
    assert lines and all(re.match(r"^<[3467]>", l) for l in lines), lines[:5]
    assert any(l.startswith("<6>") and "event=open" in l for l in lines)
    assert not any(re.match(r"^\d{4}-\d\d-\d\dT", l) for l in lines)
