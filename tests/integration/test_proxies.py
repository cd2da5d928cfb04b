"""Life behind reverse proxies, with the real ones: Debian's nginx (ws, and
wss terminated by nginx) and HAProxy (send-proxy-v2, send-proxy), started by
the test on free loopback ports with configs in a temp dir and stopped by
PID. The client connects from 127.0.0.2 so that its address differs from
the proxies' (127.0.0.1, the only trusted one); what the daemon resolved is
read from its `event=open peer=` log line, which is also what handlers get
from wsr_conn_peer(). Also: forwarded headers and PROXY headers sent by hand,
from trusted and untrusted peers."""

import os
import re
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import time

import pytest

import wsrtest
from wsrtest import WSClient, OP_TEXT, OP_PING, OP_PONG, OP_CLOSE

CLIENT_ADDR = "127.0.0.2"
PING_MS = 300
PROXY_IDLE_S = 1  # every proxy idle timeout below


def daemon_config(extra_listen="", ping_period="%dms" % PING_MS):
    return wsrtest.make_config(
        server_extra="listen = 127.0.0.1:{port2} proxy_protocol\n" + extra_listen +
                     "trusted_proxies = 127.0.0.1, ::1\nproxy_protocol_timeout = 1s\n",
        ping_period=ping_period)


def open_peers(d):
    return re.findall(r"conn=\d+ peer=(\S+) event=open", d.log_text())


def connect_from(addr, request=None, extra=None, tls_ctx=None, early=b"", expect=101,
                 path="/echo", src=CLIENT_ADDR):
    """A WSClient whose socket is bound to src; returns (client, 'ip:port' of src)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(5)
    s.bind((src, 0))
    s.connect(addr)
    local = "%s:%d" % s.getsockname()
    if tls_ctx is not None:
        s = tls_ctx.wrap_socket(s, server_hostname="localhost")
    c = WSClient(s)
    if request is None:
        request, c.key = wsrtest.handshake_request(path, extra=extra)
    s.sendall(early + request)
    if expect is None:
        return c, local
    c.read_head(5)
    assert c.status == expect, (c.status, c.reason)
    return c, local


def last_open_peer(d, before):
    assert wsrtest.wait_until(lambda: len(open_peers(d)) > before, 3), d.log_tail()
    return open_peers(d)[-1]


def idle_answering_pings(c, seconds):
    """Be an idle but live client: answer pings, send nothing else. Returns pings seen."""
    deadline = time.monotonic() + seconds
    pings = 0
    while time.monotonic() < deadline:
        try:
            f = c.read_frame(max(0.01, deadline - time.monotonic()))
        except wsrtest.WSTimeout:
            break
        assert f.opcode == OP_PING, "unexpected frame while idle: %r" % f
        pings += 1
        c.send_frame(OP_PONG, f.payload)
    return pings


class Proc:
    """A proxy process started by the test, stopped by PID."""

    def __init__(self, argv, log_path):
        self.log_path = log_path
        self.logf = open(log_path, "wb")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.logf,
                                     stderr=subprocess.STDOUT)

    def wait_listening(self, ports, timeout=5.0):
        deadline = time.monotonic() + timeout
        for port in ports:
            while True:
                assert self.proc.poll() is None, "proxy exited: %s" % self.log()
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                    break
                except OSError:
                    assert time.monotonic() < deadline, "proxy not listening: %s" % self.log()
                    time.sleep(0.05)

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")[-3000:]

    def stop(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.logf.close()


@pytest.fixture
def procs():
    started = []
    yield started
    for p in started:
        p.stop()


def need(binary):
    path = shutil.which(binary) or shutil.which(binary, path="/usr/sbin:/sbin")
    if path is None:
        pytest.fail("%s is not installed (./bootstrap check installs it)" % binary)
    return path


def make_cert(d):
    cert, key = os.path.join(str(d), "cert.pem"), os.path.join(str(d), "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True, timeout=30)
    return cert, key


def conf_path(name):
    return os.path.join(wsrtest.HERE, "..", "..", "conf", name)


def render_example(name, subst):
    """conf/NAME with its example addresses and paths replaced for the test."""
    with open(conf_path(name)) as f:
        text = f.read()
    for a, b in subst.items():
        assert a in text, "conf/%s no longer contains %r" % (name, a)
        text = text.replace(a, b)
    return text


# ------------------------------------------------------------ without proxies


def test_forwarded_headers_only_from_trusted_peers(daemon_factory):
    d = daemon_factory(daemon_config(ping_period="0"))
    # 127.0.0.1 is trusted: the rightmost untrusted X-Forwarded-For entry is the client.
    n = len(open_peers(d))
    c, _ = connect_from(("127.0.0.1", d.port), src="127.0.0.1",
                        extra=[("X-Forwarded-For", "6.6.6.6, 203.0.113.5, 127.0.0.1"),
                               ("X-Forwarded-Proto", "https")])
    assert last_open_peer(d, n) == "203.0.113.5"
    assert "source=X-Forwarded-For proto=https" in d.log_text()
    assert c.echo(OP_TEXT, b"via trusted")
    # Forwarded wins over X-Forwarded-For and X-Real-IP, and keeps a port.
    n = len(open_peers(d))
    connect_from(("127.0.0.1", d.port), src="127.0.0.1",
                 extra=[("X-Real-IP", "198.51.100.1"), ("X-Forwarded-For", "198.51.100.2"),
                        ("Forwarded", 'for="198.51.100.3:4711";proto=wss')])
    assert last_open_peer(d, n) == "198.51.100.3:4711"
    # 127.0.0.2 is not trusted: forged headers are ignored.
    n = len(open_peers(d))
    c, local = connect_from(("127.0.0.1", d.port),
                            extra=[("X-Forwarded-For", "6.6.6.6"), ("X-Real-IP", "6.6.6.7"),
                                   ("Forwarded", "for=6.6.6.8")])
    assert last_open_peer(d, n) == local
    assert "6.6.6." not in d.log_text()


def pp_v1(src, sport, dst="127.0.0.1", dport=1):
    return ("PROXY TCP4 %s %s %d %d\r\n" % (src, dst, sport, dport)).encode()


def pp_v2(src, sport, dst="127.0.0.1", dport=1, tlvs=b""):
    body = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!HH", sport, dport) + tlvs
    return (b"\r\n\r\n\x00\r\nQUIT\n" + bytes([0x21, 0x11]) + struct.pack("!H", len(body)) + body)


def test_proxy_protocol_by_hand(daemon_factory):
    d = daemon_factory(daemon_config(ping_period="0"))
    addr = ("127.0.0.1", d.port2)
    for hdr, want in ((pp_v1("192.0.2.7", 5555), "192.0.2.7:5555"),
                      (pp_v2("192.0.2.8", 6666, tlvs=b"\x01\x00\x02h2\x04\x00\x00"),
                       "192.0.2.8:6666")):
        n = len(open_peers(d))
        # The header and the request in one segment: only the header is consumed.
        c, _ = connect_from(addr, src="127.0.0.1", early=hdr)
        assert last_open_peer(d, n) == want
        assert c.echo(OP_TEXT, b"after PROXY")
    # A client of the load balancer is not trusted: its headers mean nothing.
    n = len(open_peers(d))
    connect_from(addr, src="127.0.0.1", early=pp_v1("192.0.2.9", 7777),
                 extra=[("X-Forwarded-For", "6.6.6.6")])
    assert last_open_peer(d, n) == "192.0.2.9:7777"
    # An untrusted peer cannot speak PROXY: closed at once.
    c, _ = connect_from(addr, early=pp_v1("192.0.2.10", 1), expect=None)
    c.expect_eof(3)
    assert "peer not in trusted_proxies" in d.log_text()
    # No header, a bad header: closed.
    c, _ = connect_from(addr, src="127.0.0.1", expect=None)
    c.expect_eof(3)
    assert "event=proxy_protocol_error" in d.log_text()
    # A stalled header: proxy_protocol_timeout (1s), not handshake_timeout (5s).
    s = socket.create_connection(addr, timeout=5)
    s.sendall(b"PROXY TCP4 192.0.2.1")
    t0 = time.monotonic()
    assert s.recv(10) == b""
    assert 0.8 < time.monotonic() - t0 < 3
    assert "event=proxy_protocol_timeout" in d.log_text()


# ------------------------------------------------------------------- nginx


def start_nginx(tmp_path, procs, daemon_port, name="nginx"):
    """nginx with conf/nginx.conf pointed at daemon_port: (ws_port, wss_port, cert)."""
    nginx = need("nginx")
    ntmp = tmp_path / name
    ntmp.mkdir()
    cert, key = make_cert(ntmp)
    ws_port, wss_port = wsrtest.free_port(), wsrtest.free_port()
    text = render_example("nginx.conf", {
        "127.0.0.1:8080;": "127.0.0.1:%d;" % daemon_port,
        "listen 80;": "listen 127.0.0.1:%d;" % ws_port,
        "listen 443 ssl;": "listen 127.0.0.1:%d ssl;" % wss_port,
        "/etc/ssl/certs/wsrouted.pem": cert,
        "/etc/ssl/private/wsrouted.key": key,
        "proxy_read_timeout 75s;": "proxy_read_timeout %ds;" % PROXY_IDLE_S,
        "proxy_send_timeout 75s;": "proxy_send_timeout %ds;" % PROXY_IDLE_S,
    })
    # Process-level settings for a test run: foreground, our tmp dir, no master.
    prelude = ("daemon off;\nmaster_process off;\npid %s/nginx.pid;\nerror_log stderr info;\n"
               % ntmp)
    temp = "".join("%s_temp_path %s/%s;\n" % (k, ntmp, k)
                   for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    text = prelude + text.replace("http {", "http {\n" + temp + "access_log off;\n", 1)
    (ntmp / "nginx.conf").write_text(text)
    p = Proc([nginx, "-p", str(ntmp), "-c", str(ntmp / "nginx.conf"), "-e", "stderr"],
             str(ntmp / "nginx.log"))
    procs.append(p)
    p.wait_listening([ws_port, wss_port])
    return ws_port, wss_port, cert


@pytest.fixture
def nginx_setup(tmp_path, daemon_factory, procs):
    d = daemon_factory(daemon_config())
    ws_port, wss_port, cert = start_nginx(tmp_path, procs, d.port)
    return d, ws_port, wss_port, cert


def test_nginx_ws_and_wss(nginx_setup):
    d, ws_port, wss_port, cert = nginx_setup
    n = len(open_peers(d))
    c, local = connect_from(("127.0.0.1", ws_port), extra=[("X-Forwarded-For", "6.6.6.6")])
    assert c.echo(OP_TEXT, b"through nginx")
    # nginx appends the real client to the forged entry; the daemon takes the rightmost.
    assert last_open_peer(d, n) == local.split(":")[0]
    ctx = ssl.create_default_context(cafile=cert)
    n = len(open_peers(d))
    c, local = connect_from(("127.0.0.1", wss_port), tls_ctx=ctx)
    assert c.sock.version() in ("TLSv1.2", "TLSv1.3")
    assert c.echo(OP_TEXT, b"through nginx over TLS")
    assert c.echo(OP_TEXT, b"x" * 100000)
    assert last_open_peer(d, n) == local.split(":")[0]
    assert "proto=https" in d.log_text()


def test_nginx_idle_connection_survives_with_pings(nginx_setup):
    d, ws_port, _, _ = nginx_setup
    c, _ = connect_from(("127.0.0.1", ws_port))
    pings = idle_answering_pings(c, 3 * PROXY_IDLE_S + 0.3)
    assert pings >= 5
    assert c.echo(OP_TEXT, b"still open after 3x nginx's proxy_read_timeout")


def test_nginx_cuts_an_unpinged_idle_connection(tmp_path, daemon_factory, procs):
    """The control for the test above: without pings nginx does cut it."""
    d = daemon_factory(daemon_config(ping_period="0"))
    ws_port, _, _ = start_nginx(tmp_path, procs, d.port)
    c, _ = connect_from(("127.0.0.1", ws_port))
    t0 = time.monotonic()
    c.expect_eof(3 * PROXY_IDLE_S + 2, allow_data=True)
    assert time.monotonic() - t0 < 3 * PROXY_IDLE_S


# ------------------------------------------------------------------ HAProxy


def start_haproxy(tmp_path, procs, d):
    haproxy = need("haproxy")
    v2_port, v1_port = wsrtest.free_port(), wsrtest.free_port()
    text = render_example("haproxy.cfg", {
        "bind :80\n": "bind 127.0.0.1:%d\n" % v2_port,
        "bind :8081\n": "bind 127.0.0.1:%d\n" % v1_port,
        "127.0.0.1:8443": "127.0.0.1:%d" % d.port2,
        "timeout client 75s": "timeout client %ds" % PROXY_IDLE_S,
        "timeout server 75s": "timeout server %ds" % PROXY_IDLE_S,
        "timeout tunnel 75s": "timeout tunnel %ds" % PROXY_IDLE_S,
        "maxconn 10000": "maxconn 100",   # the test's descriptor limit
    })
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(text)
    check = subprocess.run([haproxy, "-c", "-f", str(cfg)], capture_output=True, timeout=10)
    assert check.returncode == 0, check.stdout + check.stderr
    p = Proc([haproxy, "-db", "-f", str(cfg)], str(tmp_path / "haproxy.log"))
    procs.append(p)
    p.wait_listening([v2_port, v1_port])
    return v2_port, v1_port


@pytest.fixture
def haproxy_setup(tmp_path, daemon_factory, procs):
    d = daemon_factory(daemon_config())
    return (d,) + start_haproxy(tmp_path, procs, d)


def test_haproxy_send_proxy_v2_and_v1(haproxy_setup):
    d, v2_port, v1_port = haproxy_setup
    for port, version in ((v2_port, 2), (v1_port, 1)):
        n = len(open_peers(d))
        c, local = connect_from(("127.0.0.1", port), extra=[("X-Forwarded-For", "6.6.6.6")])
        assert c.echo(OP_TEXT, b"through haproxy")
        # The exact address and port of the client, forged header ignored.
        assert last_open_peer(d, n) == local
        assert "peer=%s event=proxy_protocol version=%d" % (local, version) in d.log_text()


def test_haproxy_idle_connection_survives_with_pings(haproxy_setup):
    d, v2_port, _ = haproxy_setup
    c, _ = connect_from(("127.0.0.1", v2_port))
    pings = idle_answering_pings(c, 3 * PROXY_IDLE_S + 0.3)
    assert pings >= 5
    assert c.echo(OP_TEXT, b"still open after 3x haproxy's timeouts")


def test_haproxy_cuts_an_unpinged_idle_connection(tmp_path, daemon_factory, procs):
    """The control for the test above: without pings HAProxy does cut it."""
    d = daemon_factory(daemon_config(ping_period="0"))
    v2_port, _ = start_haproxy(tmp_path, procs, d)
    c, _ = connect_from(("127.0.0.1", v2_port))
    t0 = time.monotonic()
    c.expect_eof(3 * PROXY_IDLE_S + 2, allow_data=True)
    assert time.monotonic() - t0 < 3 * PROXY_IDLE_S


def test_proxy_protocol_then_tls(daemon_factory, tmp_path):
    """A PROXY v2 header, then the TLS handshake on the same connection (TCP
    load balancer in front, wsrouted terminating TLS): only the header's
    bytes may be consumed before OpenSSL reads."""
    cert, key = make_cert(tmp_path)
    d = daemon_factory(daemon_config(ping_period="0").replace(
        "{port2} proxy_protocol", "{port2} tls proxy_protocol") +
        "[tls]\ncertificate = %s\nprivate_key = %s\n" % (cert, key))
    ctx = ssl.create_default_context(cafile=cert)
    for hdr, want in ((pp_v2("192.0.2.20", 2020), "192.0.2.20:2020"),
                      (pp_v1("192.0.2.21", 2121), "192.0.2.21:2121")):
        s = socket.create_connection(("127.0.0.1", d.port2), timeout=5)
        s.sendall(hdr)
        n = len(open_peers(d))
        c = WSClient(ctx.wrap_socket(s, server_hostname="localhost"))
        req, c.key = wsrtest.handshake_request("/echo")
        c.sock.sendall(req)
        c.read_head(5)
        assert c.status == 101
        assert c.echo(OP_TEXT, b"PROXY + TLS")
        assert last_open_peer(d, n) == want
