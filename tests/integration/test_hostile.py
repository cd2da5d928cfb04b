"""Hostile clients (part of the reliability plan, sized for CI): fragment
floods, frames announcing more than they send, and slowloris handshakes
while legitimate clients keep being served."""

import select
import socket
import statistics
import threading
import time

import wsrtest
from wsrtest import OP_BINARY, OP_CONT, OP_TEXT


def quiet(**kw):
    return wsrtest.make_config(log_level="warn", **kw)


def test_fragment_flood_memory_bounded(daemon_factory):
    """50 connections each send one 128 KiB message as 131,072 one-byte
    fragments; every echo comes back whole and the daemon's memory stays
    within a small multiple of what the partial messages hold."""
    n_conn, n_frag = 50, 131072
    d = daemon_factory(quiet())
    key = b"\x11\x22\x33\x44"
    payload = bytes((i * 7 + 65) % 91 + 32 for i in range(n_frag))
    frames = [wsrtest.build_frame(OP_BINARY, payload[:1], fin=False, mask_key=key)]
    frames += [wsrtest.build_frame(OP_CONT, payload[i:i + 1], fin=False, mask_key=key)
               for i in range(1, n_frag - 1)]
    frames.append(wsrtest.build_frame(OP_CONT, payload[-1:], fin=True, mask_key=key))
    stream = b"".join(frames)
    base = d.rss_kb()
    clients = [wsrtest.WSClient.connect(("127.0.0.1", d.port)) for _ in range(n_conn)]
    peak = [base]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], d.rss_kb())
            time.sleep(0.05)

    t = threading.Thread(target=sample)
    t.start()
    errors = []

    def send(c):
        try:
            c.sock.sendall(stream)
        except OSError as e:
            errors.append(e)

    senders = [threading.Thread(target=send, args=(c,)) for c in clients]
    try:
        for s in senders:
            s.start()
        for c in clients:
            op, got, _ = c.read_message(timeout=60)
            assert op == OP_BINARY and got == payload
        for s in senders:
            s.join(30)
    finally:
        stop.set()
        t.join(5)
    assert not errors, errors
    grown_kb = peak[0] - base
    # ≤ 2x the payload of every partial message at once, plus slack for the
    # echo output and allocator overhead.
    budget_kb = 2 * n_conn * n_frag // 1024 + 8 * 1024
    assert grown_kb <= budget_kb, "RSS grew %d KiB (budget %d KiB)" % (grown_kb, budget_kb)
    for c in clients:
        c.close_socket()


def test_announced_length_is_not_preallocated(daemon_factory):
    """A frame that announces 60 MiB but sends 1 MiB pins about what arrived,
    not what was announced."""
    d = daemon_factory(quiet(server_extra="max_frame_size = 64MiB\nmax_message_size = 64MiB"))
    base = d.rss_kb()
    c = wsrtest.WSClient.connect(("127.0.0.1", d.port))
    head = wsrtest.build_frame(OP_BINARY, b"", length=60 << 20, mask_key=b"\0\0\0\0")
    c.sock.sendall(head + b"x" * (1 << 20))
    time.sleep(0.5)
    grown_kb = d.rss_kb() - base
    assert grown_kb < 4 * 1024, "RSS grew %d KiB for 1 MiB received" % grown_kb
    # Still mid-frame: nothing comes back and the connection stays up.
    c.sock.settimeout(0.3)
    try:
        got = c.sock.recv(16)
        assert False, "server answered mid-frame: %r" % got
    except socket.timeout:
        pass
    c.close_socket()


def _legit_probe(addr, results, stop, interval=0.1):
    """A client every `interval`: connect, upgrade, one echo, close."""
    while not stop.is_set():
        t0 = time.monotonic()
        try:
            c = wsrtest.WSClient.connect(addr, timeout=2.0)
            c.echo(OP_TEXT, b"probe", timeout=2.0)
            ok = True
            c.close_socket()
        except (AssertionError, OSError):
            ok = False
        results.append((ok, time.monotonic() - t0))
        stop.wait(max(0.0, interval - (time.monotonic() - t0)))


def test_slowloris_handshakes_are_cut_and_others_served(daemon_factory):
    """1,000 connections trickle their request heads (one byte every 0.5 s);
    each is cut at handshake_timeout (counted from accept) while a legitimate
    client every 100 ms still gets through quickly."""
    n_slow, deadline_s = 1000, 2.0
    wsrtest.raise_nofile(8192)
    d = daemon_factory(quiet(handshake_timeout="2s"))
    req, _ = wsrtest.handshake_request()
    slow = []
    for _ in range(n_slow):
        s = socket.create_connection(("127.0.0.1", d.port), timeout=5)
        s.setblocking(False)
        slow.append([s, 0, time.monotonic(), None])   # sock, bytes sent, opened, cut at
    by_sock = {x[0]: x for x in slow}
    results, stop = [], threading.Event()
    probe = threading.Thread(target=_legit_probe, args=(("127.0.0.1", d.port), results, stop))
    probe.start()
    try:
        end = time.monotonic() + deadline_s + 2.5
        next_send = 0.0
        while time.monotonic() < end and any(x[3] is None for x in slow):
            now = time.monotonic()
            if now >= next_send:
                for x in slow:
                    if x[3] is None and x[1] < len(req) - 4:
                        try:
                            x[0].send(req[x[1]:x[1] + 1])
                            x[1] += 1
                        except OSError:
                            x[3] = now
                next_send = now + 0.5
            socks = [x[0] for x in slow if x[3] is None]
            readable, _, _ = select.select(socks[:1000], [], [], 0.05)
            for s in readable:
                try:
                    data = s.recv(4096)
                except OSError:
                    data = b""
                if not data:
                    by_sock[s][3] = time.monotonic()
    finally:
        stop.set()
        probe.join(10)
        for x in slow:
            x[0].close()
    cut = [x[3] - x[2] for x in slow if x[3] is not None]
    assert len(cut) == n_slow, "%d slow connections never cut" % (n_slow - len(cut))
    assert min(cut) >= deadline_s - 0.3, "cut too early: %.2f s" % min(cut)
    assert max(cut) <= deadline_s + 1.0, "cut too late: %.2f s" % max(cut)
    ok = [t for (good, t) in results if good]
    assert len(results) >= 20
    assert len(ok) == len(results), "%d of %d probes failed" % (len(results) - len(ok), len(results))
    p99 = sorted(ok)[max(0, int(len(ok) * 0.99) - 1)]
    assert p99 <= 0.25, "probe p99 %.1f ms (median %.1f ms)" % (p99 * 1000,
                                                             statistics.median(ok) * 1000)
