"""Echo handler: payloads of every length class, text and binary, with the
independent python3-websockets client and with the raw client (fragmented
input, early data, frame encoding of the answers)."""

import asyncio
import os

import pytest
import websockets

import wsrtest
from wsrtest import OP_BINARY, OP_CONT, OP_PING, OP_PONG, OP_TEXT

BIG_CONFIG = wsrtest.make_config(server_extra="max_frame_size = 32MiB\n"
                                              "max_message_size = 32MiB\n"
                                              "max_output_buffer = 32MiB\n")

SIZES = [0, 1, 125, 126, 127, 65535, 65536, 1 << 20, 16 << 20]


def run(coro, timeout=60.0):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def ws_connect(uri, **kw):
    kw.setdefault("max_size", None)
    kw.setdefault("ping_interval", None)
    kw.setdefault("open_timeout", 5)
    kw.setdefault("close_timeout", 5)
    return websockets.connect(uri, **kw)


def text_of(n):
    """n bytes of valid UTF-8 text mixing 1-, 2-, 3- and 4-byte sequences."""
    unit = "aé€𝄞"  # 1 + 2 + 3 + 4 = 10 bytes
    s = unit * (n // 10)
    s += "b" * (n - len(s.encode("utf-8")))
    assert len(s.encode("utf-8")) == n
    return s


@pytest.fixture
def big_daemon(daemon_factory):
    return daemon_factory(BIG_CONFIG)


@pytest.mark.parametrize("size", SIZES)
def test_websockets_binary_sizes(big_daemon, size):
    payload = os.urandom(size)

    async def go():
        async with ws_connect(big_daemon.uri()) as ws:
            await ws.send(payload)
            got = await ws.recv()
            assert isinstance(got, bytes), "binary message echoed as text"
            assert len(got) == size
            assert got == payload
            await ws.close()
            assert ws.close_code == 1000
    run(go())


@pytest.mark.parametrize("size", SIZES)
def test_websockets_text_sizes(big_daemon, size):
    payload = text_of(size)

    async def go():
        async with ws_connect(big_daemon.uri()) as ws:
            await ws.send(payload)
            got = await ws.recv()
            assert isinstance(got, str), "text message echoed as binary"
            assert got == payload
    run(go())


def test_websockets_utf8_multibyte(daemon):
    samples = ["héllo wörld", "κόσμε", "日本語のテキスト", "𝄞 music", "emoji 😀🎉👍🏽",
               "\u0000nul", "\uffff\U0010ffff", "mixed aé€𝄞" * 100]

    async def go():
        async with ws_connect(daemon.uri()) as ws:
            for s in samples:
                await ws.send(s)
                got = await ws.recv()
                assert got == s
    run(go())


def test_websockets_random_binary(daemon):
    rnd = [os.urandom(n) for n in (2, 3, 7, 200, 4096, 70000, 300000)]

    async def go():
        async with ws_connect(daemon.uri()) as ws:
            for p in rnd:
                await ws.send(p)
                assert await ws.recv() == p
    run(go())


def test_websockets_1000_sequential_messages(daemon):
    async def go():
        async with ws_connect(daemon.uri()) as ws:
            for i in range(1000):
                msg = "message %d" % i if i % 2 else ("m%d" % i).encode()
                await ws.send(msg)
                got = await ws.recv()
                assert got == msg, "message %d: got %r" % (i, got)
    run(go())


def test_websockets_1000_pipelined_messages_in_order(daemon):
    """Send 1,000 messages without waiting; the echoes must come back in order."""
    async def go():
        async with ws_connect(daemon.uri()) as ws:
            msgs = ["#%d %s" % (i, "x" * (i % 300)) for i in range(1000)]

            async def sender():
                for m in msgs:
                    await ws.send(m)
            task = asyncio.ensure_future(sender())
            for i, m in enumerate(msgs):
                got = await ws.recv()
                assert got == m, "echo %d out of order: %r" % (i, got[:20])
            await task
    run(go())


def test_websockets_subprotocol_negotiated(daemon_factory):
    cfg = wsrtest.make_config(route_extra="subprotocols = chat.v1, chat.v2\n")
    d = daemon_factory(cfg)

    async def go():
        async with ws_connect(d.uri(), subprotocols=["chat.v2", "chat.v1"]) as ws:
            assert ws.subprotocol == "chat.v2"
            await ws.send("hi")
            assert await ws.recv() == "hi"
    run(go())


def test_raw_frames_from_server_are_unmasked_and_minimal(daemon):
    """Server frames: RSV clear, unmasked, minimal length encoding (RFC 6455 5.2)."""
    c = daemon.connect()
    for size in (0, 125, 126, 65535, 65536, 200000):
        c.send_binary(b"\xab" * size)
        parts = []
        for _ in range(10000):
            f = c.read_frame(5)
            assert f.rsv == 0 and not f.masked, f
            assert f.opcode == (OP_BINARY if not parts else OP_CONT), f
            n = len(f.payload)
            want = 7 if n < 126 else (16 if n < 65536 else 64)
            assert c.last_len_form == want, "%d-byte payload sent with %d-bit length" % (
                n, c.last_len_form)
            parts.append(f.payload)
            if f.fin:
                break
        assert b"".join(parts) == b"\xab" * size
    c.send_close(1000)
    assert c.read_close() == (1000, b"")
    c.expect_eof()


def test_raw_1000_fragments_echoed_whole(daemon):
    c = daemon.connect()
    pieces = [("frag%04d|" % i).encode() for i in range(1000)]
    data = b"".join(build(i, p) for i, p in enumerate(pieces))
    c.send_raw(data)
    op, payload, _ = c.read_message(10)
    assert op == OP_TEXT
    assert payload == b"".join(pieces)
    assert c.is_open()


def build(i, p, n=1000, first=OP_TEXT):
    return wsrtest.build_frame(first if i == 0 else OP_CONT, p, fin=(i == n - 1))


def test_raw_fragmented_binary_with_empty_fragments(daemon):
    c = daemon.connect()
    frames = [wsrtest.build_frame(OP_BINARY, b"", fin=False),
              wsrtest.build_frame(OP_CONT, b"\x00\x01", fin=False),
              wsrtest.build_frame(OP_CONT, b"", fin=False),
              wsrtest.build_frame(OP_CONT, b"\x02", fin=True)]
    c.send_raw(b"".join(frames))
    op, payload, _ = c.read_message()
    assert (op, payload) == (OP_BINARY, b"\x00\x01\x02")


def test_raw_fragmented_text_split_inside_utf8_sequences(daemon):
    """Valid UTF-8 whose multi-byte sequences are split across fragments."""
    text = "€𝄞é€𝄞".encode("utf-8")
    c = daemon.connect()
    frames = []
    for i in range(len(text)):  # one byte per fragment
        frames.append(wsrtest.build_frame(OP_TEXT if i == 0 else OP_CONT, text[i:i + 1],
                                          fin=(i == len(text) - 1)))
    c.send_raw(b"".join(frames))
    op, payload, _ = c.read_message()
    assert (op, payload) == (OP_TEXT, text)


def test_raw_ping_between_fragments(daemon):
    c = daemon.connect()
    c.send_frame(OP_TEXT, b"Hello, ", fin=False)
    c.send_frame(OP_PING, b"in-between")
    c.send_frame(OP_CONT, b"world", fin=True)
    op, payload, controls = c.read_message()
    if not controls:  # the pong may also come after the echoed message
        f = c.read_frame(2)
        controls = [f]
    assert (op, payload) == (OP_TEXT, b"Hello, world")
    assert [(f.opcode, f.payload) for f in controls] == [(OP_PONG, b"in-between")]


def test_raw_early_data_after_handshake(daemon):
    """A first frame sent in the same packet as the handshake is processed."""
    early = wsrtest.build_frame(OP_TEXT, b"early bird") + wsrtest.build_frame(OP_PING, b"p")
    c = daemon.connect(early=early)
    op, payload, controls = c.read_message()
    assert (op, payload) == (OP_TEXT, b"early bird")
    f = c.read_frame(2) if not controls else controls[0]
    assert (f.opcode, f.payload) == (OP_PONG, b"p")


def test_raw_many_small_messages_in_one_write(daemon):
    c = daemon.connect()
    msgs = [("m%d" % i).encode() for i in range(500)]
    c.send_raw(b"".join(wsrtest.build_frame(OP_TEXT, m) for m in msgs))
    for i, m in enumerate(msgs):
        op, payload, _ = c.read_message()
        assert payload == m, "message %d" % i


def test_raw_frame_sent_byte_by_byte(daemon):
    c = daemon.connect()
    frame = wsrtest.build_frame(OP_BINARY, bytes(range(200)))
    for i in range(len(frame)):
        c.send_raw(frame[i:i + 1])
    op, payload, _ = c.read_message()
    assert (op, payload) == (OP_BINARY, bytes(range(200)))


def test_query_string_route_echoes(daemon):
    c = daemon.connect("/echo?x=1&y=2")
    c.echo(OP_TEXT, b"with query")


def test_two_routes_are_independent(daemon_factory):
    cfg = wsrtest.make_config(more="[route /other]\nhandler = echo\n")
    d = daemon_factory(cfg)
    a = d.connect("/echo")
    b = d.connect("/other")
    b.echo(OP_TEXT, b"bbb")
    a.echo(OP_BINARY, b"aaa")


def _daemon_socket_of(pid, client):
    """The daemon's descriptor for the TCP connection whose other end is
    client, found through /proc/net/tcp (its inode) and /proc/PID/fd."""
    want_local = client.getsockname()[1]
    want_remote = client.getpeername()[1]
    inode = None
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            cols = line.split()
            local, remote = int(cols[1].split(":")[1], 16), int(cols[2].split(":")[1], 16)
            if local == want_remote and remote == want_local:
                inode = cols[9]
    assert inode is not None, "no server-side socket for local port %d" % want_local
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            if os.readlink("/proc/%d/fd/%s" % (pid, fd)) == "socket:[%s]" % inode:
                return int(fd)
        except OSError:
            continue
    raise AssertionError("socket inode %s not among the daemon's descriptors" % inode)


@pytest.mark.skipif(os.geteuid() != 0, reason="pidfd_getfd on another process needs root")
def test_accepted_sockets_have_tcp_nodelay(daemon):
    """Replies must not wait for Nagle: every accepted TCP socket has
    TCP_NODELAY (inherited from the listening socket, so it costs no syscall
    per connection). Checked on the daemon's own descriptor, taken with
    pidfd_getfd, for several connections (with workers, on each worker)."""
    import ctypes
    import socket
    libc = ctypes.CDLL(None, use_errno=True)
    SYS_pidfd_open, SYS_pidfd_getfd = 434, 438
    pidfd = libc.syscall(SYS_pidfd_open, daemon.pid, 0)
    assert pidfd >= 0, os.strerror(ctypes.get_errno())
    try:
        for _ in range(4):
            c = daemon.connect()
            assert c.echo(OP_TEXT, b"nodelay?")
            fd = libc.syscall(SYS_pidfd_getfd, pidfd, _daemon_socket_of(daemon.pid, c.sock), 0)
            assert fd >= 0, os.strerror(ctypes.get_errno())
            with socket.socket(fileno=fd) as s:   # our duplicate: closed here
                assert s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
            c.close_socket()
    finally:
        os.close(pidfd)
