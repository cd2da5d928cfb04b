"""Start-up lint (daemon/lint.c): a ping_period not comfortably below the
proxy's idle timeout (proxy_idle_timeout; at most half), and a drain window
that does not fit in shutdown_timeout. Warnings, never errors: through
`wsrouted -t` on stderr, and in the log at start and on every reload."""

import re
import signal

import wsrtest
from wsrtest import run_daemon


def write(tmp_path, text):
    p = tmp_path / "w.ini"
    p.write_text(wsrtest.root_opt_in(text))
    return str(p)


SERVER = "[server]\nlisten = 127.0.0.1:1\n"


def warnings(res):
    return [l for l in res.stderr.decode().splitlines() if l.startswith("wsrouted: warning: ")]


def test_ping_not_comfortably_below_the_proxy_timeout(tmp_path):
    path = write(tmp_path, SERVER + "proxy_idle_timeout = 30s\n"
                 "[route /a]\nhandler = echo\n"
                 "[route /b]\nhandler = echo\nping_period = 0\n"
                 "[route /c]\nhandler = echo\nping_period = 10s\n")
    res = run_daemon(["-t", "-c", path])
    assert res.returncode == 0, res.stderr
    assert b"test is successful" in res.stdout
    w = warnings(res)
    assert len(w) == 2, w
    lines = open(path).read().splitlines()
    line = lines.index("proxy_idle_timeout = 30s") + 1
    ping0 = lines.index("ping_period = 0") + 1
    # [server]'s default ping_period (25s) > 15s: named at proxy_idle_timeout's line.
    assert w[0].startswith("wsrouted: warning: %s:%d: ping_period 25s is not comfortably "
                           "below proxy_idle_timeout 30s (at most half: 15s)" % (path, line)), w[0]
    assert ("nginx: proxy_read_timeout 75s; proxy_send_timeout 75s; "
            "HAProxy: timeout tunnel 75s; timeout client-fin 5s") in w[0]
    # A route without pings, at its own ping_period line; /c (10s) is fine.
    assert re.match(r"wsrouted: warning: %s:%d: \[route /b\]: ping_period is 0 \(no pings\)"
                    % (re.escape(path), ping0), w[1]), w[1]
    assert "set ping_period to 15s or less" in w[1]
    # Without pings the proxy must outlast the daemon's idle timeout and the close.
    assert "proxy_read_timeout 65s" in w[1] and "timeout tunnel 65s" in w[1]


def test_no_warning_when_comfortable_or_unknown(tmp_path):
    for extra in ("proxy_idle_timeout = 60s\n", "proxy_idle_timeout = 50s\n", ""):
        res = run_daemon(["-t", "-c", write(tmp_path, SERVER + extra +
                                            "[route /a]\nhandler = echo\n")])
        assert res.returncode == 0 and warnings(res) == [], (extra, res.stderr)


def test_drain_window_must_fit_shutdown_timeout(tmp_path):
    res = run_daemon(["-t", "-c", write(tmp_path, SERVER + "shutdown_timeout = 4s\n"
                                        "[route /a]\nhandler = echo\n")])
    w = warnings(res)
    assert res.returncode == 0 and len(w) == 1, res.stderr
    assert ("drain_window 5s plus close_timeout 5s is more than shutdown_timeout 4s: "
            "the closes are all sent at once") in w[0]
    assert "raise shutdown_timeout to 10s to spread them over the whole drain_window" in w[0]


def test_warnings_logged_at_start_and_reload(daemon_factory):
    d = daemon_factory(wsrtest.make_config(ping_period="40s",
                                           server_extra="proxy_idle_timeout = 1m"))
    log = d.log_text()
    assert re.search(r"warn event=config_warning warning=\".*ping_period 40s is not "
                     r"comfortably below proxy_idle_timeout 1m \(at most half: 30s\)", log), log
    assert "proxy_read_timeout 2m" in log
    with open(d.conf_path) as f:
        text = f.read()
    with open(d.conf_path, "w") as f:
        f.write(text.replace("ping_period = 40s", "ping_period = 0"))
    d.send_signal(signal.SIGHUP)
    assert wsrtest.wait_until(lambda: "event=reloaded" in d.log_text(), 3.0)
    assert "ping_period is 0 (no pings) but the proxy in front cuts idle connections " \
           "after proxy_idle_timeout 1m" in d.log_text()
