"""The dev console in a real browser: headless Chromium (Debian's) driven by
Playwright (playwright-core from npm, installed into the build tree by
`make browser-deps`), through tests/browser/console.mjs.

Skipped only when Chromium or Node.js is not installed; with both present a
missing playwright-core is a failure that says how to install it.
"""

import json
import os
import shutil
import subprocess

import pytest

import wsrtest

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
NODE = shutil.which("node") or shutil.which("nodejs")
HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.environ.get("WSROUTED_BROWSER_SCRIPT") or os.path.join(
    HERE, "..", "browser", "console.mjs")
PREFIX = os.environ.get("WSROUTED_NPM_PREFIX") or os.path.join(
    os.path.dirname(wsrtest.daemon_binary()), "..", "tests", "browser")

CONFIG = wsrtest.make_config(
    route_extra="devconsole = yes",
    more="[route /brief]\nhandler = echo\ndevconsole = yes\n"
         "max_connection_lifetime = 2s\n")


@pytest.mark.skipif(not os.access(CHROMIUM, os.X_OK) or NODE is None,
                    reason="needs Debian's chromium (%s) and Node.js; ./bootstrap check "
                    "installs both" % CHROMIUM)
def test_dev_console_in_chromium(daemon_factory):
    pw = os.path.join(PREFIX, "node_modules", "playwright-core", "package.json")
    assert os.path.exists(pw), (
        "playwright-core is not installed in %s: run `make browser-deps` in the build "
        "directory (./bootstrap check does)" % PREFIX)
    d = daemon_factory(CONFIG)
    shot = os.path.join(PREFIX, "console.png")
    if os.path.exists(shot):
        os.unlink(shot)
    base = "http://127.0.0.1:%d" % d.port
    env = dict(os.environ, WSR_NPM_PREFIX=PREFIX, CHROMIUM=CHROMIUM)
    try:
        res = subprocess.run([NODE, SCRIPT, base + "/echo", base + "/brief", shot],
                             env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, timeout=90)
    except subprocess.TimeoutExpired:
        pytest.fail("console.mjs still running after 90 s")
    out, err = res.stdout.decode(), res.stderr.decode()
    assert res.returncode == 0, "console.mjs failed (%d):\n%s\n%s\ndaemon log:\n%s" % (
        res.returncode, out, err, d.log_tail(30))
    result = json.loads(out.strip().splitlines()[-1])
    assert result["ok"] is True
    assert result["sockets"][:2] == ["ws://127.0.0.1:%d/echo" % d.port,
                                     "ws://127.0.0.1:%d/brief" % d.port], result
    with open(shot, "rb") as f:
        png = f.read()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10000, "no real screenshot"
    # The daemon saw it all: the page, the upgrade, the echo and both closes.
    log = d.log_text()
    assert "event=devconsole route=/echo method=GET" in log
    assert "event=devconsole route=/brief method=GET" in log
    assert "event=open route=/echo" in log and "event=open route=/brief" in log
    assert "route=/echo code=1000" in log
    assert "route=/brief code=1001 reason=\"connection lifetime reached\"" in log


# ------------------------------------------------------------ HTTP answers


def test_console_page_answers(daemon_factory):
    d = daemon_factory(CONFIG)
    addr = ("127.0.0.1", d.port)
    st, hdrs, body, closed = wsrtest.http_exchange(
        addr, b"GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/html\r\n\r\n")
    assert st == 200 and closed
    assert hdrs["content-type"] == ["text/html; charset=utf-8"]
    assert int(hdrs["content-length"][0]) == len(body)
    assert body.startswith(b"<!DOCTYPE html>") and b"new WebSocket(" in body
    csp = hdrs["content-security-policy"][0]
    for directive in ("default-src 'none'", "connect-src 'self'", "base-uri 'none'",
                      "form-action 'none'", "frame-ancestors 'none'"):
        assert directive in csp, csp
    # Inline code is allowed by hash only, and no external resource is named.
    assert "'unsafe-inline'" not in csp and "script-src 'sha256-" in csp
    assert b"src=" not in body and b"href=" not in body and b"@import" not in body
    assert hdrs["x-content-type-options"] == ["nosniff"]
    # HEAD: the same head, no body.
    st, hdrs2, body2, _ = wsrtest.http_exchange(
        addr, b"HEAD /echo HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert st == 200 and body2 == b""
    assert hdrs2["content-length"] == hdrs["content-length"]
    # Other methods keep their answers; so does an upgrade attempt.
    st, hdrs3, _, _ = wsrtest.http_exchange(
        addr, b"POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n")
    assert st == 405 and hdrs3["allow"] == ["GET"]
    req, _ = wsrtest.handshake_request("/echo", drop=("Sec-WebSocket-Version",))
    assert wsrtest.http_exchange(addr, req)[0] == 426
    assert d.connect("/echo").is_open()
    # A route without devconsole keeps 426 for a plain GET.
    d2 = daemon_factory(wsrtest.make_config())
    st, hdrs4, _, _ = wsrtest.http_exchange(
        ("127.0.0.1", d2.port), b"GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert st == 426 and hdrs4["sec-websocket-version"] == ["13"]
    st, _, _, _ = wsrtest.http_exchange(
        ("127.0.0.1", d2.port), b"HEAD /echo HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert st == 405
