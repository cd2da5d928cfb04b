"""Many concurrent connections and backpressure (a client that never reads
must not make the daemon buffer without bound)."""

import asyncio
import os
import select
import socket
import time

import websockets

import wsrtest
from wsrtest import OP_BINARY, OP_TEXT

N_CONN = 1000
N_MSG = 10


def quiet_config(**kw):
    return wsrtest.make_config(log_level="info", **kw)


def test_1000_concurrent_connections(daemon_factory):
    nofile = wsrtest.raise_nofile(8192)
    assert nofile >= 2 * N_CONN + 100, "RLIMIT_NOFILE %d too low for this test" % nofile
    d = daemon_factory(quiet_config())
    uri = d.uri()
    stats = {}

    async def go():
        sem = asyncio.Semaphore(100)  # bound the connect burst (listen backlog)

        async def open_one(i):
            async with sem:
                return await websockets.connect(uri, ping_interval=None, max_size=None,
                                                open_timeout=10, close_timeout=5,
                                                compression=None)
        t0 = time.monotonic()
        conns = await asyncio.gather(*(open_one(i) for i in range(N_CONN)))
        stats["connect"] = time.monotonic() - t0
        stats["daemon_fds"] = d.num_fds()

        async def talk(i, ws):
            for j in range(N_MSG):
                msg = "conn %d msg %d %s" % (i, j, "x" * (j * 37))
                if j % 2:
                    msg = msg.encode()
                await ws.send(msg)
                got = await ws.recv()
                assert got == msg, "conn %d msg %d: got %r" % (i, j, got[:40])
            return True
        t1 = time.monotonic()
        results = await asyncio.gather(*(talk(i, ws) for i, ws in enumerate(conns)))
        stats["talk"] = time.monotonic() - t1
        assert all(results)
        await asyncio.gather(*(ws.close() for ws in conns))
        return [ws.close_code for ws in conns]

    codes = asyncio.run(asyncio.wait_for(go(), 40))
    assert stats["daemon_fds"] >= N_CONN, \
        "daemon has only %d descriptors with %d clients open" % (stats["daemon_fds"], N_CONN)
    assert codes == [1000] * N_CONN, "close codes: %r" % sorted(set(codes))
    # Everything is gone again: the daemon still serves.
    d.connect().echo(OP_TEXT, b"after the crowd")


def test_concurrent_large_messages_do_not_mix(daemon_factory):
    d = daemon_factory(quiet_config(server_extra="max_output_buffer = 4MiB\n"))

    async def go():
        async def client(i):
            async with websockets.connect(d.uri(), ping_interval=None, max_size=None,
                                          open_timeout=10, compression=None) as ws:
                for j in range(5):
                    payload = bytes([i]) * (1 << 20) if j % 2 else os.urandom(300000)
                    await ws.send(payload)
                    got = await ws.recv()
                    assert got == payload, "client %d message %d corrupted" % (i, j)
            return True
        return await asyncio.gather(*(client(i) for i in range(20)))
    assert all(asyncio.run(asyncio.wait_for(go(), 40)))


def test_backpressure_client_that_never_reads(daemon_factory):
    d = daemon_factory(quiet_config(server_extra="max_output_buffer = 1MiB\n"))
    flooder = d.connect()
    time.sleep(0.1)
    rss0 = d.rss_kb()
    payload = os.urandom(256 << 10)
    frame = wsrtest.build_frame(OP_BINARY, payload)
    view = memoryview(frame)
    sock = flooder.sock
    sock.setblocking(False)

    frames_done, off, sent = 0, 0, 0
    peak = rss0
    t0 = time.monotonic()
    last_sample = 0.0
    stalled = 0
    for _ in range(200000):  # bounded; the 3 s limit below ends it first
        now = time.monotonic()
        if now - t0 >= 3.0:
            break
        if now - last_sample >= 0.05:
            last_sample = now
            peak = max(peak, d.rss_kb())
            if peak - rss0 > 300 * 1024:  # clearly unbounded: stop early
                break
        _, w, _ = select.select([], [sock], [], 0.05)
        if not w:
            stalled += 1
            continue
        try:
            n = sock.send(view[off:])
        except BlockingIOError:
            continue
        sent += n
        off += n
        if off == len(frame):
            frames_done += 1
            off = 0
    peak = max(peak, d.rss_kb())
    growth_mb = (peak - rss0) / 1024.0
    assert d.alive(), "daemon died under the flood"
    assert growth_mb < 100, "daemon RSS grew by %.0f MB while a client pushed %.0f MB " \
        "without reading" % (growth_mb, sent / 1e6)

    # Meanwhile other clients are served promptly.
    other = d.connect()
    other.echo(OP_TEXT, b"not starved", timeout=3.0)

    # Finish the partial frame, then read everything back: nothing was lost.
    sock.setblocking(True)
    sock.settimeout(10.0)
    if off:
        sock.sendall(view[off:])
        frames_done += 1
    deadline = time.monotonic() + 30.0
    for i in range(frames_done):
        op, data, _ = flooder.read_message(max(0.1, deadline - time.monotonic()))
        assert op == OP_BINARY and data == payload, "echo %d of %d differs" % (i, frames_done)
    flooder.echo(OP_TEXT, b"flooder still usable")
    other.echo(OP_TEXT, b"other still usable")
    assert stalled > 0 or sent < (64 << 20), "client was never throttled (%d MB sent)" % (sent >> 20)
    print("flood: %.1f MB sent, %d stalls, RSS +%.1f MB" % (sent / 1e6, stalled, growth_mb))


def test_slow_reader_does_not_block_others(daemon_factory):
    """A client with a full output buffer must not delay another client's echoes."""
    d = daemon_factory(quiet_config(server_extra="max_output_buffer = 256KiB\n"))
    slow = d.connect()
    slow.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.sock.setblocking(False)
    frame = wsrtest.build_frame(OP_BINARY, b"s" * (64 << 10))
    view, off = memoryview(frame), 0
    for _ in range(2000):  # at most ~128 MB; stops as soon as the socket blocks
        try:
            off = (off + slow.sock.send(view[off:])) % len(frame)
        except BlockingIOError:
            break
    else:
        raise AssertionError("the daemon never stopped reading from a client that does not read")
    fast = d.connect()
    t0 = time.monotonic()
    for i in range(50):
        fast.echo(OP_TEXT, b"fast %d" % i, timeout=2.0)
    assert time.monotonic() - t0 < 3.0
    assert d.alive()
