"""RFC 6455 framing rules on the server side: every violation gets the
exact close code, then the server closes the TCP connection; valid control
traffic (ping, pong, close codes) is handled per the RFC."""

import os
import socket
import struct
import time

import pytest

import wsrtest
from wsrtest import (OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT,
                     build_frame, close_payload)

# ------------------------------------------------------------ violations → 1002


def test_unmasked_client_frame(daemon):
    c = daemon.connect()
    c.send_frame(OP_TEXT, b"not masked", mask=False)
    c.expect_close(1002)


@pytest.mark.parametrize("rsv", [4, 2, 1], ids=["rsv1", "rsv2", "rsv3"])
def test_rsv_bits(daemon, rsv):
    c = daemon.connect()
    c.send_frame(OP_TEXT, b"hello", rsv=rsv)
    c.expect_close(1002)


def test_rsv_bit_on_control_frame(daemon):
    c = daemon.connect()
    c.send_frame(OP_PING, b"x", rsv=4)
    c.expect_close(1002)


@pytest.mark.parametrize("opcode", [3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF])
def test_reserved_opcodes(daemon, opcode):
    c = daemon.connect()
    c.send_frame(opcode, b"payload")
    c.expect_close(1002)


@pytest.mark.parametrize("opcode", [OP_PING, OP_PONG, OP_CLOSE])
def test_control_frame_payload_over_125(daemon, opcode):
    c = daemon.connect()
    payload = struct.pack("!H", 1000) + b"r" * 124 if opcode == OP_CLOSE else b"p" * 126
    c.send_frame(opcode, payload)
    c.expect_close(1002)


def test_control_frame_126_via_16bit_length(daemon):
    c = daemon.connect()
    c.send_frame(OP_PING, b"q" * 126, len_form=16)
    c.expect_close(1002)


def test_fragmented_ping(daemon):
    c = daemon.connect()
    c.send_frame(OP_PING, b"frag", fin=False)
    c.expect_close(1002)


def test_continuation_without_start(daemon):
    c = daemon.connect()
    c.send_frame(OP_CONT, b"orphan", fin=True)
    c.expect_close(1002)


def test_continuation_without_start_not_fin(daemon):
    c = daemon.connect()
    c.send_frame(OP_CONT, b"orphan", fin=False)
    c.expect_close(1002)


def test_continuation_after_completed_message(daemon):
    c = daemon.connect()
    c.echo(OP_TEXT, b"complete")
    c.send_frame(OP_CONT, b"late", fin=True)
    c.expect_close(1002)


@pytest.mark.parametrize("second", [OP_TEXT, OP_BINARY])
def test_new_message_during_fragmented_message(daemon, second):
    c = daemon.connect()
    c.send_frame(OP_TEXT, b"part one", fin=False)
    c.send_frame(second, b"intruder", fin=True)
    c.expect_close(1002)


def test_64bit_length_with_top_bit_set(daemon):
    c = daemon.connect()
    c.send_raw(build_frame(OP_BINARY, b"abcde", length=(1 << 63) | 5, len_form=64))
    c.expect_close(1002)


def test_64bit_length_with_top_bit_set_huge(daemon):
    c = daemon.connect()
    c.send_raw(build_frame(OP_BINARY, b"", length=0xFFFFFFFFFFFFFFFF, len_form=64))
    c.expect_close(1002)


# ------------------------------------------------------------ UTF-8 → 1007


BAD_UTF8 = {
    "lone_continuation": b"abc\x80def",
    "byte_ff": b"\xff",
    "overlong_slash": b"\xc0\xaf",
    "overlong_3byte": b"\xe0\x80\xaf",
    "surrogate": b"\xed\xa0\x80",
    "above_max": b"\xf4\x90\x80\x80",
    "f5_lead": b"\xf5\x80\x80\x80",
    "truncated_at_end": b"ok\xe2\x82",
    "autobahn_6_4_1": b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf4\x90\x80\x80\x65\x64\x69\x74\x65\x64",
}


@pytest.mark.parametrize("name", sorted(BAD_UTF8))
def test_invalid_utf8_text(daemon, name):
    c = daemon.connect()
    c.send_frame(OP_TEXT, BAD_UTF8[name])
    c.expect_close(1007)


def test_invalid_utf8_after_valid_messages_in_one_read(daemon):
    """Whole messages ahead of a bad one in the same read are answered
    first, in order; then 1007."""
    c = daemon.connect()
    c.send_raw(wsrtest.build_frame(OP_TEXT, b"one") + wsrtest.build_frame(OP_BINARY, b"\xfftwo") +
               wsrtest.build_frame(OP_TEXT, b"bad \xff") + wsrtest.build_frame(OP_TEXT, b"after"))
    assert c.read_message()[:2] == (OP_TEXT, b"one")
    assert c.read_message()[:2] == (OP_BINARY, b"\xfftwo")
    c.expect_close(1007)


def test_no_data_frames_after_our_close(daemon_factory):
    """RFC 6455 §5.5.1: once the daemon has sent its Close it sends no data
    frame, whatever the client still sends before answering it."""
    d = daemon_factory(wsrtest.make_config(route_extra="max_connection_lifetime = 300ms\n"))
    c = d.connect("/echo")
    assert c.read_close(timeout=3.0)[0] == 1001
    big = b"x" * 300
    c.send_raw(wsrtest.build_frame(OP_TEXT, b"late") + wsrtest.build_frame(OP_BINARY, big) +
               wsrtest.build_frame(OP_TEXT, b"frag", fin=False) +
               wsrtest.build_frame(OP_CONT, b"ment") +
               wsrtest.build_frame(OP_CLOSE, wsrtest.close_payload(1001, b"")))
    c.expect_eof(timeout=3.0)


def test_invalid_utf8_split_across_fragments(daemon):
    c = daemon.connect()
    # E2 82 | 28: a 3-byte sequence whose third byte is not a continuation.
    c.send_frame(OP_TEXT, b"euro \xe2\x82", fin=False)
    c.send_frame(OP_CONT, b"(", fin=True)
    c.expect_close(1007)


def test_invalid_utf8_message_truncated_in_last_fragment(daemon):
    c = daemon.connect()
    c.send_frame(OP_TEXT, b"abc", fin=False)
    c.send_frame(OP_CONT, b"\xf0\x9d\x84", fin=True)  # 4-byte sequence cut short
    c.expect_close(1007)


def test_invalid_utf8_fail_fast_within_frame(daemon):
    """Declared 1000 bytes, only the first 10 (invalid) sent: close 1007 now."""
    c = daemon.connect()
    frame = build_frame(OP_TEXT, b"\xff" + b"a" * 999)
    c.send_raw(frame[:2 + 2 + 4 + 10])  # header (16-bit length) + mask + 10 bytes
    t0 = time.monotonic()
    code, _ = c.read_close(3.0)
    assert code == 1007, "close code %r" % code
    assert time.monotonic() - t0 < 3.0
    c.send_close(1007)
    c.expect_eof()


def test_invalid_utf8_fail_fast_in_first_fragment(daemon):
    """First fragment already invalid: close 1007 without waiting for FIN."""
    c = daemon.connect()
    c.send_frame(OP_TEXT, b"\xc0\xafabc", fin=False)
    c.expect_close(1007)


def test_invalid_utf8_fail_fast_in_continuation(daemon):
    """Valid first fragment, invalid second (FIN=0): close 1007 before the message ends."""
    c = daemon.connect()
    c.send_frame(OP_TEXT, "déjà ".encode(), fin=False)
    c.send_frame(OP_CONT, b"vu \xed\xbf\xbf", fin=False)  # a UTF-16 surrogate
    c.expect_close(1007)


def test_binary_is_not_utf8_checked(daemon):
    c = daemon.connect()
    c.echo(OP_BINARY, b"\xff\xfe\xc0\xaf\xed\xa0\x80")


# ------------------------------------------------------------ close frames


def test_close_payload_one_byte(daemon):
    c = daemon.connect()
    c.send_frame(OP_CLOSE, b"\x03")
    got, _ = c.read_close()
    assert got == 1002
    c.expect_eof()


@pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535])
def test_close_invalid_codes(daemon, code):
    c = daemon.connect()
    c.send_close(code)
    got, _ = c.read_close()
    assert got == 1002, "close %d answered with %r" % (code, got)
    c.expect_eof()


@pytest.mark.parametrize("code", [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999])
def test_close_valid_codes_echoed(daemon, code):
    c = daemon.connect()
    c.send_close(code, b"bye")
    got, _ = c.read_close()
    assert got == code, "close %d answered with %r" % (code, got)
    c.expect_eof()


def test_close_with_max_reason(daemon):
    c = daemon.connect()
    c.send_close(1000, b"r" * 123)  # 125-byte payload
    got, _ = c.read_close()
    assert got == 1000
    c.expect_eof()


def test_close_reason_invalid_utf8(daemon):
    c = daemon.connect()
    c.send_close(1000, b"bad \xff reason")
    got, _ = c.read_close()
    assert got in (1002, 1007), "close code %r" % got
    c.expect_eof()


def test_close_empty_payload(daemon):
    c = daemon.connect()
    c.send_frame(OP_CLOSE, b"")
    got, reason = c.read_close()
    assert got in (None, 1000), "empty close answered with %r" % got
    c.expect_eof()


def test_close_during_fragmented_message(daemon):
    c = daemon.connect()
    c.send_frame(OP_TEXT, b"unfinished", fin=False)
    c.send_close(1000)
    got, _ = c.read_close()
    assert got == 1000
    c.expect_eof()


def test_no_data_echoed_after_close(daemon):
    """Frames after the client's close must not be processed."""
    c = daemon.connect()
    c.send_raw(build_frame(OP_CLOSE, close_payload(1000)) + build_frame(OP_TEXT, b"ignored"))
    got, _ = c.read_close()
    assert got == 1000
    c.expect_eof()


# ------------------------------------------------------------ ping / pong


@pytest.mark.parametrize("size", [0, 1, 125])
def test_ping_pong_same_payload(daemon, size):
    c = daemon.connect()
    payload = os.urandom(size)
    c.send_frame(OP_PING, payload)
    f = c.read_frame()
    assert f.opcode == OP_PONG and f.fin and not f.masked, f
    assert f.payload == payload


def test_many_pings(daemon):
    c = daemon.connect()
    c.send_raw(b"".join(build_frame(OP_PING, b"%d" % i) for i in range(100)))
    for i in range(100):
        f = c.read_frame()
        assert (f.opcode, f.payload) == (OP_PONG, b"%d" % i)


def test_unsolicited_pong_ignored(daemon):
    c = daemon.connect()
    c.send_frame(OP_PONG, b"unsolicited")
    c.send_frame(OP_PONG, b"")
    c.echo(OP_TEXT, b"still here")


def test_ping_between_fragments_then_message(daemon):
    c = daemon.connect()
    c.send_frame(OP_BINARY, b"\x01\x02", fin=False)
    c.send_frame(OP_PING, b"mid")
    c.send_frame(OP_CONT, b"\x03", fin=False)
    c.send_frame(OP_PONG, b"ignored")
    c.send_frame(OP_CONT, b"\x04", fin=True)
    op, payload, controls = c.read_message()
    if not controls:
        controls = [c.read_frame()]
    assert (op, payload) == (OP_BINARY, b"\x01\x02\x03\x04")
    assert [(f.opcode, f.payload) for f in controls] == [(OP_PONG, b"mid")]


# ------------------------------------------------------------ size limits → 1009


SMALL = wsrtest.make_config(server_extra="max_frame_size = 1KiB\nmax_message_size = 4KiB\n")


def test_frame_at_max_frame_size_ok(daemon_factory):
    d = daemon_factory(SMALL)
    c = d.connect()
    c.echo(OP_BINARY, b"z" * 1024)


def test_frame_over_max_frame_size(daemon_factory):
    d = daemon_factory(SMALL)
    c = d.connect()
    c.send_frame(OP_BINARY, b"z" * 1025)
    c.expect_close(1009)


def test_frame_over_max_frame_size_header_only(daemon_factory):
    """The declared length alone is enough to refuse the frame."""
    d = daemon_factory(SMALL)
    c = d.connect()
    c.send_raw(build_frame(OP_BINARY, b"", length=10 << 20, len_form=64))
    c.expect_close(1009)


def test_message_at_max_message_size_ok(daemon_factory):
    d = daemon_factory(SMALL)
    c = d.connect()
    parts = [bytes([65 + i]) * 1024 for i in range(4)]
    c.send_raw(b"".join(build_frame(OP_TEXT if i == 0 else OP_CONT, p, fin=(i == 3))
                        for i, p in enumerate(parts)))
    op, payload, _ = c.read_message()
    assert (op, payload) == (OP_TEXT, b"".join(parts))


def test_message_over_max_message_size(daemon_factory):
    d = daemon_factory(SMALL)
    c = d.connect()
    for i in range(4):
        c.send_frame(OP_BINARY if i == 0 else OP_CONT, b"y" * 1024, fin=False)
    c.send_frame(OP_CONT, b"y", fin=True)
    c.expect_close(1009)


def test_route_overrides_max_message_size(daemon_factory):
    cfg = wsrtest.make_config(more="[route /small]\nhandler = echo\nmax_message_size = 64KiB\n")
    d = daemon_factory(cfg)
    big = d.connect("/echo")
    big.echo(OP_BINARY, b"b" * (65 << 10))
    small = d.connect("/small")
    small.echo(OP_BINARY, b"s" * (64 << 10))
    small.send_frame(OP_BINARY, b"s" * ((64 << 10) + 1))
    small.expect_close(1009)
    big.echo(OP_BINARY, b"still fine")


def test_route_overrides_max_frame_size(daemon_factory):
    cfg = wsrtest.make_config(more="[route /tiny]\nhandler = echo\nmax_frame_size = 100B\n")
    d = daemon_factory(cfg)
    t = d.connect("/tiny")
    t.echo(OP_TEXT, b"t" * 100)
    t.send_frame(OP_TEXT, b"t" * 101)
    t.expect_close(1009)
    d.connect("/echo").echo(OP_TEXT, b"e" * 101)


def test_default_max_frame_size_is_1MiB(daemon):
    """No size keys in the config: max_frame_size defaults to 1 MiB."""
    c = daemon.connect()
    c.echo(OP_BINARY, os.urandom(1 << 20))
    c.send_frame(OP_BINARY, b"d" * ((1 << 20) + 1))
    c.expect_close(1009)


def test_default_max_message_size_is_16MiB(daemon):
    c = daemon.connect()
    chunk = b"m" * (1 << 20)
    c.send_raw(b"".join(build_frame(OP_BINARY if i == 0 else OP_CONT, chunk, fin=(i == 15))
                        for i in range(16)))
    op, payload, _ = c.read_message(20)
    assert op == OP_BINARY and len(payload) == 16 << 20 and payload == chunk * 16
    for i in range(16):
        c.send_frame(OP_BINARY if i == 0 else OP_CONT, chunk, fin=False)
    c.send_frame(OP_CONT, b"!", fin=True)
    c.expect_close(1009, timeout=5.0)


# ------------------------------------------------------------ robustness


def test_violation_on_one_connection_does_not_affect_others(daemon):
    good = daemon.connect()
    bad = daemon.connect()
    bad.send_frame(OP_TEXT, b"x", mask=False)
    bad.expect_close(1002)
    good.echo(OP_TEXT, b"unaffected")


def test_abrupt_client_disconnect_mid_frame(daemon):
    c = daemon.connect()
    frame = build_frame(OP_BINARY, b"q" * 5000)
    c.send_raw(frame[:100])
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.close_socket()  # RST
    time.sleep(0.2)
    assert daemon.alive()
    daemon.connect().echo(OP_TEXT, b"after reset")
