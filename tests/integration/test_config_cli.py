"""Command line (-t, -v, -h, bad options) and config validation: every
error is reported as FILE:LINE: message naming the key, a bad config
never starts listening."""

import re
import socket
import subprocess

import pytest

import wsrtest
from wsrtest import run_daemon

GOOD = """\
; a comment
# another comment
[server]
listen = 127.0.0.1:18080
listen = [::1]:18080
listen = unix:/tmp/wsrouted-test-never-used.sock
max_connections = 100
handshake_timeout = 1500ms
shutdown_timeout = 1m
log_level = warn
ping_period = 25s
timeout = 1h
close_timeout = 5s
max_frame_size = 512KiB
max_message_size = 2MiB
max_output_buffer = 1GiB

[route /echo]
handler = echo
origins = https://ok.example
subprotocols = chat.v1, chat.v2
max_message_size = 64KiB
max_frame_size = 1000B
ping_period = 0
timeout = 0
close_timeout = 250ms
max_output_buffer = 64KiB

[route /other]
handler = echo
"""


def repl(text, old, new):
    """str.replace that insists on finding `old` (a silent no-op would void the test)."""
    assert old in text, "%r not in the config template" % old
    return text.replace(old, new)


def write(tmp_path, text, name="wsrouted.ini"):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def out(res):
    return (res.stdout + res.stderr).decode("utf-8", "replace")


def check(tmp_path, text):
    path = write(tmp_path, text)
    return path, run_daemon(["-t", "-c", path])


def line_of(text, needle):
    """1-based number of the line equal to needle (else the first containing it)."""
    lines = text.splitlines()
    exact = [i for i, line in enumerate(lines, 1) if line.strip() == needle]
    if exact:
        assert len(exact) == 1, "%r appears on several lines" % needle
        return exact[0]
    for i, line in enumerate(lines, 1):
        if needle in line:
            return i
    raise AssertionError("%r not in config" % needle)


def assert_error_at(res, path, line, *words):
    err = res.stderr.decode("utf-8", "replace")
    assert res.returncode == 1, "exit status %d, stderr:\n%s" % (res.returncode, err)
    prefix = "%s:%d:" % (path, line)
    lines = [l for l in err.splitlines() if prefix in l]
    assert lines, "no '%s' error in stderr:\n%s" % (prefix, err)
    for w in words:
        assert any(w in l for l in lines), "%r not in the %s error(s): %r" % (w, prefix, lines)


# ------------------------------------------------------------ CLI


@pytest.mark.parametrize("opt", ["-v", "--version"])
def test_version(opt):
    res = run_daemon([opt])
    assert res.returncode == 0, out(res)
    assert "wsrouted 0.1.0" in out(res)


@pytest.mark.parametrize("opt", ["-h", "--help"])
def test_help(opt):
    res = run_daemon([opt])
    assert res.returncode == 0, out(res)
    text = out(res)
    assert "usage" in text.lower(), text
    assert "-c" in text and "-t" in text, text


@pytest.mark.parametrize("args", [["-x"], ["--bogus"], ["-c"]],
                         ids=["-x", "--bogus", "-c-without-arg"])
def test_bad_option(args):
    res = run_daemon(args)
    assert res.returncode == 2, "exit %d: %s" % (res.returncode, out(res))
    assert "usage" in res.stderr.decode().lower(), "no usage on stderr: %r" % res.stderr


def test_check_good_config(tmp_path):
    path, res = check(tmp_path, GOOD)
    assert res.returncode == 0, out(res)
    text = out(res).lower()
    assert "success" in text or " ok" in text, text
    assert path in out(res) or "test is successful" in text


def test_check_missing_file(tmp_path):
    res = run_daemon(["-t", "-c", str(tmp_path / "does-not-exist.ini")])
    assert res.returncode == 1, out(res)
    assert "does-not-exist.ini" in res.stderr.decode()


def test_check_does_not_listen(tmp_path):
    port = wsrtest.free_port()
    path, res = check(tmp_path, repl(GOOD, "18080", str(port)))
    assert res.returncode == 0
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()


# ------------------------------------------------------------ units


@pytest.mark.parametrize("value", ["512", "512B", "64KiB", "1MiB", "2GiB"])
def test_size_units_accepted(tmp_path, value):
    path, res = check(tmp_path, repl(GOOD, "max_frame_size = 512KiB",
                                             "max_frame_size = %s" % value))
    assert res.returncode == 0, out(res)


@pytest.mark.parametrize("value", ["0", "250ms", "10s", "2m", "1h", "30"])
def test_duration_units_accepted(tmp_path, value):
    path, res = check(tmp_path, repl(GOOD, "ping_period = 25s", "ping_period = %s" % value))
    assert res.returncode == 0, out(res)


@pytest.mark.parametrize("value", ["12XB", "1.5.5MiB", "MiB", "-1", "ten", "1 MiB MiB"])
def test_bad_size(tmp_path, value):
    text = repl(GOOD, "max_message_size = 2MiB", "max_message_size = %s" % value)
    path, res = check(tmp_path, text)
    assert_error_at(res, path, line_of(text, "max_message_size = %s" % value), "max_message_size")


@pytest.mark.parametrize("value", ["10parsecs", "s", "-5s", "1d", "abc"])
def test_bad_duration(tmp_path, value):
    text = repl(GOOD, "close_timeout = 5s", "close_timeout = %s" % value)
    path, res = check(tmp_path, text)
    assert_error_at(res, path, line_of(text, "close_timeout = %s" % value), "close_timeout")


@pytest.mark.parametrize("value", ["127.0.0.1", "127.0.0.1:99999", "localhost:abc", "[::1", "unix:"])
def test_bad_listen(tmp_path, value):
    text = repl(GOOD, "listen = 127.0.0.1:18080", "listen = %s" % value)
    path, res = check(tmp_path, text)
    assert_error_at(res, path, line_of(text, "listen = %s" % value), "listen")


def test_bad_log_level(tmp_path):
    text = repl(GOOD, "log_level = warn", "log_level = verbose")
    path, res = check(tmp_path, text)
    assert_error_at(res, path, line_of(text, "log_level = verbose"), "log_level")


@pytest.mark.parametrize("level", ["error", "warn", "info", "debug"])
def test_log_levels_accepted(tmp_path, level):
    path, res = check(tmp_path, repl(GOOD, "log_level = warn", "log_level = %s" % level))
    assert res.returncode == 0, out(res)


# ------------------------------------------------------------ unknown keys / sections


def test_unknown_server_key(tmp_path):
    text = repl(GOOD, "max_connections = 100", "max_connections = 100\nmax_conections = 5")
    path, res = check(tmp_path, text)
    assert_error_at(res, path, line_of(text, "max_conections"), "max_conections")


def test_unknown_route_key(tmp_path):
    text = repl(GOOD, "handler = echo\norigins", "handler = echo\norigin = https://x.example\norigins")
    path, res = check(tmp_path, text)
    assert_error_at(res, path, line_of(text, "origin = https://x"), "origin")


def test_unknown_section(tmp_path):
    text = GOOD + "\n[serverz]\nlisten = 127.0.0.1:1\n"
    path, res = check(tmp_path, text)
    assert_error_at(res, path, line_of(text, "[serverz]"), "serverz")


@pytest.mark.parametrize("key,value", [("handshake_timeout", "1s"), ("shutdown_timeout", "1s"),
                                       ("max_connections", "5"), ("log_level", "debug"),
                                       ("listen", "127.0.0.1:1")])
def test_server_only_keys_rejected_in_route(tmp_path, key, value):
    text = repl(GOOD, "[route /other]\nhandler = echo\n",
                        "[route /other]\nhandler = echo\n%s = %s\n" % (key, value))
    path, res = check(tmp_path, text)
    assert_error_at(res, path, line_of(text, "%s = %s" % (key, value)), key)


def test_route_keys_rejected_in_server(tmp_path):
    text = repl(GOOD, "max_connections = 100", "max_connections = 100\nsubprotocols = a")
    path, res = check(tmp_path, text)
    assert_error_at(res, path, line_of(text, "subprotocols = a"), "subprotocols")


def test_unknown_handler(tmp_path):
    text = repl(GOOD, "[route /other]\nhandler = echo", "[route /other]\nhandler = nosuchhandler")
    path, res = check(tmp_path, text)
    assert_error_at(res, path, line_of(text, "handler = nosuchhandler"), "nosuchhandler")


def test_every_error_reported(tmp_path):
    text = repl(GOOD, "max_connections = 100", "max_connections = 100\nfoo = 1")
    text = repl(text, "close_timeout = 250ms", "close_timeout = soon")
    text = repl(text, "[route /other]\nhandler = echo\n", "[route /other]\nhandler = echo\nbar = 2\n")
    path, res = check(tmp_path, text)
    assert_error_at(res, path, line_of(text, "foo = 1"), "foo")
    assert_error_at(res, path, line_of(text, "close_timeout = soon"), "close_timeout")
    assert_error_at(res, path, line_of(text, "bar = 2"), "bar")
    # One line per error: "FILE:LINE: message" (a "wsrouted: " program prefix is tolerated).
    pat = re.compile(r"^(?:wsrouted: )?%s:\d+: \S" % re.escape(path))
    err_lines = [l for l in res.stderr.decode().splitlines() if l.strip()]
    assert sum(bool(pat.match(l)) for l in err_lines) >= 3, err_lines


def test_error_line_numbers_are_exact(tmp_path):
    """Blank lines and comments count: the reported line is the key's line."""
    text = "\n\n; comment\n\n[server]\n\nlisten = 127.0.0.1:1\n\n\n# c\nbogus_key = 1\n" \
           "[route /echo]\nhandler = echo\n"
    path, res = check(tmp_path, text)
    assert_error_at(res, path, 11, "bogus_key")


def test_bad_config_exits_1_without_listening(tmp_path):
    port = wsrtest.free_port()
    text = wsrtest.make_config(server_extra="no_such_key = 1\n").replace("{port}", str(port))
    path = write(tmp_path, text)
    with open(str(tmp_path / "log"), "wb") as log:
        proc = subprocess.Popen([wsrtest.daemon_binary(), "-c", path], stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT)
    try:
        rc = proc.wait(5.0)
    except subprocess.TimeoutExpired:
        rc = None
    finally:
        if proc.poll() is None:
            proc.kill()  # by PID: it is our child
            proc.wait(5.0)
    logtext = (tmp_path / "log").read_text(errors="replace")
    assert rc == 1, "exit status %r with a bad config; log:\n%s" % (rc, logtext)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    assert "%s:%d:" % (path, line_of(text, "no_such_key")) in logtext, logtext


def test_start_with_missing_config_exits_1(tmp_path):
    res = run_daemon(["-c", str(tmp_path / "nope.ini")], timeout=5.0)
    assert res.returncode == 1, out(res)


def test_good_config_starts(daemon_factory):
    """The sample above (with a free port) runs and serves /echo with its overrides."""
    cfg = repl(GOOD, "listen = 127.0.0.1:18080\nlisten = [::1]:18080\n"
                       "listen = unix:/tmp/wsrouted-test-never-used.sock\n",
                       "listen = 127.0.0.1:{port}\n")
    cfg = repl(cfg, "origins = https://ok.example\n", "")
    cfg = repl(cfg, "shutdown_timeout = 1m", "shutdown_timeout = 2s")
    d = daemon_factory(cfg)
    c = d.connect()
    c.echo(wsrtest.OP_TEXT, b"x" * 1000)
    c.send_frame(wsrtest.OP_TEXT, b"x" * 1001)  # max_frame_size = 1000B on this route
    c.expect_close(1009)
