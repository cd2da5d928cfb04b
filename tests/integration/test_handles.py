"""Connection handles: a plugin's own thread sends and closes through
wsr_handle_send/wsr_handle_close while connections come and go; a send
after on_close is refused, never a crash. Run with the normal (or ASan)
daemon, and with daemon/wsrouted-tsan under ThreadSanitizer."""

import re
import signal
import time

import pytest

import wsrtest
from wsrtest import OP_CLOSE, OP_TEXT

VARIANTS = ["plain", "tsan"]


def start(daemon_factory, variant, workers=None):
    extra = "plugin_dir = %s\n" % wsrtest.test_plugin_dir(variant)
    if workers is not None:
        extra += "workers = %d\n" % workers
    cfg = wsrtest.make_config(log_level="info", server_extra=extra)
    cfg += "[route /t]\nhandler = plugin:threaded\n"
    return wsrtest.start_variant(daemon_factory, cfg, variant)


def stop_and_stats(d, instances=None):
    """SIGTERM; each instance's destroy() logs its thread's counters (one
    instance per worker with workers = N; instances None: as many as
    WSR_TEST_WORKERS made): their sums; no TSan report."""
    rc, killed = d.stop(signal.SIGTERM, 20.0)
    assert not killed and rc == 0, d.log_tail()
    log = d.log_text()
    assert "ThreadSanitizer" not in log, log[log.index("ThreadSanitizer") - 200:][:4000]
    found = re.findall(r"event=threaded_stats sent=(\d+) late_refused=(\d+) "
                       r"late_accepted=(\d+)", log)
    if instances is None:
        assert len(found) >= 1, d.log_tail()
    else:
        assert len(found) == instances, d.log_tail()
    return [sum(int(f[i]) for f in found) for i in range(3)]


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


def churn(d, rounds):
    """Rounds of 20 connections that read a few ticks from the plugin's
    thread, then go away (half with a close handshake, half abruptly: 1006
    on the daemon's side) while the thread keeps sending to them."""
    for _ in range(rounds):
        conns = [d.connect("/t") for _ in range(20)]
        for c in conns:
            read_ticks(c, 3)
        for i, c in enumerate(conns):
            if i % 2:
                c.send_close(1000)
                assert close_after_ticks(c) == 1000
                c.expect_eof(5.0)
            else:
                c.close_socket()


@pytest.mark.parametrize("variant", VARIANTS)
def test_thread_sends_and_late_sends_fail(daemon_factory, variant):
    d = start(daemon_factory, variant)
    churn(d, 5)
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


@pytest.mark.parametrize("variant", VARIANTS)
def test_thread_handles_reach_both_workers(daemon_factory, variant):
    """workers = 2: threaded declares WSR_HANDLER_PER_LOOP, so each worker has
    its own instance and thread; handles from those threads reach the
    connections of both workers, and late sends are refused on both."""
    d = start(daemon_factory, variant, workers=2)
    churn(d, 2)
    time.sleep(0.3)  # the threads notice every on_close
    # Connection ids are n * workers + worker index: both workers served.
    ids = [int(x) for x in re.findall(r"conn=(\d+) peer=\S+ event=close route=/t", d.log_text())]
    assert len(ids) == 40 and {i % 2 for i in ids} == {0, 1}, ids
    sent, refused, accepted = stop_and_stats(d, instances=2)
    assert accepted == 0
    assert refused == 40, "late sends refused: %d of 40" % refused
    assert sent >= 120
