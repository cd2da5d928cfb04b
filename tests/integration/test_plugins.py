"""Plugin handlers (handler = plugin:NAME): every load failure is a config
error with FILE:LINE and dlerror's text (caught by -t, and a reload with a
broken plugin keeps the old config), the example plugins work end to end,
the daemon exports only the wsr_* API, and the per-route `content` rule."""

import json
import os
import signal
import subprocess
import time

import pytest

import wsrtest
from wsrtest import OP_BINARY, OP_TEXT, run_daemon

HERE = os.path.dirname(os.path.abspath(__file__))
PLUGIN_DIR = os.path.abspath(os.environ.get("WSROUTED_PLUGIN_DIR")
                             or os.path.join(HERE, "..", "..", "plugins"))
TEST_PLUGIN_DIR = wsrtest.TEST_PLUGIN_DIR


def plugin_config(route, plugin_dir=PLUGIN_DIR, extra_routes=""):
    """Base config plus plugin_dir and one more route section (line 13 is its header)."""
    text = wsrtest.make_config(server_extra="plugin_dir = %s\n" % plugin_dir)
    return text + route + extra_routes


def check_t(tmp_path, text):
    p = tmp_path / "t.ini"
    p.write_text(text)
    r = run_daemon(["-t", "-c", str(p)])
    return r.returncode, r.stderr.decode(), str(p)


def header_line(text, header):
    return text.splitlines().index(header) + 1


def test_plugin_loads_and_t_succeeds(tmp_path):
    text = plugin_config("[route /up]\nhandler = plugin:uppercase\nmode = lower\n")
    rc, err, _ = check_t(tmp_path, text.replace("{port}", "1"))
    assert rc == 0, err


@pytest.mark.parametrize("name, message", [
    ("nope", "cannot load plugin: {dir}/nope.so: cannot open shared object file: "
             "No such file or directory"),
    ("wrong_abi", "was built for ABI 43, this daemon speaks 1 and 2"),
    ("no_symbol", "{dir}/no_symbol.so is not a wsrouted plugin, it exports no "
                  "'wsr_handler': {dir}/no_symbol.so: undefined symbol: wsr_handler"),
    ("missing_api", "cannot load plugin: {dir}/missing_api.so: undefined symbol: "
                    "wsr_no_such_function"),
])
def test_load_errors_are_config_errors(tmp_path, name, message):
    text = plugin_config("[route /p]\nhandler = plugin:%s\n" % name,
                         plugin_dir=TEST_PLUGIN_DIR).replace("{port}", "1")
    rc, err, path = check_t(tmp_path, text)
    line = header_line(text, "[route /p]")
    msg = message.format(dir=TEST_PLUGIN_DIR)
    if name == "wrong_abi":
        want = "wsrouted: %s:%d: handler 'plugin:%s' %s\n" % (path, line, name, msg)
    else:
        want = "wsrouted: %s:%d: handler 'plugin:%s': %s\n" % (path, line, name, msg)
    assert rc == 1
    assert err == want


def test_create_failure_names_the_option_line(tmp_path):
    route = "[route /up]\nhandler = plugin:uppercase\nmode = sideways\n"
    text = plugin_config(route).replace("{port}", "1")
    rc, err, path = check_t(tmp_path, text)
    line = header_line(text, "mode = sideways")
    assert rc == 1
    assert err == ("wsrouted: %s:%d: handler 'plugin:uppercase': mode: expected upper or "
                   "lower, got 'sideways'\n" % (path, line))


def test_unknown_option_is_rejected_by_the_plugin(tmp_path):
    route = "[route /up]\nhandler = plugin:uppercase\ncolour = red\n"
    text = plugin_config(route).replace("{port}", "1")
    rc, err, path = check_t(tmp_path, text)
    line = header_line(text, "colour = red")
    assert rc == 1
    assert err == ("wsrouted: %s:%d: handler 'plugin:uppercase': colour: unknown option, "
                   "the uppercase plugin takes only 'mode'\n" % (path, line))


def test_broken_plugin_on_start_never_listens(daemon_factory):
    d = daemon_factory(plugin_config("[route /p]\nhandler = plugin:nope\n"), ready=False)
    assert d.wait(5.0) == 1
    assert "nope.so: cannot open shared object file" in d.log_text()


def test_reload_with_broken_plugin_keeps_old_config(daemon_factory):
    good = plugin_config("[route /up]\nhandler = plugin:uppercase\n")
    d = daemon_factory(good)
    c = d.connect("/up")
    c.send_text("abc")
    assert c.read_message()[:2] == (OP_TEXT, b"ABC")
    text = open(d.conf_path).read()
    with open(d.conf_path, "w") as f:
        f.write(text.replace("plugin:uppercase", "plugin:uppercase\nmode = diagonal"))
    d.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    while "reload_failed" not in d.log_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "mode: expected upper or lower, got 'diagonal'" in d.log_text()
    assert "reload_failed" in d.log_text()
    # Old connections and new ones still get the old, working instance.
    c.send_text("def")
    assert c.read_message()[:2] == (OP_TEXT, b"DEF")
    c2 = d.connect("/up")
    c2.send_text("ghi")
    assert c2.read_message()[:2] == (OP_TEXT, b"GHI")
    # A good reload switches: mode = lower now.
    with open(d.conf_path, "w") as f:
        f.write(text.replace("plugin:uppercase", "plugin:uppercase\nmode = lower"))
    d.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 5
    while "event=reloaded" not in d.log_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    c3 = d.connect("/up")
    c3.send_text("MiXeD")
    assert c3.read_message()[:2] == (OP_TEXT, b"mixed")
    c.send_text("old")
    assert c.read_message()[:2] == (OP_TEXT, b"OLD")
    for x in (c, c2, c3):
        x.send_close(1000)
        x.expect_close(1000)


def test_uppercase_end_to_end(daemon_factory):
    d = daemon_factory(plugin_config("[route /up]\nhandler = plugin:uppercase\n"))
    c = d.connect("/up")
    c.send_text("hello, World")
    assert c.read_message()[:2] == (OP_TEXT, b"HELLO, WORLD")
    big = ("abc" * 5000)
    c.send_text(big)
    assert c.read_message()[:2] == (OP_TEXT, big.upper().encode())
    c.send_binary(b"\x00abc")
    assert c.read_message()[:2] == (OP_BINARY, b"\x00abc")
    c.send_close(1000)
    c.expect_close(1000)


def chat_read(c):
    op, data, _ = c.read_message()
    assert op == OP_TEXT
    return json.loads(data)


def test_chat_end_to_end(daemon_factory):
    d = daemon_factory(plugin_config(
        "[route /chat]\nhandler = plugin:chat\ncontent = json\nrate = 1\nburst = 3\n"
        "max_users = 2\n"))
    alice = d.connect("/chat?nick=alice")
    bob = d.connect("/chat?nick=bob")
    assert chat_read(alice) == {"type": "join", "nick": "bob"}
    # max_users = 2: a third is refused at the handshake.
    d.connect("/chat?nick=carol", expect=403).close_socket()
    alice.send_text(json.dumps({"type": "say", "text": "hi bob"}))
    want = {"type": "message", "from": "alice", "text": "hi bob"}
    assert chat_read(alice) == want
    assert chat_read(bob) == want
    # Burst 3, one already used: 2 more pass, the rest are rate limited.
    for i in range(6):
        alice.send_text(json.dumps({"type": "say", "text": "m%d" % i}))
    got = [chat_read(alice) for _ in range(6)]
    assert [g.get("text") for g in got[:2]] == ["m0", "m1"]
    assert got[2:] == [{"type": "error", "error": "rate limited"}] * 4
    assert [chat_read(bob)["text"] for _ in range(2)] == ["m0", "m1"]
    # Valid JSON the plugin does not understand: an error reply, still open.
    time.sleep(1.1)
    bob.send_text('{"type":"dance"}')
    assert chat_read(bob)["type"] == "error"
    # Not JSON at all: the daemon's content check closes with 1007.
    bob.send_text("{nope")
    bob.expect_close(1007)
    assert chat_read(alice) == {"type": "leave", "nick": "bob"}
    # Binary on a json route: 1003.
    alice.send_binary(b"\x01\x02")
    alice.expect_close(1003)


def test_chat_presence_timer_and_headers(daemon_factory):
    # The timer is started in create(), before the daemon's loop exists.
    d = daemon_factory(plugin_config(
        "[route /chat]\nhandler = plugin:chat\npresence_ms = 200\n"))
    a = d.connect("/chat?nick=ann", extra=[("User-Agent", 'test "agent" 1.0')])
    b = d.connect("/chat?nick=ben")
    for _ in range(20):  # ticks may come before ben's join
        m = chat_read(a)
        if m["type"] != "presence":
            break
    assert m == {"type": "join", "nick": "ben"}
    t0 = time.monotonic()
    got = [chat_read(a), chat_read(a)]
    assert all(g["type"] == "presence" for g in got), got
    assert sorted(got[1]["users"]) == ["ann", "ben"]
    assert time.monotonic() - t0 < 2.0
    assert sorted(chat_read(b)["users"]) == ["ann", "ben"]
    log = d.log_text()
    assert 'event=chat_join nick=ann user_agent="test _agent_ 1.0"' in log
    assert 'event=chat_join nick=ben user_agent="-"' in log
    a.send_close(1000)
    a.expect_close(1000)


def test_bad_nick_is_refused(daemon_factory):
    d = daemon_factory(plugin_config("[route /chat]\nhandler = plugin:chat\n"))
    d.connect("/chat?nick=a%20b", expect=403).close_socket()
    d.connect("/chat?nick=" + "x" * 33, expect=403).close_socket()


def test_daemon_exports_only_the_api():
    out = subprocess.run(["nm", "-D", "--defined-only", wsrtest.daemon_binary()],
                         stdout=subprocess.PIPE, check=True, timeout=30).stdout.decode()
    names = [line.split()[-1] for line in out.splitlines() if line.strip()]
    ours = [n for n in names if "@" not in n and not n.startswith("_")]
    assert "wsr_send" in ours and "wsr_close" in ours
    assert [n for n in ours if not n.startswith("wsr_")] == []


@pytest.mark.parametrize("content, op, payload, code", [
    ("text", OP_BINARY, b"\x00", 1003),
    ("binary", OP_TEXT, b"x", 1003),
    ("json", OP_BINARY, b"{}", 1003),
    ("json", OP_TEXT, b"{\"a\":", 1007),
    ("json", OP_TEXT, b"[1] 2", 1007),
    ("json", OP_TEXT, b"", 1007),
])
def test_content_rule_closes(daemon_factory, content, op, payload, code):
    d = daemon_factory(wsrtest.make_config(route_extra="content = %s\n" % content))
    c = d.connect("/echo")
    c.send_frame(op, payload)
    c.expect_close(code)


@pytest.mark.parametrize("content, op, payload", [
    ("text", OP_TEXT, b"hello"),
    ("binary", OP_BINARY, b"\xff\x00"),
    ("any", OP_BINARY, b"\xff\x00"),
    ("json", OP_TEXT, b'{"a": [1, 2.5, null, true, "\\u00e9"]}'),
    ("json", OP_TEXT, b"42"),
    ("json", OP_TEXT, b'"just a string"'),
])
def test_content_rule_passes(daemon_factory, content, op, payload):
    d = daemon_factory(wsrtest.make_config(route_extra="content = %s\n" % content))
    c = d.connect("/echo")
    c.echo(op, payload)
    c.send_close(1000)
    c.expect_close(1000)
