"""The HTTP side (RFC 6455 section 4): 101 answers, every error status with
a text body and Connection: close, route matching, origins, subprotocols,
max_connections, handshake deadline, early data."""

import socket
import time

import pytest

import wsrtest
from wsrtest import OP_TEXT, WSClient, handshake_request, http_exchange


def addr(d):
    return ("127.0.0.1", d.port)


def assert_error(d, request, status, timeout=5.0):
    st, headers, body, closed = http_exchange(addr(d), request, timeout)
    assert st == status, "expected HTTP %d, got %d (%r, body %r)" % (status, st, headers, body)
    conn = ",".join(headers.get("connection", [])).lower()
    assert "close" in conn, "no 'Connection: close' in %r" % headers
    assert body.strip(), "error answer without a body"
    assert "sec-websocket-accept" not in headers
    if "content-length" in headers:
        assert int(headers["content-length"][0]) == len(body), "Content-Length mismatch"
    assert closed, "server did not close the connection after HTTP %d" % status
    return headers, body


# ------------------------------------------------------------ 101


def test_101_rfc_sample_key(daemon):
    req, _ = handshake_request(key="dGhlIHNhbXBsZSBub25jZQ==")
    c = WSClient.connect(addr(daemon), request=req)
    assert c.status == 101
    assert c.header("sec-websocket-accept") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    assert c.header("upgrade").lower() == "websocket"
    assert "upgrade" in c.header("connection").lower()
    assert "sec-websocket-protocol" not in c.headers
    c.echo(OP_TEXT, b"ok")


def test_101_header_names_and_tokens_case_insensitive(daemon):
    key = wsrtest.make_key()
    req = ("GET /echo HTTP/1.1\r\nhost: localhost\r\nuPgRaDe: WebSocket\r\n"
           "connection: keep-alive, Upgrade\r\nsec-websocket-key: %s\r\n"
           "SEC-WEBSOCKET-VERSION: 13\r\nUser-Agent: test\r\n\r\n" % key).encode()
    c = WSClient.connect(addr(daemon), request=req)
    c.key = key
    assert c.header("sec-websocket-accept") == wsrtest.expected_accept(key)
    c.echo(OP_TEXT, b"ok")


def test_101_ignores_extension_offers(daemon):
    """permessage-deflate is not implemented, so it must not be accepted."""
    c = daemon.connect(extra=[("Sec-WebSocket-Extensions",
                               "permessage-deflate; client_max_window_bits")])
    assert "sec-websocket-extensions" not in c.headers, c.headers
    c.echo(OP_TEXT, b"plain")


def test_query_string_matches_route(daemon):
    c = daemon.connect("/echo?x=1")
    c.echo(OP_TEXT, b"q")


# ------------------------------------------------------------ 400

BAD_REQUESTS = {
    "missing_host": dict(drop=["Host"]),
    "missing_upgrade": dict(drop=["Upgrade"]),
    "upgrade_not_websocket": dict(drop=["Upgrade"], extra=[("Upgrade", "h2c")]),
    "missing_connection": dict(drop=["Connection"]),
    "connection_without_upgrade": dict(drop=["Connection"], extra=[("Connection", "keep-alive")]),
    "missing_key": dict(drop=["Sec-WebSocket-Key"]),
    "key_wrong_length": dict(key="c2hvcnQga2V5"),  # base64 of 9 bytes
    "key_15_bytes": dict(key="AAAAAAAAAAAAAAAAAAAA"),  # 20 chars → 15 bytes
    "key_not_base64": dict(key="!!!!!!!!!!!!!!!!!!!!!!=="),
    "http_1_0": dict(version="HTTP/1.0"),
}


@pytest.mark.parametrize("name", sorted(BAD_REQUESTS))
def test_400(daemon, name):
    req, _ = handshake_request(**BAD_REQUESTS[name])
    assert_error(daemon, req, 400)


def test_400_garbage_request_line(daemon):
    assert_error(daemon, b"HELLO\r\n\r\n", 400)


def test_400_header_without_colon(daemon):
    req, _ = handshake_request(extra=[("Bogus header line", "")])
    req = req.replace(b"Bogus header line: \r\n", b"Bogus header line\r\n")
    assert_error(daemon, req, 400)


# ------------------------------------------------------------ 403 / origins

ORIGIN_CONFIG = wsrtest.make_config(route_extra="origins = https://ok.example, https://b.example\n")


def test_403_origin_not_allowed(daemon_factory):
    d = daemon_factory(ORIGIN_CONFIG)
    req, _ = handshake_request(extra=[("Origin", "https://evil.example")])
    assert_error(d, req, 403)


def test_403_origin_absent(daemon_factory):
    d = daemon_factory(ORIGIN_CONFIG)
    req, _ = handshake_request()
    assert_error(d, req, 403)


@pytest.mark.parametrize("origin", ["https://ok.example", "https://b.example"])
def test_origin_allowed(daemon_factory, origin):
    d = daemon_factory(ORIGIN_CONFIG)
    c = d.connect(extra=[("Origin", origin)])
    c.echo(OP_TEXT, b"from an allowed origin")


def test_no_allowlist_allows_any_origin(daemon):
    c = daemon.connect(extra=[("Origin", "https://anything.example")])
    c.echo(OP_TEXT, b"x")


# ------------------------------------------------------------ 404 / 405 / 426 / 431


@pytest.mark.parametrize("path", ["/nope", "/echo/", "/ECHO", "/echoo", "/", "/ech"])
def test_404_no_route(daemon, path):
    req, _ = handshake_request(path)
    assert_error(daemon, req, 404)


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "OPTIONS"])
def test_405_not_get(daemon, method):
    req, _ = handshake_request(method=method)
    headers, _ = assert_error(daemon, req, 405)
    allow = headers.get("allow", [""])[0]
    assert allow.replace(" ", "").upper() == "GET", "Allow header %r" % allow


@pytest.mark.parametrize("version", ["8", "12", "14", "abc", None])
def test_426_version(daemon, version):
    if version is None:
        req, _ = handshake_request(drop=["Sec-WebSocket-Version"])
    else:
        req, _ = handshake_request(drop=["Sec-WebSocket-Version"],
                                   extra=[("Sec-WebSocket-Version", version)])
    headers, _ = assert_error(daemon, req, 426)
    assert headers.get("sec-websocket-version") == ["13"], headers


def test_431_head_too_large(daemon):
    req, _ = handshake_request(extra=[("X-Padding", "p" * 9000)])
    assert_error(daemon, req, 431)


def test_431_head_too_large_without_end(daemon):
    """8 KiB + 1 of header bytes with no blank line yet: 431 without waiting."""
    req = b"GET /echo HTTP/1.1\r\nHost: x\r\nX-Padding: " + b"p" * 8200
    assert_error(daemon, req, 431, timeout=3.0)


def test_head_just_under_8k_accepted(daemon):
    req, key = handshake_request()
    pad = 8192 - len(req) - len("X-Pad: \r\n") - 64  # comfortably below the limit
    req, key = handshake_request(key=key, extra=[("X-Pad", "p" * pad)])
    assert len(req) < 8192
    c = WSClient.connect(addr(daemon), request=req)
    c.key = key
    c.echo(OP_TEXT, b"big head ok")


# ------------------------------------------------------------ 503


def test_503_max_connections(daemon_factory):
    d = daemon_factory(wsrtest.make_config(server_extra="max_connections = 2\n"))
    time.sleep(0.2)  # let the daemon forget the readiness probe connection
    a = d.connect()
    b = d.connect()
    req, _ = handshake_request()
    assert_error(d, req, 503)
    a.echo(OP_TEXT, b"a still works")
    b.echo(OP_TEXT, b"b still works")
    # Freeing a slot makes room again.
    a.send_close(1000)
    assert a.read_close()[0] == 1000
    a.expect_eof()

    def try_connect():
        c = WSClient.connect(addr(d), expect=None)
        if c.status == 101:
            return c
        c.close_socket()
        return None
    c = wsrtest.wait_until(try_connect, 3.0, 0.1)
    assert c, "no 101 after a slot was freed"
    c.echo(OP_TEXT, b"c")


# ------------------------------------------------------------ subprotocols

SUBPROTO_CONFIG = wsrtest.make_config(route_extra="subprotocols = chat.v1, chat.v2\n")


@pytest.mark.parametrize("offer,chosen", [
    ("chat.v2, chat.v1", "chat.v2"),
    ("chat.v1, chat.v2", "chat.v1"),
    ("foo, chat.v2", "chat.v2"),
    ("chat.v1", "chat.v1"),
    ("foo,bar", None),
])
def test_subprotocol_selection(daemon_factory, offer, chosen):
    d = daemon_factory(SUBPROTO_CONFIG)
    c = d.connect(extra=[("Sec-WebSocket-Protocol", offer)])
    assert c.headers.get("sec-websocket-protocol") == ([chosen] if chosen else None), c.headers
    c.echo(OP_TEXT, b"sp")


def test_subprotocol_not_configured_not_echoed(daemon):
    c = daemon.connect(extra=[("Sec-WebSocket-Protocol", "chat.v1")])
    assert "sec-websocket-protocol" not in c.headers
    c.echo(OP_TEXT, b"sp")


# ------------------------------------------------------------ early data / timing


def test_frame_in_same_packet_as_handshake(daemon):
    c = daemon.connect(early=wsrtest.build_frame(OP_TEXT, b"first!"))
    op, payload, _ = c.read_message()
    assert (op, payload) == (OP_TEXT, b"first!")


def test_handshake_split_in_small_writes(daemon):
    req, key = handshake_request()
    s = wsrtest.open_socket(addr(daemon))
    for i in range(0, len(req), 7):
        s.sendall(req[i:i + 7])
        time.sleep(0.005)
    c = WSClient(s)
    c.key = key
    c.read_head()
    assert c.status == 101
    assert c.header("sec-websocket-accept") == wsrtest.expected_accept(key)
    c.echo(OP_TEXT, b"split")


def test_handshake_timeout_is_a_deadline(daemon_factory):
    """One header byte every 200 ms must not keep the connection alive past ~1 s."""
    d = daemon_factory(wsrtest.make_config(handshake_timeout="1s"))
    s = wsrtest.open_socket(addr(d))
    trickle = b"GET /echo HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"s" * 200
    t0 = time.monotonic()
    closed_at = None
    for i in range(len(trickle)):  # at most ~40 s, but we stop after 5 s
        if time.monotonic() - t0 > 5.0:
            break
        try:
            s.send(trickle[i:i + 1])
        except (BrokenPipeError, ConnectionResetError):
            closed_at = time.monotonic()
            break
        s.settimeout(0.2)
        try:
            data = s.recv(4096)
        except socket.timeout:
            continue
        except ConnectionResetError:
            closed_at = time.monotonic()
            break
        if not data:
            closed_at = time.monotonic()
            break
        # The server may answer (e.g. 408) before closing; keep waiting for EOF.
    s.close()
    assert closed_at is not None, "connection still open after 5 s of trickling"
    elapsed = closed_at - t0
    assert 0.8 <= elapsed <= 2.5, "disconnected after %.2f s, expected ~1 s" % elapsed


def test_handshake_timeout_silent_client(daemon_factory):
    d = daemon_factory(wsrtest.make_config(handshake_timeout="1s"))
    s = wsrtest.open_socket(addr(d))
    c = WSClient(s)
    t0 = time.monotonic()
    c.expect_eof(3.0, allow_data=True)
    elapsed = time.monotonic() - t0
    assert 0.8 <= elapsed <= 2.5, "disconnected after %.2f s" % elapsed


def test_handshake_timeout_not_applied_after_upgrade(daemon_factory):
    d = daemon_factory(wsrtest.make_config(handshake_timeout="1s"))
    c = d.connect()
    time.sleep(1.6)
    c.echo(OP_TEXT, b"still open after the handshake deadline")
