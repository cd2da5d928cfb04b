"""The built-in broadcast handler: fan-out in order to every connection of
the route (or room), a bounded queue per receiver, and a slow receiver
either dropped with 1008 or skipping messages — never unbounded memory."""

import re
import select
import struct
import time

import pytest

import wsrtest
from wsrtest import OP_BINARY, OP_CLOSE, OP_TEXT, WSClient, run_daemon

N_CLIENTS = 500
MSG_SIZE = 1000


def bc_config(options="", path="/bc"):
    # send_buffer bounds the kernel's share, so that a reader that stops
    # reading fills max_queue after ~100 KB instead of the ~4 MB autotuning
    # would allow; close_timeout keeps a dropped reader's close frame queued
    # until the test reads it.
    return wsrtest.make_config(log_level="info") + (
        "[route %s]\nhandler = broadcast\nsend_buffer = 16KiB\nclose_timeout = 30s\n%s"
        % (path, options))


def frame(opcode, payload):
    """The exact unmasked frame the server sends for one message."""
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 127, n)
    return head + payload


def message(i):
    return (b"msg %06d " % i).ljust(MSG_SIZE, b"x")


def slow_client(d, path):
    """A client that reads nothing until told. (Not with a tiny SO_RCVBUF:
    loopback's 64 KB segments would then be dropped and retransmitted with
    exponential backoff, stalling the test.) Its kernel takes ~64 KB, the
    server's send_buffer ~32 KB: 400 messages of 1000 bytes overflow it."""
    return d.connect(path)


def connect_many(d, path, n):
    return [d.connect(path) for _ in range(n)]


def read_exactly_all(clients, want, timeout):
    """Every client must receive exactly the bytes `want` (checked as a whole)."""
    got = {c: bytearray(c.buf) for c in clients}
    for c in clients:
        c.buf.clear()
        c.sock.setblocking(False)
    pending = {c.sock: c for c in clients if len(got[c]) < len(want)}
    deadline = time.monotonic() + timeout
    while pending:
        left = deadline - time.monotonic()
        assert left > 0, "%d clients still short of %d bytes" % (len(pending), len(want))
        r, _, _ = select.select(list(pending), [], [], min(left, 1.0))
        for s in r:
            c = pending[s]
            data = s.recv(1 << 20)
            assert data, "server closed a fast reader"
            got[c] += data
            if len(got[c]) >= len(want):
                del pending[s]
    for c in clients:
        c.sock.setblocking(True)
        c.sock.settimeout(5.0)
        assert bytes(got[c]) == want, "a fast reader got different bytes"


def send_paced(sender, readers, n_msgs, chunk=20):
    """Sends n_msgs in chunks that the readers read whole before the next
    (a burst of 400 would overflow every reader's queue, not only the slow
    one's: Python reads 500 sockets far slower than the daemon writes)."""
    for base in range(0, n_msgs, chunk):
        ids = range(base, min(base + chunk, n_msgs))
        for i in ids:
            sender.send_binary(message(i))
        read_exactly_all(readers, b"".join(frame(OP_BINARY, message(i)) for i in ids), 30)


def test_fanout_500_with_one_slow_reader_dropped(daemon_factory):
    wsrtest.raise_nofile(8192)
    n_msgs = 400
    d = daemon_factory(bc_config("max_queue = 16\noverflow = close\n"))
    slow = slow_client(d, "/bc")
    fast = connect_many(d, "/bc", N_CLIENTS - 1)
    sender = fast[0]
    rss_before = d.rss_kb()
    send_paced(sender, fast, n_msgs)
    # The slow reader got a prefix of the stream, in order, then 1008.
    i = 0
    while True:
        f = slow.read_frame(5.0)
        if f.opcode == OP_CLOSE:
            assert f.close_code()[0] == 1008, f.close_code()
            break
        assert f.opcode == OP_BINARY and f.payload == message(i), "slow reader: frame %d" % i
        i += 1
    assert 0 < i < n_msgs, "the slow reader got %d of %d messages" % (i, n_msgs)
    slow.send_close(1008)
    slow.expect_eof(5.0)
    # One shared copy per message: far less than 500 copies of the stream.
    assert d.rss_kb() - rss_before < 64 * 1024
    assert "event=broadcast_overflow" in d.log_text()
    # Everybody else is still connected and in order.
    sender.send_text("after")
    read_exactly_all(fast, frame(OP_TEXT, b"after"), 20)
    for c in fast[:5]:
        c.send_close(1000)
        c.expect_close(1000)


def test_slow_reader_skips_messages(daemon_factory):
    n_msgs = 400
    d = daemon_factory(bc_config("max_queue = 8\noverflow = skip\ninclude_sender = no\n"))
    slow = slow_client(d, "/bc")
    sender = d.connect("/bc")
    fast = d.connect("/bc")
    send_paced(sender, [fast], n_msgs)
    # The slow one now reads what reached it: an increasing subsequence.
    seen = []
    while True:
        try:
            op, data, _ = slow.read_message(1.0)
        except wsrtest.WSTimeout:
            break
        assert op == OP_BINARY
        seen.append(int(data[4:10]))
        assert len(seen) <= n_msgs
    assert seen == sorted(seen) and len(set(seen)) == len(seen)
    assert 0 < len(seen) < n_msgs, "slow reader saw %d of %d" % (len(seen), n_msgs)
    # Caught up, it is still a member and gets the next message.
    sender.send_text("last")
    read_exactly_all([fast], frame(OP_TEXT, b"last"), 10)
    assert slow.read_message(5.0)[:2] == (OP_TEXT, b"last")
    # The sender hears nothing of its own (include_sender = no).
    sender.send_close(1000)
    sender.expect_close(1000)
    slow.send_close(1000)
    slow.expect_close(1000)
    # Logged when the daemon frees the connection, just after our EOF.
    pattern = r"event=broadcast_skipped messages=%d\b" % (n_msgs - len(seen))
    deadline = time.monotonic() + 5
    while not re.search(pattern, d.log_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert re.search(pattern, d.log_text()), d.log_tail()


def test_rooms_are_separate(daemon_factory):
    d = daemon_factory(bc_config("room_param = room\n"))
    a1 = d.connect("/bc?room=a")
    a2 = d.connect("/bc?x=1&room=a")
    b1 = d.connect("/bc?room=b")
    lobby = d.connect("/bc")
    a1.send_text("to a")
    for c in (a1, a2):
        assert c.read_message()[:2] == (OP_TEXT, b"to a")
    b1.send_text("to b")
    assert b1.read_message()[:2] == (OP_TEXT, b"to b")
    lobby.send_text("to lobby")
    assert lobby.read_message()[:2] == (OP_TEXT, b"to lobby")
    # Nothing leaked across rooms: the next message each sees is its own room's.
    a2.send_text("a again")
    b1.send_text("b again")
    assert a1.read_message()[:2] == (OP_TEXT, b"a again")
    assert a2.read_message()[:2] == (OP_TEXT, b"a again")
    assert b1.read_message()[:2] == (OP_TEXT, b"b again")
    d.connect("/bc?room=" + "r" * 200, expect=403).close_socket()
    for c in (a1, a2, b1, lobby):
        c.send_close(1000)
        c.expect_close(1000)


@pytest.mark.parametrize("line, message", [
    ("max_queue = 0", "max_queue: expected a number of messages, 1..1000000, got '0'"),
    ("max_queue = 12x", "max_queue: expected a number of messages, 1..1000000, got '12x'"),
    ("overflow = maybe", "overflow: expected close or skip, got 'maybe'"),
    ("include_sender = perhaps", "include_sender: expected yes or no, got 'perhaps'"),
    ("room_param = a&b", "room_param: expected a query parameter name, got 'a&b'"),
    ("rooms = 3", "rooms: unknown key for the broadcast handler, expected max_queue, "
                  "overflow, room_param or include_sender"),
])
def test_option_errors(tmp_path, line, message):
    text = bc_config(line + "\n").replace("{port}", "1")
    p = tmp_path / "t.ini"
    p.write_text(text)
    r = run_daemon(["-t", "-c", str(p)])
    n = text.splitlines().index(line) + 1
    assert r.returncode == 1
    assert r.stderr.decode() == "wsrouted: %s:%d: handler 'broadcast': %s\n" % (p, n, message)
