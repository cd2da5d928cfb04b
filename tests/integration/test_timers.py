"""ping_period, timeout (inactivity), close_timeout, and their per-route
overrides. Timers are short (300 ms - 1 s) so the file runs in ~25 s."""

import asyncio
import os
import socket
import time

import pytest
import websockets

import wsrtest
from wsrtest import (OP_BINARY, OP_CLOSE, OP_PING, OP_PONG, OP_TEXT, ConnectionEnded,
                     WSTimeout)


def config(ping="0", timeout="0", close_timeout="500ms", route_extra="", more=""):
    return wsrtest.make_config(route_extra=route_extra, more=more, ping_period=ping,
                               timeout=timeout, close_timeout=close_timeout)


def collect_frames(c, duration, answer_pings=False, max_frames=1000):
    """Read frames for `duration` seconds. Returns (frames, ended_at or None).
    Answers a server close with a close (a well-behaved client)."""
    frames = []
    deadline = time.monotonic() + duration
    for _ in range(max_frames):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return frames, None
        try:
            f = c.read_frame(remaining)
        except WSTimeout:
            return frames, None
        except ConnectionEnded:
            return frames, time.monotonic()
        frames.append(f)
        if f.opcode == OP_PING and answer_pings:
            c.send_frame(OP_PONG, f.payload)
        elif f.opcode == OP_CLOSE:
            code, _ = f.close_code()
            c.send_close(code if code not in (None, 1005, 1006, 1015) else None)
    raise AssertionError("more than %d frames" % max_frames)


def wait_closed(c, timeout):
    """Like collect_frames, until the server closes TCP; returns (frames, ended_at)."""
    return collect_frames(c, timeout)


# ------------------------------------------------------------ ping_period


def test_server_sends_pings_raw(daemon_factory):
    d = daemon_factory(config(ping="300ms"))
    c = d.connect()
    t0 = time.monotonic()
    frames, ended = collect_frames(c, 1.7, answer_pings=True)
    assert ended is None, "connection ended after %.2f s" % (ended - t0)
    pings = [f for f in frames if f.opcode == OP_PING]
    assert all(f.fin and not f.masked and len(f.payload) <= 125 for f in pings), pings
    assert [f for f in frames if f.opcode != OP_PING] == [], frames
    assert 3 <= len(pings) <= 9, "%d pings in 1.7 s with ping_period = 300ms" % len(pings)
    c.echo(OP_TEXT, b"after pings")


def test_no_pings_when_ping_period_is_zero(daemon_factory):
    d = daemon_factory(config(ping="0"))
    c = d.connect()
    frames, ended = collect_frames(c, 1.0)
    assert frames == [] and ended is None, frames


def test_websockets_client_answers_pings_and_stays_open(daemon_factory):
    """ping_period 300ms, timeout 1s: the client's automatic pongs count as activity."""
    d = daemon_factory(config(ping="300ms", timeout="1s"))

    async def go():
        async with websockets.connect(d.uri(), ping_interval=None, max_size=None,
                                      open_timeout=5, close_timeout=5) as ws:
            await asyncio.sleep(2.5)
            assert ws.open, "closed by the server: %r %r" % (ws.close_code, ws.close_reason)
            await ws.send("still here")
            assert await asyncio.wait_for(ws.recv(), 3) == "still here"
    asyncio.run(asyncio.wait_for(go(), 15))


@pytest.mark.skipif(wsrtest.UNDER_VALGRIND, reason="the client's clock starts after a handshake "
                    "that takes ~0.5 s under valgrind, the daemon's at accept")
def test_raw_client_ignoring_pings_is_closed(daemon_factory):
    d = daemon_factory(config(ping="300ms", timeout="1s", close_timeout="500ms"))
    c = d.connect()
    t0 = time.monotonic()
    frames, ended = collect_frames(c, 4.0, answer_pings=False)
    assert ended is not None, "still open after 4 s; frames: %r" % frames[:10]
    assert 0.7 <= ended - t0 <= 3.0, "closed after %.2f s" % (ended - t0)
    assert any(f.opcode == OP_PING for f in frames), "no ping before the timeout"


# ------------------------------------------------------------ timeout


@pytest.mark.skipif(wsrtest.UNDER_VALGRIND, reason="the client's clock starts after a handshake "
                    "that takes ~0.5 s under valgrind, the daemon's at accept")
def test_idle_timeout_closes_silent_client(daemon_factory):
    d = daemon_factory(config(timeout="1s", close_timeout="1s"))
    c = d.connect()
    t0 = time.monotonic()
    frames, ended = wait_closed(c, 4.0)
    assert ended is not None, "silent client still connected after 4 s"
    assert 0.7 <= ended - t0 <= 3.0, "closed after %.2f s, expected ~1 s" % (ended - t0)
    closes = [f.close_code()[0] for f in frames if f.opcode == OP_CLOSE]
    assert all(code in (None, 1000, 1001) for code in closes), closes
    assert all(f.opcode == OP_CLOSE for f in frames), frames


@pytest.mark.skipif(wsrtest.UNDER_VALGRIND, reason="the client's clock starts after a handshake "
                    "that takes ~0.5 s under valgrind, the daemon's at accept")
def test_idle_timeout_is_an_inactivity_timer(daemon_factory):
    """A message at 0.7 s pushes the deadline to ~1.7 s."""
    d = daemon_factory(config(timeout="1s", close_timeout="1s"))
    c = d.connect()
    t0 = time.monotonic()
    time.sleep(0.7)
    c.echo(OP_TEXT, b"activity")
    frames, ended = wait_closed(c, 4.0)
    assert ended is not None, "still connected after 4.7 s"
    assert 1.4 <= ended - t0 <= 3.7, "closed %.2f s after connecting" % (ended - t0)


def _keepalive(c, kind, duration=2.5, period=0.3):
    t0 = time.monotonic()
    for i in range(int(duration / period) + 1):
        if time.monotonic() - t0 >= duration:
            break
        if kind == "pong":
            c.send_frame(OP_PONG, b"keepalive %d" % i)
        elif kind == "ping":
            c.send_frame(OP_PING, b"p%d" % i)
            f = c.read_frame(1.0)
            assert (f.opcode, f.payload) == (OP_PONG, b"p%d" % i), f
        else:
            c.echo(OP_TEXT, b"keepalive %d" % i)
        # Nothing else (in particular no close) may arrive meanwhile.
        frames, ended = collect_frames(c, period)
        assert ended is None and frames == [], "at %.2f s: %r ended=%r" % (
            time.monotonic() - t0, frames, ended)


def test_idle_timeout_kept_alive_by_pongs(daemon_factory):
    d = daemon_factory(config(timeout="1s"))
    c = d.connect()
    _keepalive(c, "pong")
    c.echo(OP_TEXT, b"alive after 2.5 s of pongs")


def test_idle_timeout_kept_alive_by_messages(daemon_factory):
    d = daemon_factory(config(timeout="1s"))
    c = d.connect()
    _keepalive(c, "message")
    c.echo(OP_TEXT, b"alive after 2.5 s of messages")


def test_idle_timeout_kept_alive_by_pings(daemon_factory):
    d = daemon_factory(config(timeout="1s"))
    c = d.connect()
    _keepalive(c, "ping")
    c.echo(OP_TEXT, b"alive after 2.5 s of pings")


def test_timeout_zero_means_no_timeout(daemon_factory):
    d = daemon_factory(config(timeout="0"))
    c = d.connect()
    frames, ended = collect_frames(c, 1.5)
    assert ended is None and frames == []
    c.echo(OP_TEXT, b"no timeout")


# ------------------------------------------------------------ close_timeout


def _released_after(d, fds0, t0, limit):
    """Seconds from t0 until the daemon holds no more than fds0 descriptors (or None)."""
    ok = wsrtest.wait_until(lambda: d.num_fds() <= fds0, limit - (time.monotonic() - t0), 0.02)
    return time.monotonic() - t0 if ok else None


@pytest.mark.skipif(wsrtest.UNDER_VALGRIND, reason="the daemon's descriptor count includes "
                    "memcheck's own, opened and closed when it likes")
def test_close_timeout_drops_unresponsive_peer(daemon_factory):
    """After the server's close, a client that never answers and never closes
    its socket is dropped (descriptor released) within close_timeout + 1.5 s."""
    d = daemon_factory(config(close_timeout="500ms"))
    time.sleep(0.1)
    fds0 = d.num_fds()
    c = d.connect()
    assert d.num_fds() == fds0 + 1
    c.send_frame(OP_TEXT, b"unmasked", mask=False)  # protocol error → close 1002
    code, _ = c.read_close(3.0)
    assert code == 1002
    t0 = time.monotonic()
    # The server may half-close (FIN) at once; we keep our side open and silent.
    c.expect_eof(2.0, close=False)
    took = _released_after(d, fds0, t0, 2.0)
    assert took is not None, "connection still held by the daemon 2 s after its close " \
        "(close_timeout = 500ms); fds %d → %d" % (fds0, d.num_fds())
    c.close_socket()


def _slow_reader(d, size, rcvbuf=32768):
    """A client with a small receive buffer that sends a `size`-byte message
    and its Close in one go: the echo and the Close reply queue behind it."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)   # before connect: the window
    s.settimeout(5.0)
    s.connect(("127.0.0.1", d.port))
    c = wsrtest.WSClient(s)
    req, c.key = wsrtest.handshake_request("/echo")
    s.sendall(req)
    assert c.read_head() == 101
    payload = os.urandom(size)
    s.sendall(wsrtest.build_frame(OP_BINARY, payload) + wsrtest.build_frame(
        OP_CLOSE, wsrtest.close_payload(1000)))
    return c, payload


BIG_ECHO = "max_frame_size = 8MiB\nmax_message_size = 8MiB\nmax_output_buffer = 16MiB\n"


def test_close_timeout_spares_a_peer_still_reading_the_echo(daemon_factory):
    """close_timeout (300 ms) bounds a peer that stopped, not one still taking
    the echo queued before the Close reply: a client reading 4 MiB at ~2 MiB/s
    gets all of it, then the Close (seen in CI under TSan: the daemon cut such
    a client 500 ms after its Close, 11 of 16 MiB written)."""
    d = daemon_factory(wsrtest.make_config(server_extra=BIG_ECHO, close_timeout="300ms"))
    size = 4 << 20
    c, payload = _slow_reader(d, size)
    t0 = time.monotonic()
    want = size + 10 + 4      # the echo's frame, then the Close reply
    for _ in range(10000):
        if len(c.buf) >= want or time.monotonic() - t0 > 15:
            break
        data = c.sock.recv(65536)
        if not data:
            break
        c.buf += data
        time.sleep(0.03)
    took = time.monotonic() - t0
    assert took > 0.6, "read in %.2f s: not slow enough to outlast close_timeout" % took
    f = c.read_frame()
    assert f.opcode == OP_BINARY and f.payload == payload, (f.opcode, len(f.payload))
    assert c.read_close()[0] == 1000, d.log_tail()
    c.close_socket()


def test_close_timeout_drops_a_peer_that_stops_reading(daemon_factory):
    """The same client never reading: dropped once the daemon's writes stall
    for close_timeout."""
    d = daemon_factory(wsrtest.make_config(server_extra=BIG_ECHO, close_timeout="300ms",
                                           log_level="info"))
    c, _ = _slow_reader(d, 4 << 20)
    assert wsrtest.wait_until(lambda: 'reason="close timeout"' in d.log_text(), 5.0), \
        d.log_tail()
    # Reset, not closed: the kernel dropped what it held for us rather than
    # keep an orphaned socket delivering it.
    reset = False
    c.sock.settimeout(2.0)
    for _ in range(1000):
        try:
            if not c.sock.recv(65536):
                break
        except ConnectionResetError:
            reset = True
            break
    assert reset, "the stalled connection was closed, not reset"
    c.close_socket()


def test_close_linger_max_caps_a_peer_reading_too_slowly(daemon_factory):
    """close_timeout restarts while the peer reads; close_linger_max (1.5 s
    here) bounds the whole closing phase: the same client reading steadily
    at ~320 KB/s, which would need ~13 s for the 4 MiB echo, is cut about
    1.5 s after its Close, without the rest of the echo."""
    d = daemon_factory(wsrtest.make_config(
        server_extra=BIG_ECHO + "close_linger_max = 1500ms\n", close_timeout="300ms",
        log_level="info"))
    c, _ = _slow_reader(d, 4 << 20)
    t0 = time.monotonic()
    got, cut_at = 0, None
    for _ in range(1000):
        if time.monotonic() - t0 > 10:
            break
        try:
            data = c.sock.recv(16384)
        except ConnectionResetError:
            data = b""
        if not data:
            cut_at = time.monotonic() - t0
            break
        got += len(data)
        time.sleep(0.05)
    assert cut_at is not None, "still open after 10 s; %d bytes read\n%s" % (got, d.log_tail())
    assert 1.2 <= cut_at <= 4.0, "cut after %.2f s (close_linger_max = 1.5 s)" % cut_at
    assert got < 4 << 20, "the whole echo came through (%d bytes)" % got
    assert wsrtest.wait_until(lambda: 'reason="close_linger_max"' in d.log_text(), 2.0), \
        d.log_tail()
    c.close_socket()


@pytest.mark.skipif(wsrtest.UNDER_VALGRIND, reason="the daemon's descriptor count includes "
                    "memcheck's own, opened and closed when it likes")
def test_close_timeout_after_idle_timeout(daemon_factory):
    """Idle timeout closes, client never answers: released within timeout + close_timeout + slack."""
    d = daemon_factory(config(timeout="500ms", close_timeout="500ms"))
    time.sleep(0.1)
    fds0 = d.num_fds()
    c = d.connect()
    t0 = time.monotonic()
    code, _ = c.read_close(3.0)
    assert code in (None, 1000, 1001), code
    took = _released_after(d, fds0, t0, 3.0)
    assert took is not None, "connection still held 3 s after connecting (timeout = 500ms, " \
        "close_timeout = 500ms)"
    assert took >= 0.35, "released after %.2f s, before the idle timeout" % took
    c.close_socket()


def test_close_handshake_completed_by_client_releases_at_once(daemon_factory):
    """A client that answers the server's close and closes its socket is released
    well before close_timeout."""
    d = daemon_factory(config(close_timeout="5s"))
    time.sleep(0.1)
    fds0 = d.num_fds()
    c = d.connect()
    c.send_frame(OP_TEXT, b"\xff")  # invalid UTF-8 → close 1007
    code, _ = c.read_close()
    assert code == 1007
    c.send_close(1007)
    t0 = time.monotonic()
    c.expect_eof(2.0)
    took = _released_after(d, fds0, t0, 2.0)
    assert took is not None and took < 1.0, "not released %.2f s after the close handshake" % (
        took or 2.0)


@pytest.mark.skipif(wsrtest.UNDER_VALGRIND, reason="the daemon's descriptor count includes "
                    "memcheck's own, opened and closed when it likes")
def test_client_initiated_close_releases_without_waiting_for_the_client(daemon_factory):
    """The client closes first: once the server's Close reply is with the
    kernel the closing handshake is complete, and the server closes the TCP
    connection at once (RFC 6455 7.1.1), not after the client's FIN or
    close_timeout: the client, keeping its socket open, still gets the Close
    and then EOF, and the daemon's descriptor is gone well within the 5 s."""
    d = daemon_factory(config(close_timeout="5s"))
    time.sleep(0.1)
    fds0 = d.num_fds()
    c = d.connect()
    assert c.echo(OP_TEXT, b"before the close")
    c.send_close(1000, b"bye")
    t0 = time.monotonic()
    code, _ = c.read_close()
    assert code == 1000
    c.expect_eof(2.0, close=False)
    took = _released_after(d, fds0, t0, 2.0)
    assert took is not None and took < 1.0, "not released %.2f s after the close handshake" % (
        took or 2.0)
    c.close_socket()


# ------------------------------------------------------------ per-route overrides


def test_route_overrides_timeout(daemon_factory):
    d = daemon_factory(config(timeout="0", close_timeout="500ms",
                              more="[route /short]\nhandler = echo\ntimeout = 1s\n"))
    long_ = d.connect("/echo")
    short = d.connect("/short")
    t0 = time.monotonic()
    frames, ended = wait_closed(short, 4.0)
    assert ended is not None, "/short (timeout = 1s) still open after 4 s"
    assert 0.7 <= ended - t0 <= 3.0, "/short closed after %.2f s" % (ended - t0)
    long_.echo(OP_TEXT, b"/echo has no timeout")


def test_route_overrides_ping_period(daemon_factory):
    d = daemon_factory(config(ping="0", more="[route /pingy]\nhandler = echo\n"
                                             "ping_period = 300ms\n"))
    quiet = d.connect("/echo")
    pingy = d.connect("/pingy")
    frames, ended = collect_frames(pingy, 1.5, answer_pings=True)
    assert ended is None
    assert sum(f.opcode == OP_PING for f in frames) >= 2, frames
    frames, ended = collect_frames(quiet, 0.1)
    assert frames == [] and ended is None, "pings on /echo with ping_period = 0: %r" % frames
