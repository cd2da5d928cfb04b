"""The built-in exec handler (websocketd-style): a process per connection,
lines in and out, CGI environment, exit status → close code, SIGTERM then
SIGKILL when the client goes, max_processes → 503, and no zombie and no
descriptor left behind after 200 connections."""

import os
import time

import pytest

import wsrtest
from wsrtest import OP_BINARY, OP_CLOSE, OP_TEXT, run_daemon


def config(command, extra=""):
    return wsrtest.make_config() + "[route /x]\nhandler = exec\ncommand = %s\n%s" % (
        command, extra)


def children(pid):
    """PIDs whose parent is pid (zombies included)."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append((int(d), fields[0]))
    return out


def wait_for(pred, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return pred()


def test_cat_lines(daemon_factory):
    d = daemon_factory(config("cat"))
    c = d.connect("/x")
    for line in ["hello", "h\u00e9llo w\u00f6rld", ""]:
        c.send_text(line)
        assert c.read_message()[:2] == (OP_TEXT, line.encode())
    c.send_close(1000)
    c.expect_close(1000)
    assert wait_for(lambda: children(d.pid) == []), children(d.pid)


def test_binary_mode(daemon_factory):
    d = daemon_factory(config("cat", "mode = binary\n"))
    c = d.connect("/x")
    c.send_binary(b"\x00\xff\n\x01")
    got = b""
    while len(got) < 4:
        op, data, _ = c.read_message()
        assert op == OP_BINARY
        got += data
    assert got == b"\x00\xff\n\x01"
    c.send_close(1000)
    c.expect_close(1000)


def test_exit_zero_is_1000_and_nonzero_is_1011(daemon_factory):
    d = daemon_factory(config("echo done") + "[route /fail]\nhandler = exec\n"
                       "command = echo oops >&2; exit 3\nshell = yes\n")
    c = d.connect("/x")
    assert c.read_message()[:2] == (OP_TEXT, b"done")
    c.expect_close(1000)
    c = d.connect("/fail")
    c.expect_close(1011)
    assert wait_for(lambda: "event=process_stderr" in d.log_text())
    assert 'line="oops"' in d.log_text()


def test_cgi_environment(daemon_factory):
    d = daemon_factory(config("env"))
    c = wsrtest.WSClient.connect(("127.0.0.1", d.port), "/x?a=1&b=2",
                                 extra=[("X-Thing", "yes"), ("User-Agent", "t/1")])
    lines = []
    for _ in range(1000):
        f = c.read_frame(5.0)
        if f.opcode == OP_CLOSE:
            break
        lines.append(f.payload.decode())
    env = dict(l.split("=", 1) for l in lines if "=" in l)
    port = c.sock.getsockname()[1]
    assert env["REMOTE_ADDR"] == "127.0.0.1"
    assert env["REMOTE_PORT"] == str(port)
    assert env["QUERY_STRING"] == "a=1&b=2"
    assert env["SCRIPT_NAME"] == "/x"
    assert env["PATH_INFO"] == ""
    assert env["REQUEST_METHOD"] == "GET"
    assert env["HTTP_X_THING"] == "yes"
    assert env["HTTP_USER_AGENT"] == "t/1"
    assert "HTTP_SEC_WEBSOCKET_KEY" in env


def test_client_close_terminates_then_kills(daemon_factory):
    d = daemon_factory(config("trap '' TERM; echo up; while :; do sleep 1; done",
                              "shell = yes\nkill_grace = 300ms\n"))
    c = d.connect("/x")
    assert c.read_message()[:2] == (OP_TEXT, b"up")
    assert len(children(d.pid)) == 1
    c.close_socket()
    # It ignores SIGTERM: SIGKILL after 300 ms, then reaped.
    assert wait_for(lambda: children(d.pid) == [], 5.0), children(d.pid)
    assert "event=process_kill" in d.log_text()


def test_max_processes_503(daemon_factory):
    d = daemon_factory(config("cat", "max_processes = 2\n"))
    a, b = d.connect("/x"), d.connect("/x")
    d.connect("/x", expect=503).close_socket()
    a.send_close(1000)
    a.expect_close(1000)
    assert wait_for(lambda: len(children(d.pid)) == 1)
    c = d.connect("/x")
    c.send_text("again")
    assert c.read_message()[:2] == (OP_TEXT, b"again")
    for x in (b, c):
        x.send_close(1000)
        x.expect_close(1000)


def test_200_connections_leave_no_process_or_fd(daemon_factory):
    d = daemon_factory(wsrtest.set_server(config("cat"), log_level="warn"))
    base_fds = d.num_fds()
    base_targets = d.fd_targets()
    for round_ in range(10):
        conns = [d.connect("/x") for _ in range(20)]
        for i, c in enumerate(conns):
            c.send_text("n%d" % i)
            assert c.read_message()[:2] == (OP_TEXT, b"n%d" % i)
        for i, c in enumerate(conns):
            if i % 2:
                c.send_close(1000)
                c.expect_close(1000)
            else:
                c.close_socket()
    assert wait_for(lambda: children(d.pid) == [], 10.0), children(d.pid)
    # <=: the baseline may still hold the readiness probe's socket.
    assert wait_for(lambda: d.num_fds() <= base_fds, 5.0), \
        "%d descriptors, %d before:\n%s\nbefore:\n%s" % (
            d.num_fds(), base_fds, "\n".join(d.fd_targets()), "\n".join(base_targets))


def test_no_daemon_fd_leaks_into_the_child(daemon_factory):
    d = daemon_factory(config("ls /proc/self/fd"))
    c = d.connect("/x")
    fds = []
    for _ in range(100):
        f = c.read_frame(5.0)
        if f.opcode == OP_CLOSE:
            break
        fds.append(f.payload.decode())
    # 0-2, and the directory ls itself opened.
    assert len(fds) == 4 and fds[:3] == ["0", "1", "2"], fds


def test_missing_program_is_500(daemon_factory):
    d = daemon_factory(config("/nonexistent/program"))
    d.connect("/x", expect=500).close_socket()
    assert "event=exec_failed" in d.log_text()


@pytest.mark.parametrize("lines, message", [
    ("mode = text", "the exec handler needs 'command = PROGRAM [ARG...]'"),
    ("command = cat\nmode = lines", "mode: expected text or binary, got 'lines'"),
    ("command = cat\nmax_processes = 0", "max_processes: expected a number 1..100000, "
                                         "got '0'"),
    ("command = cat\nshell = maybe", "shell: expected yes or no, got 'maybe'"),
])
def test_option_errors(tmp_path, lines, message):
    text = wsrtest.make_config().replace("{port}", "1") + \
        "[route /x]\nhandler = exec\n%s\n" % lines
    p = tmp_path / "t.ini"
    p.write_text(text)
    r = run_daemon(["-t", "-c", str(p)])
    if message.startswith("the exec"):
        n = text.splitlines().index("[route /x]") + 1
    else:
        n = text.splitlines().index(lines.splitlines()[-1]) + 1
    assert r.returncode == 1
    assert r.stderr.decode() == "wsrouted: %s:%d: handler 'exec': %s\n" % (p, n, message)
