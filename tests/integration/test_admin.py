"""The admin listener ([admin] listen): /metrics scraped with a real
Prometheus text parser (Debian's python3-prometheus-client) while the test
drives traffic, /healthz, /readyz (also during a SIGTERM drain), method and
path errors, a unix socket, reloads, the refusal of a public address; and
the access log (access_log, log_format): kv and JSON lines parsed back,
hostile values escaped, the file reopened on SIGHUP."""

import json
import os
import re
import signal
import socket
import time

import pytest

import wsrtest
from wsrtest import OP_BINARY, OP_TEXT

parser = pytest.importorskip("prometheus_client.parser",
                             reason="python3-prometheus-client is not installed")


def conns(m, route):
    """Open connections of route summed over the loops (the main loop is
    worker 0; with workers = N the worker threads are 1..N)."""
    return sum(v for (n, lb), v in m.items()
               if n == "wsrouted_connections" and dict(lb).get("route") == route)


def admin_config(admin="listen = 127.0.0.1:{port2}", server_extra="", more="", **server):
    return wsrtest.make_config(server_extra=server_extra, **server) + more + \
        "[admin]\n%s\n" % admin


def http_get(addr, path, method="GET"):
    req = ("%s %s HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n"
           % (method, path)).encode()
    return wsrtest.http_exchange(addr, req, timeout=5.0)


def admin_addr(d):
    return ("127.0.0.1", d.port2)


def scrape(addr):
    """{(sample name, ((label, value), ...)): value} from GET /metrics, parsed
    by prometheus_client (which raises on anything malformed)."""
    status, headers, body, _ = http_get(addr, "/metrics")
    assert status == 200, (status, body[:200])
    assert headers["content-type"][0].startswith("text/plain; version=0.0.4"), headers
    out = {}
    for fam in parser.text_string_to_metric_families(body.decode("utf-8")):
        for s in fam.samples:
            key = (s.name, tuple(sorted(s.labels.items())))
            assert key not in out, "duplicate sample %r" % (key,)
            out[key] = s.value
    return out


def val(m, name, **labels):
    return m.get((name, tuple(sorted(labels.items()))), 0.0)


def wait_log(d, text, timeout=5.0, count=1):
    assert wsrtest.wait_until(lambda: d.log_text().count(text) >= count, timeout), \
        "no %r in the log:\n%s" % (text, d.log_tail())


def rewrite(d, text):
    with open(d.conf_path, "w") as f:
        f.write(wsrtest.root_opt_in(text.replace("{port}", str(d.port))
                                    .replace("{port2}", str(d.port2))
                                    .replace("{tmp}", d.tmpdir)))


def test_counters_move_with_traffic(daemon_factory):
    d = daemon_factory(admin_config())
    a = admin_addr(d)
    before = scrape(a)
    assert conns(before, "/echo") == 0
    assert val(before, "process_open_fds") > 0
    assert val(before, "process_resident_memory_bytes") > 0
    assert 0 < time.time() - val(before, "process_start_time_seconds") < 600

    c = d.connect("/echo")
    sizes = [0, 10, 125, 126, 1000, 70000]
    for n in sizes:
        c.echo(OP_BINARY, os.urandom(n))
    mid = scrape(a)
    assert conns(mid, "/echo") == 1
    d_in = val(mid, "wsrouted_messages_received_total", route="/echo") - \
        val(before, "wsrouted_messages_received_total", route="/echo")
    d_out = val(mid, "wsrouted_messages_sent_total", route="/echo") - \
        val(before, "wsrouted_messages_sent_total", route="/echo")
    assert d_in == len(sizes), d_in
    # The echo may reach us before its sender's counter moves (with workers
    # the scrape runs on another thread): wait for it.
    assert wsrtest.wait_until(lambda: val(scrape(a), "wsrouted_messages_sent_total", route="/echo")
                              - val(before, "wsrouted_messages_sent_total", route="/echo")
                              == len(sizes), 3), d_out
    mid = scrape(a)
    # Frames: payload plus 2..14 header bytes each way (masked in, not out).
    b_in = val(mid, "wsrouted_received_bytes_total", route="/echo")
    b_out = val(mid, "wsrouted_sent_bytes_total", route="/echo")
    assert sum(sizes) + 6 * len(sizes) <= b_in <= sum(sizes) + 14 * len(sizes), b_in
    assert sum(sizes) + 2 * len(sizes) < b_out <= sum(sizes) + 10 * len(sizes) + 200, b_out

    c.send_close(1000)
    c.expect_close(1000)
    # A server-initiated close: a protocol error (an unmasked frame) gets 1002.
    p = d.connect("/echo")
    p.send_frame(OP_TEXT, b"x", mask=False)
    p.expect_close(1002)
    # A handshake for no route.
    n = wsrtest.WSClient.connect(("127.0.0.1", d.port), "/nope", expect=404)
    n.close_socket()

    assert wsrtest.wait_until(lambda: conns(scrape(a), "/echo") == 0, 3)
    after = scrape(a)

    def delta(name, **labels):
        return val(after, name, **labels) - val(before, name, **labels)

    assert delta("wsrouted_handshakes_total", code="101") == 2
    assert delta("wsrouted_handshakes_total", code="404") == 1
    assert delta("wsrouted_connections_accepted_total") >= 3
    assert delta("wsrouted_close_frames_received_total", route="/echo", code="1000") == 1
    assert delta("wsrouted_close_frames_sent_total", route="/echo", code="1000") == 1
    assert delta("wsrouted_close_frames_sent_total", route="/echo", code="1002") == 1
    assert delta("wsrouted_connections_closed_total", route="/echo", closed_by="client") == 1
    assert delta("wsrouted_connections_closed_total", route="/echo", closed_by="server") == 1
    info = [v for k, v in after.items() if k[0] == "wsrouted_build_info"]
    assert info == [1.0], info


def test_healthz_readyz_and_http_errors(daemon_factory):
    d = daemon_factory(admin_config())
    a = admin_addr(d)
    assert http_get(a, "/healthz")[:1] == (200,)
    status, _, body, _ = http_get(a, "/readyz")
    assert (status, body) == (200, b"ready\n")
    status, headers, _, _ = http_get(a, "/metrics", method="POST")
    assert status == 405 and headers["allow"] == ["GET, HEAD"], (status, headers)
    assert http_get(a, "/readyz", method="DELETE")[0] == 405
    assert http_get(a, "/nope")[0] == 404
    assert http_get(a, "/nope", method="POST")[0] == 404
    assert http_get(a, "/metrics/")[0] == 404
    status, headers, body, _ = http_get(a, "/healthz", method="HEAD")
    assert status == 200 and body == b"", (status, body)
    # The query string does not change the path.
    assert http_get(a, "/healthz?verbose=1")[0] == 200
    # The admin paths are not on the WebSocket listener, and vice versa.
    assert http_get(("127.0.0.1", d.port), "/metrics")[0] in (400, 404, 426)
    assert http_get(a, "/echo")[0] == 404


def test_readyz_503_while_draining(daemon_factory):
    d = daemon_factory(admin_config(close_timeout="10s", shutdown_timeout="10s"))
    a = admin_addr(d)
    c = d.connect("/echo")
    assert http_get(a, "/readyz")[0] == 200
    d.send_signal(signal.SIGTERM)
    code, _ = c.read_close(5.0)
    assert code == 1001
    # We do not answer the close: the daemon waits for us, draining.
    status, _, body, _ = http_get(a, "/readyz")
    assert (status, body) == (503, b"not ready: draining\n"), (status, body)
    assert http_get(a, "/healthz")[0] == 200
    m = scrape(a)
    assert conns(m, "/echo") == 1
    c.send_close(1001)
    c.expect_eof(5.0)
    assert d.wait(5.0) == 0


def test_unix_socket_admin(daemon_factory, tmp_path):
    sock = str(tmp_path / "admin.sock")
    d = daemon_factory(admin_config("listen = unix:" + sock))
    assert http_get(sock, "/healthz")[0] == 200
    m = scrape(sock)
    assert ("wsrouted_handshakes_total", (("code", "101"),)) in m


@pytest.mark.parametrize("addr", ["0.0.0.0:9090", "*:9090", "[::]:9090", "10.1.2.3:9090"])
def test_public_admin_address_is_refused(tmp_path, addr):
    path = tmp_path / "w.ini"
    path.write_text("[server]\nlisten = 127.0.0.1:8080\n[admin]\nlisten = %s\n" % addr)
    res = wsrtest.run_daemon(["-t", "-c", str(path)])
    assert res.returncode == 1, res
    err = res.stderr.decode()
    assert "w.ini:4: listen: '%s' is not a loopback address" % addr in err, err
    assert "add the option 'public'" in err, err
    path.write_text("[server]\nlisten = 127.0.0.1:8080\n[admin]\nlisten = %s public\n" % addr)
    res = wsrtest.run_daemon(["-t", "-c", str(path)])
    assert res.returncode == 0, res.stderr


@pytest.mark.parametrize("line, error", [
    ("listen = 127.0.0.1:9090 tls", "the only option in [admin] is 'public'"),
    ("listen = systemd", "a passed socket in [admin] must be named, expected systemd:NAME"),
    ("listen = 127.0.0.1:8080", "duplicate of line 2 ('127.0.0.1:8080' in [server])"),
    ("timeout = 5s", "timeout: not valid in [admin]"),
    ("bogus = 1", "unknown key 'bogus' in [admin]"),
])
def test_admin_config_errors(tmp_path, line, error):
    path = tmp_path / "w.ini"
    path.write_text("[server]\nlisten = 127.0.0.1:8080\n[admin]\n%s\n" % line)
    res = wsrtest.run_daemon(["-t", "-c", str(path)])
    assert res.returncode == 1 and error in res.stderr.decode(), res.stderr


def test_loopback_addresses_are_accepted(tmp_path):
    path = tmp_path / "w.ini"
    path.write_text("[server]\nlisten = 127.0.0.1:8080\nlog_format = json\n"
                    "access_log = stderr\n[admin]\nlisten = 127.0.0.2:9090\n"
                    "listen = [::1]:9090\nlisten = unix:/run/wsrouted-admin.sock\n")
    res = wsrtest.run_daemon(["-T", "-c", str(path)])
    assert res.returncode == 0, res.stderr
    out = res.stdout.decode()
    assert "[admin]\nlisten = 127.0.0.2:9090 ; " in out, out
    assert "log_format = json ; " in out and "access_log = stderr ; " in out, out
    # The dump reads back to the same dump.
    again = tmp_path / "again.ini"
    again.write_text(out)
    res2 = wsrtest.run_daemon(["-T", "-c", str(again)])
    strip = lambda t: re.sub(r" ; .*| ;.*$", "", t, flags=re.M)  # noqa: E731
    assert strip(res2.stdout.decode()).split("[server]")[1] == strip(out).split("[server]")[1]


def test_reloads_counted_and_admin_address_applied(daemon_factory, tmp_path):
    d = daemon_factory(admin_config())
    a = admin_addr(d)
    base = d.template
    rewrite(d, base.replace("handler = echo", "handler = echo\n[route /two]\nhandler = echo"))
    d.send_signal(signal.SIGHUP)
    wait_log(d, "event=reloaded")
    m = scrape(a)
    assert val(m, "wsrouted_config_reloads_total", result="ok") == 1
    assert val(m, "wsrouted_config_last_reload_successful") == 1
    assert val(m, "wsrouted_messages_received_total", route="/two") == 0
    assert ("wsrouted_messages_received_total", (("route", "/two"),)) in m
    assert any(n == "wsrouted_connections" and dict(lb).get("route") == "/two" for n, lb in m)
    c = d.connect("/two")
    c.echo(OP_TEXT, b"x")
    # A broken file: counted, and the running configuration stays.
    rewrite(d, base + "nonsense\n")
    d.send_signal(signal.SIGHUP)
    wait_log(d, "event=reload_failed")
    m = scrape(a)
    assert val(m, "wsrouted_config_reloads_total", result="failed") == 1
    assert val(m, "wsrouted_config_last_reload_successful") == 0
    # A new admin address is bound, the old one closed.
    sock = str(tmp_path / "a2.sock")
    rewrite(d, base.replace("listen = 127.0.0.1:{port2}", "listen = unix:" + sock))
    d.send_signal(signal.SIGHUP)
    wait_log(d, "event=reloaded", count=2)
    assert http_get(sock, "/readyz")[0] == 200
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(a, timeout=2).close()
    assert val(scrape(sock), "wsrouted_config_reloads_total", result="ok") == 2
    # A route removed by a reload keeps its series (documented); its open
    # connection is drained (drain_window = 0 in the harness: at once, 1001)
    # and its counters stay after it closed.
    c.expect_close(1001)
    assert wsrtest.wait_until(lambda: conns(scrape(sock), "/two") == 0, 3)
    m = scrape(sock)
    assert val(m, "wsrouted_messages_received_total", route="/two") == 1


def test_ping_rtt_histogram(daemon_factory):
    d = daemon_factory(admin_config(ping_period="100ms"))
    a = admin_addr(d)
    c = d.connect("/echo")
    deadline = time.monotonic() + 5
    pongs = 0
    while pongs < 3 and time.monotonic() < deadline:
        f = c.read_frame(2.0)
        if f.opcode == wsrtest.OP_PING:
            c.send_frame(wsrtest.OP_PONG, f.payload)
            pongs += 1
    # An unsolicited pong with a plausible payload is not a round trip.
    c.send_frame(wsrtest.OP_PONG, b"\x00" * 8)
    c.echo(OP_TEXT, b"sync")
    m = scrape(a)
    count = val(m, "wsrouted_ping_rtt_seconds_count", route="/echo")
    assert 2 <= count <= 3, count     # the third pong may still be in flight
    assert val(m, "wsrouted_ping_rtt_seconds_bucket", route="/echo", le="+Inf") == count
    assert val(m, "wsrouted_ping_rtt_seconds_bucket", route="/echo", le="0.5") == count
    assert val(m, "wsrouted_ping_rtt_seconds_sum", route="/echo") < 0.5 * count


def test_slow_consumer_and_handler_errors(daemon_factory):
    more = ("[route /bc]\nhandler = broadcast\nsend_buffer = 16KiB\nclose_timeout = 30s\n"
            "max_queue = 8\noverflow = close\ninclude_sender = no\n"
            "[route /fail]\nhandler = exec\ncommand = exit 3\nshell = yes\n")
    d = daemon_factory(admin_config(more=more))
    a = admin_addr(d)
    slow = d.connect("/bc")
    sender = d.connect("/bc")
    fast = d.connect("/bc")
    payload = b"y" * 1000
    closed = False
    for _ in range(40):
        for _ in range(20):
            sender.send_binary(payload)
        for _ in range(20):
            assert fast.read_message(10.0)[1] == payload
        if val(scrape(a), "wsrouted_slow_consumer_closes_total", route="/bc") == 1:
            closed = True
            break
    assert closed, "the slow reader was never dropped"
    c = d.connect("/fail")
    c.expect_close(1011)
    assert wsrtest.wait_until(lambda: val(scrape(a), "wsrouted_handler_errors_total",
                                          route="/fail") == 1, 3)


# ---------------------------------------------------------------- access log

KV = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)')


def unkv(v):
    if v == "-":
        return None
    if not v.startswith('"'):
        return int(v) if v.isdigit() else v
    out, s, i = bytearray(), v[1:-1], 0
    while i < len(s):
        ch = s[i]
        if ch != "\\":
            out += ch.encode()
            i += 1
            continue
        nxt = s[i + 1]
        if nxt == "x":
            out.append(int(s[i + 2:i + 4], 16))
            i += 4
        else:
            out += {"n": b"\n", "r": b"\r", "t": b"\t", '"': b'"', "\\": b"\\"}[nxt]
            i += 2
    return out.decode("utf-8", "replace")


def parse_kv(line):
    assert "\n" not in line
    fields = {k: unkv(v) for k, v in KV.findall(line)}
    # Every byte of the line is accounted for by key=value pairs.
    assert " ".join("%s=%s" % kv for kv in KV.findall(line)) == line, line
    return fields


def is_probe(rec):
    """The harness's readiness check: connect, close, nothing sent."""
    return rec["status"] is None and rec["bytes_in"] == 0 and rec["closed_by"] == "abort"


def kv_records(path, n, timeout=5.0):
    """The n records of an access log file (kv, ASCII only), probes left out."""
    def read():
        try:
            with open(path, encoding="ascii") as f:
                recs = [parse_kv(x) for x in f.read().splitlines()]
        except FileNotFoundError:
            return []
        return [r for r in recs if not is_probe(r)]
    assert wsrtest.wait_until(lambda: len(read()) >= n, timeout), read()
    recs = read()
    assert len(recs) == n, recs
    return recs


def json_records(d, n, timeout=5.0):
    def read():
        recs = [json.loads(x) for x in d.log_text().splitlines() if x.startswith("{")]
        return [r for r in recs if not is_probe(r)]
    assert wsrtest.wait_until(lambda: len(read()) >= n, timeout), d.log_tail()
    recs = read()
    assert len(recs) == n, recs
    return recs


HOSTILE_QUERY = 'a="b"&c=\\x%0A{}'
HOSTILE_PATH = '/no"pe\\%22\'<>'


def drive(d):
    c = wsrtest.WSClient.connect(("127.0.0.1", d.port), "/echo?" + HOSTILE_QUERY,
                                 extra=[("Sec-WebSocket-Protocol", "bogus, chat.v1")])
    c.echo(OP_TEXT, b"hello")
    c.echo(OP_BINARY, b"\x00" * 300)
    c.send_close(1000)
    c.expect_close(1000)
    n = wsrtest.WSClient.connect(("127.0.0.1", d.port), HOSTILE_PATH, expect=404)
    n.expect_eof(3.0, allow_data=True)


def check_records(ok, nf):
    # With workers the two lines come from different threads, in either order.
    if ok["status"] != 101:
        ok, nf = nf, ok
    assert ok["status"] == 101 and ok["route"] == "/echo" and ok["path"] == "/echo", ok
    assert ok["query"] == HOSTILE_QUERY, ok
    assert ok["subprotocol"] == "chat.v1", ok
    assert ok["msgs_in"] == 2 and ok["msgs_out"] == 2, ok
    assert ok["bytes_in"] > 305 and ok["bytes_out"] > 305, ok
    assert ok["close_code"] == 1000 and ok["closed_by"] == "client", ok
    assert re.match(r"127\.0\.0\.1:\d+$", ok["client"]), ok
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", ok["time"]), ok
    assert ok["duration_ms"] >= 0
    assert nf["status"] == 404 and nf["route"] is None and nf["path"] == HOSTILE_PATH, nf
    assert nf["close_code"] is None and nf["closed_by"] == "server", nf
    assert nf["msgs_in"] == 0 and nf["bytes_out"] > 0, nf


def test_access_log_kv_file_and_reopen(daemon_factory, tmp_path):
    log = str(tmp_path / "access.kv")
    d = daemon_factory(admin_config(server_extra="access_log = %s\n" % log,
                                    route_extra="subprotocols = chat.v1\n"))
    drive(d)
    ok, nf = kv_records(log, 2)
    check_records(ok, nf)
    # The event log (stderr) does not get the access lines.
    assert "closed_by=" not in d.log_text()
    # logrotate: rename, SIGHUP, the next line goes to a new file.
    os.rename(log, log + ".1")
    d.send_signal(signal.SIGHUP)
    wait_log(d, "event=reloaded")
    c = d.connect("/echo")
    c.send_close(1000)
    c.expect_close(1000)
    new = kv_records(log, 1)[0]
    assert new["status"] == 101 and new["closed_by"] == "client", new
    assert len(kv_records(log + ".1", 2)) == 2
    # A log that cannot be opened fails the reload; the old one stays in use.
    rewrite(d, d.template.replace(log, str(tmp_path / "missing" / "x.log")))
    d.send_signal(signal.SIGHUP)
    wait_log(d, "event=reload_failed")
    assert "access_log: cannot open" in d.log_text()
    c = d.connect("/echo")
    c.close_socket()
    rec = kv_records(log, 2)[1]
    assert rec["status"] == 101 and rec["closed_by"] == "abort", rec
    assert rec["close_code"] == 1006, rec


def test_access_log_json_stderr(daemon_factory):
    d = daemon_factory(admin_config(server_extra="access_log = stderr\nlog_format = json\n",
                                    route_extra="subprotocols = chat.v1\n"))
    drive(d)
    check_records(*json_records(d, 2))
    # A connection that never finished its handshake gets a line too.
    s = socket.create_connection(("127.0.0.1", d.port), timeout=5)
    s.sendall(b"GET /echo HTTP/1.1\r\n")
    s.close()
    rec = json_records(d, 3)[2]
    assert rec["bytes_in"] == 20 and rec["status"] is None and rec["closed_by"] == "abort" and rec["path"] is None, rec


def test_config_test_opens_the_access_log(tmp_path):
    """-t opens the access log as the daemon would: a path it cannot write is
    an error at -t (say, before a reload), not at the next start."""
    path = tmp_path / "w.ini"
    conf = "[server]\nlisten = 127.0.0.1:8080\naccess_log = %s\n[route /e]\nhandler = echo\n"
    path.write_text(conf % (tmp_path / "no-such-dir" / "access.log"))
    res = wsrtest.run_daemon(["-t", "-c", str(path)])
    assert res.returncode == 1, res
    err = res.stderr.decode()
    assert "access_log: cannot open '%s': No such file or directory" \
        % (tmp_path / "no-such-dir" / "access.log") in err, err
    path.write_text(conf % (tmp_path / "access.log"))
    res = wsrtest.run_daemon(["-t", "-c", str(path)])
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "access.log").exists()   # created, as the daemon would


def test_access_log_off_by_default(daemon_factory):
    d = daemon_factory(wsrtest.make_config())
    c = d.connect("/echo")
    c.send_close(1000)
    c.expect_close(1000)
    wait_log(d, "event=close")
    assert "closed_by" not in d.log_text()


def test_tls_handshakes_counted(daemon_factory, tmp_path):
    from test_tls import client_ctx, make_cert, tls_config, tls_ws
    cert, key = make_cert(tmp_path)
    sock = str(tmp_path / "admin.sock")
    d = daemon_factory(tls_config(cert, key) + "[admin]\nlisten = unix:%s\n" % sock)
    # The harness's readiness probe (a TCP connect that never speaks TLS) is a
    # failed handshake too; with workers it may be counted after the daemon
    # is up: start from counters that have settled.
    def tls_counts():
        m = scrape(sock)
        return (val(m, "wsrouted_tls_handshakes_total", result="ok"),
                val(m, "wsrouted_tls_handshakes_total", result="failed"))
    assert wsrtest.wait_until(lambda: tls_counts()[1] >= 1, 3)
    before = scrape(sock)
    c = tls_ws(d.port, client_ctx(cert))
    c.echo(OP_TEXT, b"over tls")
    c.close_socket()
    # Plain HTTP on the TLS listener: the TLS handshake fails.
    bad = socket.create_connection(("127.0.0.1", d.port), timeout=5)
    bad.sendall(b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
    try:
        while bad.recv(100):    # an alert, then EOF (or a reset): bounded by the timeout
            pass
    except ConnectionResetError:
        pass
    bad.close()

    def delta(result):
        return val(scrape(sock), "wsrouted_tls_handshakes_total", result=result) - \
            val(before, "wsrouted_tls_handshakes_total", result=result)
    assert wsrtest.wait_until(lambda: delta("ok") == 1 and delta("failed") == 1, 3), \
        (delta("ok"), delta("failed"))


def test_timeout_closes_are_attributed(daemon_factory, tmp_path):
    log = str(tmp_path / "access.kv")
    d = daemon_factory(admin_config(server_extra="access_log = %s\n" % log, timeout="300ms",
                                    handshake_timeout="300ms"))
    c = d.connect("/echo")
    assert c.read_close(3.0)[0] == 1001           # idle: nothing sent for 300 ms
    c.send_close(1001)
    c.expect_eof(3.0)
    s = socket.create_connection(("127.0.0.1", d.port), timeout=5)
    s.sendall(b"GET /echo HTTP/1.1\r\n")          # never finishes its head
    assert s.recv(10) == b""
    s.close()
    idle, slow = kv_records(log, 2)
    assert idle["closed_by"] == "timeout" and idle["close_code"] == 1001, idle
    assert slow["closed_by"] == "timeout" and slow["status"] is None, slow
    assert slow["reason"] == "handshake timeout", slow
    m = scrape(admin_addr(d))
    assert val(m, "wsrouted_connections_closed_total", route="/echo", closed_by="timeout") == 1
    assert val(m, "wsrouted_close_frames_sent_total", route="/echo", code="1001") == 1


def test_admin_on_a_socket_passed_by_systemd(tmp_path):
    from test_systemd import SOCKET_ACTIVATE, BUILT_WITH_SYSTEMD, Activated, config
    if SOCKET_ACTIVATE is None or not BUILT_WITH_SYSTEMD:
        pytest.skip("systemd-socket-activate not installed or built --without-systemd")
    cfg = config(["systemd"]) + "[admin]\nlisten = systemd:admin\n"
    a = Activated(tmp_path, cfg, nports=2, fdnames=["web", "admin"])
    try:
        a.first.close()
        a.first = None
        wsrtest.wait_until(lambda: "event=admin_listening listen=systemd:admin" in a.log_text(), 5)
        # "listen = systemd" in [server] left the admin socket alone.
        assert "event=listening listen=systemd fd=3 name=web" in a.log_text(), a.log_text()
        assert not re.search(r"event=listening listen=systemd fd=\d+ name=admin", a.log_text())
        c = a.connect(0)
        c.echo(OP_TEXT, b"web")
        assert http_get(("127.0.0.1", a.ports[1]), "/healthz")[0] == 200
        assert val(scrape(("127.0.0.1", a.ports[1])), "wsrouted_handshakes_total",
                   code="101") >= 1
        # The WebSocket side is not served on the admin socket.
        assert http_get(("127.0.0.1", a.ports[1]), "/echo")[0] == 404
        c.send_close(1000)
        c.expect_close(1000)
    finally:
        assert a.stop() == 0, a.log_text()


def test_metrics_per_worker(daemon_factory):
    """workers = 2: each worker thread's connections under its own label (1, 2),
    the main loop (0) holds none, and message counters are summed over both."""
    d = daemon_factory(admin_config(server_extra="workers = 2\n"))
    a = admin_addr(d)
    clients = [d.connect("/echo") for _ in range(4)]
    for c in clients:
        c.echo(OP_TEXT, b"hello")
    m = scrape(a)
    assert val(m, "wsrouted_connections", route="/echo", worker="0") == 0
    assert val(m, "wsrouted_connections", route="/echo", worker="1") == 2
    assert val(m, "wsrouted_connections", route="/echo", worker="2") == 2
    assert val(m, "wsrouted_messages_received_total", route="/echo") == 4
    for c in clients:
        c.send_close(1000)
        c.expect_close(1000)
    assert wsrtest.wait_until(lambda: conns(scrape(a), "/echo") == 0, 3)
