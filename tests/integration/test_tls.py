"""TLS termination (listen = ADDR:PORT tls, [tls]): wss echo with a client
that verifies the certificate (self-signed, made by the openssl CLI here),
config errors caught by `wsrouted -t`, protocol versions, a stalled TLS
handshake, a certificate reload under open connections, idle memory."""

import asyncio
import os
import re
import signal
import socket
import ssl
import subprocess
import time

import pytest
import websockets

import wsrtest
from wsrtest import WSClient, OP_TEXT, run_daemon


def make_cert(d, name="cert", cn="localhost"):
    """A self-signed P-256 certificate for 127.0.0.1/localhost: (cert, key) paths."""
    cert = os.path.join(str(d), name + ".pem")
    key = os.path.join(str(d), name + "-key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "2", "-subj", "/CN=" + cn,
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True, timeout=30)
    return cert, key


def tls_config(cert, key, tls_extra="", server_extra=""):
    return wsrtest.make_config(
        server_extra="listen = 127.0.0.1:{port2}\n" + server_extra,
        more="[tls]\ncertificate = %s\nprivate_key = %s\n%s" % (cert, key, tls_extra),
    ).replace("listen = 127.0.0.1:{port}\n", "listen = 127.0.0.1:{port} tls\n", 1)


def client_ctx(cafile, **kw):
    ctx = ssl.create_default_context(cafile=cafile)
    for k, v in kw.items():
        setattr(ctx, k, v)
    return ctx


def tls_ws(port, ctx, path="/echo", timeout=5.0, rcvbuf=None):
    """A raw WSClient over TLS (handshake asserted 101)."""
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.settimeout(timeout)
    if rcvbuf is not None:  # before connect: it bounds the window
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    raw.connect(("127.0.0.1", port))
    s = ctx.wrap_socket(raw, server_hostname="localhost")
    c = WSClient(s)
    req, c.key = wsrtest.handshake_request(path)
    s.sendall(req)
    c.read_head(timeout)
    assert c.status == 101, (c.status, c.reason)
    return c


@pytest.fixture
def certs(tmp_path):
    return make_cert(tmp_path)


def test_wss_echo_with_verifying_client(daemon_factory, certs):
    cert, key = certs
    d = daemon_factory(tls_config(cert, key))

    async def run():
        async with websockets.connect("wss://localhost:%d/echo" % d.port,
                                      ssl=client_ctx(cert), max_size=None) as ws:
            await ws.send("hello")
            assert await ws.recv() == "hello"
            big = os.urandom(300000)   # many TLS records each way
            await ws.send(big)
            assert await ws.recv() == big
            return ws.transport.get_extra_info("ssl_object").version()
    version = asyncio.run(asyncio.wait_for(run(), 10))
    assert version == "TLSv1.3"
    # The plain listener next to it still speaks plain WebSocket.
    c = d.connect(addr=("127.0.0.1", d.port2))
    assert c.echo(OP_TEXT, b"plain")
    assert "event=tls_established version=TLSv1.3" in d.log_text()


def test_client_with_another_ca_refuses(daemon_factory, certs, tmp_path):
    cert, key = certs
    other, _ = make_cert(tmp_path, "other")
    d = daemon_factory(tls_config(cert, key))
    with pytest.raises(ssl.SSLCertVerificationError):
        tls_ws(d.port, client_ctx(other))
    # The server logs the failed handshake and carries on.
    assert wsrtest.wait_until(lambda: "event=tls_error" in d.log_text(), 3)
    assert tls_ws(d.port, client_ctx(cert)).echo(OP_TEXT, b"ok")


def test_protocol_versions(daemon_factory, certs):
    cert, key = certs
    d = daemon_factory(tls_config(cert, key))
    c = tls_ws(d.port, client_ctx(cert, maximum_version=ssl.TLSVersion.TLSv1_2))
    assert c.sock.version() == "TLSv1.2"
    assert c.echo(OP_TEXT, b"tls12")
    d13 = daemon_factory(tls_config(cert, key, "protocols = TLSv1.3\n"))
    with pytest.raises(ssl.SSLError):
        tls_ws(d13.port, client_ctx(cert, maximum_version=ssl.TLSVersion.TLSv1_2))
    assert tls_ws(d13.port, client_ctx(cert)).echo(OP_TEXT, b"tls13")


def test_stalled_tls_handshake_is_dropped(daemon_factory, certs):
    cert, key = certs
    d = daemon_factory(tls_config(cert, key).replace("handshake_timeout = 5s",
                                                     "handshake_timeout = 1s"))
    s = socket.create_connection(("127.0.0.1", d.port), timeout=5)
    # The start of a ClientHello record, then nothing.
    s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
    t0 = time.monotonic()
    s.settimeout(4)
    assert s.recv(100) == b""
    assert 0.8 < time.monotonic() - t0 < 3.5
    assert "event=handshake_timeout" in d.log_text()


def test_tls_config_errors(tmp_path, certs):
    cert, key = certs
    _, other_key = make_cert(tmp_path, "other")
    good = ("[server]\nlisten = 127.0.0.1:1 tls\n[tls]\ncertificate = %s\n"
            "private_key = %s\n[route /e]\nhandler = echo\n")
    cases = [
        (good % (cert, key), 0, None),
        (good % (cert, str(tmp_path / "missing.pem")), 1,
         ":5: private_key: cannot open '%s': No such file or directory"
         % (tmp_path / "missing.pem")),
        (good % (cert, other_key), 1, ":5: private_key: cannot load a PEM private key"),
        (good % (key, key), 1, ":4: certificate: cannot load a PEM certificate"),
        ("[server]\nlisten = 127.0.0.1:1 tls\n[route /e]\nhandler = echo\n", 1,
         ":2: listen: option 'tls' needs a [tls] section"),
        (good.replace("[route", "protocols = TLSv1.1\n[route") % (cert, key), 1,
         ":6: protocols: expected TLSv1.2 and/or TLSv1.3"),
        (good.replace("[route", "ciphers = NOPE\n[route") % (cert, key), 1,
         ":6: ciphers: no usable cipher in 'NOPE'"),
        (good.replace("[route", "groups = nope\n[route") % (cert, key), 1,
         ":6: groups: unknown group in 'nope'"),
    ]
    for i, (text, rc, msg) in enumerate(cases):
        path = tmp_path / ("c%d.ini" % i)
        path.write_text(text)
        p = run_daemon(["-t", "-c", str(path)])
        err = p.stderr.decode()
        assert p.returncode == rc, (text, p.stdout, err)
        if msg:
            assert (str(path) + msg) in err, (msg, err)
    # A key every user can read loads, with a warning naming it.
    os.chmod(key, 0o600)
    path = tmp_path / "private.ini"
    path.write_text(good % (cert, key))
    p = run_daemon(["-t", "-c", str(path)])
    assert p.returncode == 0 and "readable by every user" not in p.stderr.decode()
    os.chmod(key, 0o644)
    p = run_daemon(["-t", "-c", str(path)])
    err = p.stderr.decode()
    assert p.returncode == 0, err
    assert "key=private_key" in err and "readable by every user (mode 644)" in err, err
    os.chmod(key, 0o600)
    # Unreadable (not missing) key: only meaningful when not root.
    if os.geteuid() != 0:
        os.chmod(key, 0)
        path = tmp_path / "unreadable.ini"
        path.write_text(good % (cert, key))
        p = run_daemon(["-t", "-c", str(path)])
        assert p.returncode == 1 and "Permission denied" in p.stderr.decode()


def test_certificate_reload_under_open_connections(daemon_factory, tmp_path):
    cert, key = make_cert(tmp_path, "a", cn="first")
    d = daemon_factory(tls_config(cert, key))
    old = [tls_ws(d.port, client_ctx(cert)) for _ in range(3)]
    first_der = old[0].sock.getpeercert(binary_form=True)
    # Replace the files in place with a new key pair, then SIGHUP.
    new_cert, new_key = make_cert(tmp_path, "b", cn="second")
    os.replace(new_cert, cert)
    os.replace(new_key, key)
    d.send_signal(signal.SIGHUP)
    assert wsrtest.wait_until(lambda: "event=tls_reloaded" in d.log_text(), 5), d.log_tail()
    fresh = tls_ws(d.port, client_ctx(cert))
    assert fresh.sock.getpeercert(binary_form=True) != first_der
    assert fresh.echo(OP_TEXT, b"new cert")
    # The connections opened before the reload carry on with the old session.
    for i, c in enumerate(old):
        assert c.echo(OP_TEXT, b"still here %d" % i)
    # A client that only trusts the old certificate no longer gets in.
    old_ca = tmp_path / "old-ca.pem"
    old_ca.write_text(ssl.DER_cert_to_PEM_cert(first_der))
    with pytest.raises(ssl.SSLCertVerificationError):
        tls_ws(d.port, client_ctx(str(old_ca)))
    # A broken reload keeps the current certificate.
    with open(key, "w") as f:
        f.write("not a key\n")
    d.send_signal(signal.SIGHUP)
    assert wsrtest.wait_until(lambda: "event=reload_failed" in d.log_text(), 5)
    assert "private_key: cannot load" in d.log_text()
    assert tls_ws(d.port, client_ctx(cert)).echo(OP_TEXT, b"kept")
    for c in old + [fresh]:
        c.close_socket()


def _idle_tls_bytes(d, cert, n=400):
    """RSS growth per idle TLS connection (each has echoed once)."""
    ctx = client_ctx(cert)
    warm = [tls_ws(d.port, ctx) for _ in range(50)]   # let the allocator settle
    for c in warm:
        assert c.echo(OP_TEXT, b"w")
    base = d.rss_kb()
    conns = [tls_ws(d.port, ctx) for _ in range(n)]
    for c in conns:
        assert c.echo(OP_TEXT, b"x" * 100)
    time.sleep(0.2)
    per_conn = (d.rss_kb() - base) * 1024 / n
    for c in conns + warm:
        c.close_socket()
    return per_conn


@pytest.mark.skipif(wsrtest.UNDER_VALGRIND, reason="RSS under valgrind is memcheck's shadow memory")
def test_idle_tls_connection_memory(daemon_factory, certs):
    """Issue 8: at most 12 KiB per idle TLS connection. With our record layer
    (record_layer = wsrouted, the default) a TLS 1.3 connection keeps its
    keys and counters (~300 B) beside the WebSocket connection, measured
    ~0.9 KiB in all; OpenSSL 3.0 keeps ~14.8 KiB (SSL_new() alone ~8.3 KiB,
    with SSL_MODE_RELEASE_BUFFERS; ~24 KiB without), which the openssl
    setting shows and is held to 18 KiB (allocator noise; it still catches
    retained record buffers)."""
    cert, key = certs
    d = daemon_factory(tls_config(cert, key).replace("log_level = debug",
                                                     "log_level = warn"))
    if wsrtest.under_sanitizer(d):
        pytest.skip("RSS under a sanitizer measures its redzones, quarantine or shadow")
    ours = _idle_tls_bytes(d, cert)
    d2 = daemon_factory(tls_config(cert, key, "record_layer = openssl\n").replace(
        "log_level = debug", "log_level = warn"))
    openssl = _idle_tls_bytes(d2, cert)
    print("idle TLS connection: %.0f bytes of RSS each (record_layer = openssl: %.0f)"
          % (ours, openssl))
    assert ours <= 12 * 1024, "%.0f bytes per idle TLS connection" % ours
    assert openssl <= 18 * 1024, "%.0f bytes per idle TLS connection (openssl)" % openssl


def test_record_layer_by_version_and_setting(daemon_factory, certs):
    """TLS 1.3 connections move to our record layer after the handshake;
    TLS 1.2 ones, and all with record_layer = openssl, stay with OpenSSL.
    Each echoes small and large messages (many records each way)."""
    cert, key = certs
    big = os.urandom(300000)
    d = daemon_factory(tls_config(cert, key))
    c = tls_ws(d.port, client_ctx(cert))
    assert c.echo(OP_TEXT, b"thirteen") and c.echo(wsrtest.OP_BINARY, big)
    assert wsrtest.wait_until(lambda: "version=TLSv1.3 cipher=TLS_AES_256_GCM_SHA384 "
                              "records=wsrouted" in d.log_text(), 3), d.log_tail()
    c = tls_ws(d.port, client_ctx(cert, maximum_version=ssl.TLSVersion.TLSv1_2))
    assert c.echo(OP_TEXT, b"twelve") and c.echo(wsrtest.OP_BINARY, big)
    assert "version=TLSv1.2" in d.log_text() and "records=openssl" in d.log_text()
    d2 = daemon_factory(tls_config(cert, key, "record_layer = openssl\n"))
    c = tls_ws(d2.port, client_ctx(cert))
    assert c.echo(OP_TEXT, b"openssl") and c.echo(wsrtest.OP_BINARY, big)
    assert "version=TLSv1.3" in d2.log_text() and "records=openssl" in d2.log_text()
    assert "records=wsrouted" not in d2.log_text()


@pytest.mark.parametrize("suite", ["TLS_AES_128_GCM_SHA256", "TLS_CHACHA20_POLY1305_SHA256"])
def test_record_layer_suites(daemon_factory, certs, suite):
    """Every TLS 1.3 suite OpenSSL offers runs on our record layer."""
    cert, key = certs
    d = daemon_factory(tls_config(cert, key, "ciphersuites = %s\n" % suite))
    c = tls_ws(d.port, client_ctx(cert))
    assert c.sock.cipher()[0] == suite
    assert c.echo(OP_TEXT, b"suite") and c.echo(wsrtest.OP_BINARY, os.urandom(200000))
    assert "cipher=%s records=wsrouted" % suite in d.log_text()


def test_session_resumption_with_a_ticket(daemon_factory, certs):
    """OpenSSL's NewSessionTickets go out under the server's application key
    before we take the records over: our sequence numbers start after them,
    and a client resumes with one."""
    cert, key = certs
    d = daemon_factory(tls_config(cert, key))
    ctx = client_ctx(cert)
    c = tls_ws(d.port, ctx)
    assert c.echo(OP_TEXT, b"first")     # reading it takes the tickets in
    session = c.sock.session
    assert session is not None and session.has_ticket
    raw = socket.create_connection(("127.0.0.1", d.port), timeout=5)
    s = ctx.wrap_socket(raw, server_hostname="localhost", session=session)
    assert s.session_reused
    c2 = WSClient(s)
    req, c2.key = wsrtest.handshake_request("/echo")
    s.sendall(req)
    assert c2.read_head(5) == 101
    assert c2.echo(OP_TEXT, b"resumed")
    assert d.log_text().count("records=wsrouted") == 2


def test_key_update_both_ways(daemon_factory, certs):
    """openssl s_client's K (KeyUpdate, update_requested) and k (not
    requested): after each the daemon reads with the client's next key; after
    K, and only then, it sends its own KeyUpdate (s_client -msg shows it
    received) and writes with its next key."""
    import select
    cert, key = certs
    d = daemon_factory(tls_config(cert, key))
    # Not -quiet: that also turns s_client's commands off.
    p = subprocess.Popen(["openssl", "s_client", "-connect", "127.0.0.1:%d" % d.port,
                          "-tls1_3", "-msg", "-CAfile", cert],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    got = bytearray()
    theirs = b"<<< TLS 1.3, Handshake [length 0005], KeyUpdate"

    def read_until(want, count=1, timeout=5.0):
        deadline = time.monotonic() + timeout
        while got.count(want) < count and time.monotonic() < deadline:
            r, _, _ = select.select([p.stdout], [], [], 0.1)
            if r:
                chunk = os.read(p.stdout.fileno(), 65536)
                if not chunk:
                    break
                got.extend(chunk)
        return got.count(want) >= count

    def send(data):
        p.stdin.write(data)
        p.stdin.flush()
        time.sleep(0.3)     # one read per write in s_client: keep commands apart

    try:
        req, _ = wsrtest.handshake_request("/echo")
        send(req)
        assert read_until(b"\r\n\r\n"), bytes(got)
        answered = 0
        for word, cmd in ((b"before-any-update", None), (b"after-K", b"K\n"),
                          (b"after-k", b"k\n"), (b"after-K-again", b"K\n")):
            if cmd is not None:
                send(cmd)
            send(wsrtest.build_frame(OP_TEXT, word))
            assert read_until(word), (word, bytes(got[-500:]), d.log_tail())
            answered += cmd == b"K\n"
            assert got.count(theirs) == answered, (word, got.count(theirs))
        assert "event=tls_error" not in d.log_text(), d.log_tail()
    finally:
        p.kill()
        p.wait(5)


def test_bad_records_after_the_handshake(daemon_factory, certs):
    """Bytes that are not records under the client's key, written under the
    TLS layer: the daemon sends its alert, logs why, and frees the
    connection; others carry on."""
    cert, key = certs
    d = daemon_factory(tls_config(cert, key))
    time.sleep(0.1)
    fds0 = d.num_fds()
    cases = [(b"\x17\x03\x03\x00\x20" + os.urandom(32), "record failed authentication"),
             (b"\x16\x03\x03\x00\x04\x18\x00\x00\x01", "unprotected record"),
             (b"\x17\x03\x03\x41\x01", "record over 16 KiB + 256")]
    for raw_bytes, why in cases:
        c = tls_ws(d.port, client_ctx(cert))
        assert c.echo(OP_TEXT, b"fine so far")
        os.write(c.sock.fileno(), raw_bytes)    # under SSLSocket: not a record of its
        assert wsrtest.wait_until(lambda: why in d.log_text(), 3), (why, d.log_tail())
        with pytest.raises((ssl.SSLError, OSError, AssertionError)):
            c.sock.settimeout(3)
            if not c.sock.recv(100):
                raise AssertionError("EOF")
        c.close_socket()
    assert tls_ws(d.port, client_ctx(cert)).echo(OP_TEXT, b"others carry on")
    assert wsrtest.wait_until(lambda: d.num_fds() <= fds0 + 1, 3), (fds0, d.num_fds())


def test_tcp_close_without_close_notify_is_an_eof(daemon_factory, certs):
    """A client that closes TCP without close_notify (after, or instead of, the
    WebSocket close) is a plain EOF, as on a plain socket, not a TLS error."""
    cert, key = certs
    d = daemon_factory(tls_config(cert, key))
    c = tls_ws(d.port, client_ctx(cert))
    assert c.echo(OP_TEXT, b"bye")
    c.sock.close()      # Python's SSLSocket.close() sends no close_notify
    assert wsrtest.wait_until(lambda: "event=close route=/echo code=1006" in d.log_text(), 3)
    assert 'reason="peer closed without a close frame"' in d.log_text()
    # The same after a WebSocket close handshake: a normal close.
    c = tls_ws(d.port, client_ctx(cert))
    c.send_close(1000)
    assert c.read_close()[0] == 1000
    c.expect_eof(3)     # reads the server's close_notify and FIN, then closes
    assert wsrtest.wait_until(lambda: "code=1000 reason=\"closed\"" in d.log_text(), 3), \
        d.log_tail()


def test_tls_backpressure_and_partial_writes(daemon_factory, certs):
    """A client that stops reading: the daemon's SSL_write is refused
    (WANT_WRITE), its output queues, reading pauses; once the client reads
    again every byte arrives intact and in order."""
    import threading
    cert, key = certs
    d = daemon_factory(tls_config(cert, key, server_extra="max_output_buffer = 64KiB\n"))
    c = tls_ws(d.port, client_ctx(cert), rcvbuf=16384)
    msgs = [os.urandom(900000) for _ in range(10)]   # well over tcp_wmem's 4 MiB
    errors = []

    def send_all():
        try:
            for m in msgs:
                c.send_frame(wsrtest.OP_BINARY, m)
        except Exception as e:  # reported below
            errors.append(e)
    t = threading.Thread(target=send_all, daemon=True)
    t.start()
    time.sleep(1.0)             # not reading: buffers fill up on both sides
    assert wsrtest.wait_until(lambda: "event=paused" in d.log_text(), 3), (errors, t.is_alive(), d.log_tail())
    for i, m in enumerate(msgs):
        op, data, _ = c.read_message(10)
        assert data == m, "message %d differs" % i
    t.join(10)
    assert not t.is_alive() and not errors, errors
    assert "event=resumed" in d.log_text()


def test_reload_changes_listen_options_on_the_bound_socket(daemon_factory, tmp_path):
    """A reload that only adds or drops `tls` / `proxy_protocol` on a listen
    line keeps the bound socket (binding it again could only fail with
    EADDRINUSE) and takes new connections the new way; open ones carry on."""
    cert, key = make_cert(tmp_path)
    d = daemon_factory(tls_config(cert, key, server_extra="trusted_proxies = 127.0.0.1\n"))
    port, port2 = d.port, d.port2
    tls_before = tls_ws(port, client_ctx(cert))
    plain_before = wsrtest.WSClient.connect(("127.0.0.1", port2))

    def reload_to(line1, line2):
        n = d.log_text().count("event=reloaded")
        with open(d.conf_path) as f:
            text = f.read()
        text = re.sub(r"^listen = 127\.0\.0\.1:%d\b.*$" % port, "listen = " + line1, text,
                      count=1, flags=re.M)
        text = re.sub(r"^listen = 127\.0\.0\.1:%d\b.*$" % port2, "listen = " + line2, text,
                      count=1, flags=re.M)
        with open(d.conf_path, "w") as f:
            f.write(text)
        d.send_signal(signal.SIGHUP)
        assert wsrtest.wait_until(lambda: d.log_text().count("event=reloaded") > n, 5.0), \
            d.log_tail()

    # Swap: the TLS port becomes plain, the plain one TLS.
    reload_to("127.0.0.1:%d" % port, "127.0.0.1:%d tls" % port2)
    log = d.log_text()
    assert "event=reload_failed" not in log, d.log_tail()
    assert "event=listen_changed listen=127.0.0.1:%d was=\"127.0.0.1:%d tls\" tls=no" \
        % (port, port) in log
    assert "event=listen_changed listen=127.0.0.1:%d tls was=\"127.0.0.1:%d\" tls=yes" \
        % (port2, port2) in log
    assert log.count("event=listening listen=127.0.0.1:%d" % port) == 1   # never re-bound
    assert wsrtest.WSClient.connect(("127.0.0.1", port)).echo(OP_TEXT, b"plain now")
    assert tls_ws(port2, client_ctx(cert)).echo(OP_TEXT, b"tls now")
    assert tls_before.echo(OP_TEXT, b"opened over TLS, still TLS")
    assert plain_before.echo(OP_TEXT, b"opened plain, still plain")

    # proxy_protocol on a kept socket: the header is now expected and used.
    reload_to("127.0.0.1:%d proxy_protocol" % port, "127.0.0.1:%d tls" % port2)
    req, _ = wsrtest.handshake_request("/echo")
    c = wsrtest.WSClient.connect(("127.0.0.1", port),
                                 request=b"PROXY TCP4 192.0.2.44 127.0.0.1 4444 1\r\n" + req)
    assert c.echo(OP_TEXT, b"through a proxy")
    assert wsrtest.wait_until(lambda: "peer=192.0.2.44:4444" in d.log_text(), 3.0), d.log_tail()
    assert d.alive()
