"""Several config files (issue 10): include = PATTERN, the default
conf.d/*.ini include, -t on a tree, -T (the effective configuration, with
where each value came from) and its round trip, and SIGHUP re-reading the
tree under open connections."""

import os
import re
import signal
import time

import wsrtest
from wsrtest import OP_TEXT, WSClient, run_daemon

HERE = os.path.dirname(os.path.abspath(__file__))
REFERENCE = os.path.join(HERE, "..", "..", "conf", "wsrouted.ini")

MAIN = """\
[server]
listen = 127.0.0.1:18080
include = extra/*.ini
[route /main]
handler = echo
"""


def put(base, rel, text):
    p = base / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    return str(p)


def out(res):
    return (res.stdout + res.stderr).decode("utf-8", "replace")


def tree(tmp_path):
    """main.ini + extra/b.ini (explicit include) + conf.d/ (default include)."""
    main = put(tmp_path, "main.ini", MAIN)
    put(tmp_path, "extra/b.ini", "[server]\ntimeout = 30s\n")
    put(tmp_path, "conf.d/20-b.ini", "[route /b]\nhandler = echo\nmax_frame_size = 4KiB\n")
    put(tmp_path, "conf.d/10-a.ini", "[route /a]\nhandler = echo\n")
    put(tmp_path, "conf.d/README", "not a config file, not read\n")
    return main


def strip_comments(text):
    """What a config file sets: no comment lines, no trailing ' ; ...'."""
    lines = []
    for line in text.splitlines():
        if line.startswith(";"):
            continue
        lines.append(line.split(" ; ", 1)[0])
    return "\n".join(lines)


# ------------------------------------------------------------------ -t


def test_t_checks_the_whole_tree(tmp_path):
    main = tree(tmp_path)
    res = run_daemon(["-t", "-c", main])
    assert res.returncode == 0, out(res)
    assert out(res) == "wsrouted: configuration file %s test is successful\n" % main

    # A drop-in that repeats a route and a [server] key: both places named.
    put(tmp_path, "conf.d/30-bad.ini",
        "[route /main]\nhandler = echo\n[server]\ntimeout = 1s\n")
    res = run_daemon(["-t", "-c", main])
    assert res.returncode == 1
    d = str(tmp_path)
    assert out(res) == (
        "wsrouted: {d}/conf.d/30-bad.ini:1: [route /main]: duplicate route, first defined "
        "at {d}/main.ini:4\n"
        "wsrouted: {d}/conf.d/30-bad.ini:4: timeout: duplicate key, already set at "
        "{d}/extra/b.ini:2\n").format(d=d)
    os.unlink(os.path.join(d, "conf.d", "30-bad.ini"))

    # A cycle, and an unreadable file (a dangling link) matched by the glob.
    put(tmp_path, "extra/b.ini", "[server]\ntimeout = 30s\ninclude = ../main.ini\n")
    os.symlink(os.path.join(d, "gone.ini"), os.path.join(d, "conf.d", "15-gone.ini"))
    res = run_daemon(["-t", "-c", main])
    assert res.returncode == 1
    assert out(res) == (
        "wsrouted: {d}/main.ini: include: cannot open '{d}/conf.d/15-gone.ini': "
        "No such file or directory\n"
        "wsrouted: {d}/extra/b.ini:3: include: '{d}/extra/../main.ini' is already being "
        "read (include cycle)\n").format(d=d)


def test_t_relative_main_file_and_missing_include(tmp_path):
    put(tmp_path, "main.ini", MAIN.replace("extra/*.ini", "extra/nope.ini"))
    res = wsrtest.subprocess.run([wsrtest.daemon_binary(), "-t", "-c", "main.ini"],
                                 cwd=str(tmp_path), stdin=wsrtest.subprocess.DEVNULL,
                                 stdout=wsrtest.subprocess.PIPE,
                                 stderr=wsrtest.subprocess.PIPE, timeout=10)
    assert res.returncode == 1
    assert out(res) == ("wsrouted: main.ini:3: include: cannot open 'extra/nope.ini': "
                        "No such file or directory\n")


# ------------------------------------------------------------------ -T


def test_T_shows_every_value_and_where_it_came_from(tmp_path):
    main = tree(tmp_path)
    res = run_daemon(["-T", "-c", main])
    assert res.returncode == 0, out(res)
    assert res.stderr == b""
    text = res.stdout.decode()
    d = str(tmp_path)
    lines = text.splitlines()
    # The files, in the order read.
    assert ";   %s/main.ini" % d in lines
    assert ";   %s/extra/b.ini, included from %s/main.ini:3" % (d, d) in lines
    assert ";   %s/conf.d/10-a.ini, included from %s/main.ini (conf.d/*.ini)" % (d, d) in lines
    files = [ln for ln in lines if ln.startswith(";   ")]
    assert [f.split(",")[0].strip("; ") for f in files] == [
        d + "/main.ini", d + "/extra/b.ini", d + "/conf.d/10-a.ini", d + "/conf.d/20-b.ini"]
    # Every [server] key once, set or default.
    assert "listen = 127.0.0.1:18080 ; %s/main.ini:2" % d in lines
    assert "timeout = 30s ; %s/extra/b.ini:2" % d in lines
    for key, value in (("max_connections", "10000"), ("handshake_timeout", "10s"),
                       ("shutdown_timeout", "10s"), ("log_level", "info"),
                       ("ping_period", "25s"), ("close_timeout", "5s"),
                       ("max_frame_size", "1MiB"), ("max_message_size", "16MiB"),
                       ("max_output_buffer", "1MiB")):
        assert "%s = %s ; default" % (key, value) in lines
    assert "include_default = no ; everything is below; was: yes (default)" in lines
    assert not any(ln.startswith("include =") for ln in lines)
    # Routes in the order read, with their own and their inherited values.
    assert re.findall(r"^\[route (\S+)\]", text, re.M) == ["/main", "/a", "/b"]
    assert "[route /b] ; %s/conf.d/20-b.ini:1" % d in lines
    b = text[text.index("[route /b]"):]
    assert "\nmax_frame_size = 4KiB ; %s/conf.d/20-b.ini:3\n" % d in b
    assert "\n;timeout = 30s ; inherited from [server]\n" in b
    assert "\norigins = * ; default\n" in b


def test_T_round_trips(tmp_path):
    main = tree(tmp_path)
    one = run_daemon(["-T", "-c", main])
    assert one.returncode == 0, out(one)
    # Fed back as a config (in a directory of its own): the same settings.
    again = put(tmp_path, "flat/flat.ini", one.stdout.decode())
    two = run_daemon(["-T", "-c", again])
    assert two.returncode == 0, out(two)
    assert strip_comments(two.stdout.decode()) == strip_comments(one.stdout.decode())
    assert "\ntimeout = 30s ; %s:" % again in two.stdout.decode()
    # And a third time, from the second: identical, comments included.
    third = put(tmp_path, "flat/flat2.ini", two.stdout.decode().replace(again, "X"))
    three = run_daemon(["-T", "-c", third])
    assert three.returncode == 0, out(three)
    assert strip_comments(three.stdout.decode()) == strip_comments(one.stdout.decode())


def test_T_on_the_reference_config_round_trips(tmp_path):
    """conf/wsrouted.ini with the shipped conf/conf.d/ (all commented out)."""
    one = run_daemon(["-T", "-c", REFERENCE])
    assert one.returncode == 0, out(one)
    text = one.stdout.decode()
    assert re.findall(r"^\[route (\S+)\]", text, re.M) == ["/echo"]
    assert "conf.d/example.ini, included from" in text
    again = put(tmp_path, "ref.ini", text)
    two = run_daemon(["-T", "-c", again])
    assert two.returncode == 0, out(two)
    assert strip_comments(two.stdout.decode()) == strip_comments(text)


def test_T_with_errors_prints_no_config(tmp_path):
    main = put(tmp_path, "main.ini", MAIN + "bogus = 1\n")
    res = run_daemon(["-T", "-c", main])
    assert res.returncode == 1
    assert res.stdout == b""
    assert res.stderr.decode() == (
        "wsrouted: %s/main.ini:6: unknown key 'bogus' in [route /main]\n" % tmp_path)


# ------------------------------------------------------------------ SIGHUP


def reload(daemon, want):
    """SIGHUP, then wait (bounded) for the daemon to log the outcome."""
    start = len(daemon.log_text())
    daemon.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        new = daemon.log_text()[start:]
        if "event=reloaded" in new or "event=reload_failed" in new:
            assert want in new, new
            return new
        time.sleep(0.02)
    raise AssertionError("no reload logged within 5 s:\n" + daemon.log_tail())


def test_reload_adds_and_removes_drop_in_routes(daemon_factory):
    d = daemon_factory(start=False)
    confd = os.path.join(d.tmpdir, "conf.d")
    os.mkdir(confd)
    with open(os.path.join(confd, "a.ini"), "w") as f:
        f.write("[route /a]\nhandler = echo\n")
    d.start()

    old_a = d.connect("/a")
    old_echo = d.connect("/echo")
    old_a.echo(OP_TEXT, b"before")
    WSClient.connect(("127.0.0.1", d.port), "/b", expect=404).close_socket()

    # Add /b, remove /a.
    with open(os.path.join(confd, "b.ini"), "w") as f:
        f.write("[route /b]\nhandler = echo\n")
    os.unlink(os.path.join(confd, "a.ini"))
    reload(d, "event=reloaded routes=2")

    # Open connections of kept routes stay; those of the removed route are
    # drained (1001; at once with the tests' drain_window = 0, see test_drain.py).
    code, reason = old_a.expect_close(1001)
    assert reason == b"route removed"
    old_echo.echo(OP_TEXT, b"still here too")
    WSClient.connect(("127.0.0.1", d.port), "/a", expect=404).close_socket()
    new_b = d.connect("/b")
    new_b.echo(OP_TEXT, b"new route")

    # A broken drop-in changes nothing, and the log names both places.
    bad = os.path.join(confd, "c.ini")
    with open(bad, "w") as f:
        f.write("[route /b]\nhandler = echo\n")
    log = reload(d, "event=reload_failed")
    assert ("%s:1: [route /b]: duplicate route, first defined at %s/b.ini:1"
            % (bad, confd)) in log
    d.connect("/b").echo(OP_TEXT, b"kept")
    WSClient.connect(("127.0.0.1", d.port), "/a", expect=404).close_socket()

    # Fixed: reloads again.
    os.unlink(bad)
    reload(d, "event=reloaded routes=2")
    d.connect("/b").echo(OP_TEXT, b"again")
    for c in (old_echo, new_b):
        c.echo(OP_TEXT, b"bye")
        c.close_socket()
