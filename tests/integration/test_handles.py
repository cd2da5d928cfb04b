"""Connection handles: a plugin's own thread sends and closes through
wsr_handle_send/wsr_handle_close while connections come and go; a send
after on_close is refused, never a crash. Run with the normal (or ASan)
daemon, and with daemon/wsrouted-tsan under ThreadSanitizer."""

import os
import re
import signal
import time

import pytest

import wsrtest
from wsrtest import OP_CLOSE, OP_TEXT

HERE = os.path.dirname(os.path.abspath(__file__))
TEST_PLUGIN_DIR = os.path.abspath(os.environ.get("WSROUTED_TEST_PLUGIN_DIR")
                                  or os.path.join(HERE, "..", "plugins"))
TSAN_BIN = os.environ.get("WSROUTED_TSAN_BIN", "")

VARIANTS = ["plain", "tsan"]


def start(daemon_factory, variant):
    plugin_dir = TEST_PLUGIN_DIR
    if variant == "tsan":
        if not os.path.exists(TSAN_BIN):
            pytest.skip("no ThreadSanitizer build (--enable-sanitize builds have none)")
        plugin_dir = os.path.join(TEST_PLUGIN_DIR, "tsan")
    cfg = wsrtest.make_config(log_level="info",
                              server_extra="plugin_dir = %s\n" % plugin_dir)
    cfg += "[route /t]\nhandler = plugin:threaded\n"
    d = daemon_factory(cfg, start=False)
    if variant == "tsan":
        d.binary = TSAN_BIN
    d.start()
    return d


def stop_and_stats(d):
    """SIGTERM; destroy() logs the thread's counters; no TSan report."""
    rc, killed = d.stop(signal.SIGTERM, 20.0)
    assert not killed and rc == 0, d.log_tail()
    log = d.log_text()
    assert "ThreadSanitizer" not in log, log[log.index("ThreadSanitizer") - 200:][:4000]
    m = re.search(r"event=threaded_stats sent=(\d+) late_refused=(\d+) late_accepted=(\d+)", log)
    assert m, d.log_tail()
    return [int(x) for x in m.groups()]


def read_ticks(c, n):
    for _ in range(n):
        op, data, _ = c.read_message(5.0)
        assert op == OP_TEXT and data.startswith(b"tick "), data


def close_after_ticks(c):
    """Reads the ticks still in flight, then the close frame: its code."""
    for _ in range(100000):
        f = c.read_frame(5.0)
        if f.opcode == OP_TEXT:
            continue
        assert f.opcode == OP_CLOSE, f
        return f.close_code()[0]
    raise AssertionError("no close frame")


@pytest.mark.parametrize("variant", VARIANTS)
def test_thread_sends_and_late_sends_fail(daemon_factory, variant):
    d = start(daemon_factory, variant)
    # Rounds of connections that read a few ticks from the plugin's thread,
    # then go away while the thread keeps sending to them.
    for _ in range(5):
        conns = [d.connect("/t") for _ in range(20)]
        for c in conns:
            read_ticks(c, 3)
        for i, c in enumerate(conns):
            if i % 2:
                c.send_close(1000)
                assert close_after_ticks(c) == 1000
                c.expect_eof(5.0)
            else:
                c.close_socket()  # abrupt: 1006 on the daemon's side
    time.sleep(0.3)  # the thread notices every on_close
    sent, refused, accepted = stop_and_stats(d)
    assert accepted == 0
    assert refused == 100, "late sends refused: %d of 100" % refused
    assert sent >= 300


@pytest.mark.parametrize("variant", VARIANTS)
def test_thread_closes_through_handle(daemon_factory, variant):
    d = start(daemon_factory, variant)
    c = d.connect("/t")
    read_ticks(c, 2)
    c.send_text("close")
    assert close_after_ticks(c) == 4000
    c.send_close(4000)
    c.expect_eof(5.0)
    stop_and_stats(d)
