"""Running under a service manager, proven with systemd's own stand-alone tools
(systemd is installed but not PID 1 here):

* sd_notify lifecycle: READY=1 after binding, STATUS= with live counts,
  RELOADING=1 + MONOTONIC_USEC then READY=1 on SIGHUP, a failed reload shown in
  STATUS= with file:line, WATCHDOG=1 at half WATCHDOG_USEC, STOPPING=1 -- read
  from a NOTIFY_SOCKET this test owns (it plays PID 1's part).
* socket activation through the real systemd-socket-activate, one or several
  (named) passed sockets, wss on a socket named for TLS (`systemd:NAME tls`);
  `listen = systemd` without sockets is refused.
* SIGHUP re-applies listen lines: new ones bound, removed ones closed, open
  connections untouched; 1,000 connections echoing through 20 reloads.
* a restart with the listening socket kept by the parent (what a .socket unit
  does) refuses no connection.
* privilege drop after binding, and the refusal to run as root without it.
"""

import os
import re
import selectors
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time

import pytest

import wsrtest

SOCKET_ACTIVATE = shutil.which("systemd-socket-activate")
BUILT_WITH_SYSTEMD = os.environ.get("WSROUTED_HAVE_SYSTEMD", "yes") == "yes"
needs_sa = pytest.mark.skipif(SOCKET_ACTIVATE is None or not BUILT_WITH_SYSTEMD,
                              reason="systemd-socket-activate not installed or built --without-systemd")


def config(listen_lines, server_extra=""):
    return ("[server]\n%s\nallow_root = yes\nlog_level = debug\nshutdown_timeout = 2s\n"
            "ping_period = 0\ntimeout = 0\n%s\n[route /echo]\nhandler = echo\n"
            % ("\n".join("listen = %s" % l for l in listen_lines), server_extra))


class Notify:
    """The service manager's end of sd_notify: an AF_UNIX datagram socket that
    records every message with the sender's PID (SO_PASSCRED)."""

    def __init__(self, tmp_path):
        self.path = str(tmp_path / "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self.sock.bind(self.path)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.seen = []  # (monotonic time, pid, {key: value})

    def recv(self, timeout):
        self.sock.settimeout(max(timeout, 0.001))
        msg, anc, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(12))
        pid = None
        for lvl, typ, data in anc:
            if lvl == socket.SOL_SOCKET and typ == socket.SCM_CREDENTIALS:
                pid = struct.unpack("iII", data[:12])[0]
        kv = dict(l.split("=", 1) for l in msg.decode().splitlines() if "=" in l)
        self.seen.append((time.monotonic(), pid, kv))
        return pid, kv

    def wait_for(self, pred, timeout, what):
        """Next message with pred(kv) true; fails after timeout seconds."""
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                raise AssertionError("no %s within %.1fs; got %r" % (what, timeout,
                                                                   [s[2] for s in self.seen[-10:]]))
            try:
                pid, kv = self.recv(left)
            except socket.timeout:
                continue
            if pred(kv):
                return pid, kv

    def wait_kv(self, key, val, timeout=5.0):
        return self.wait_for(lambda kv: kv.get(key) == val, timeout, "%s=%s" % (key, val))

    def close(self):
        self.sock.close()


@pytest.fixture
def notify(tmp_path):
    n = Notify(tmp_path)
    yield n
    n.close()


class Activated:
    """wsrouted started by systemd-socket-activate on loopback ports."""

    def __init__(self, tmp_path, cfg_text, nports=1, fdnames=None, env=None):
        self.tmp = tmp_path
        self.ports = []
        for _ in range(nports):
            p = wsrtest.free_port()
            while p in self.ports:
                p = wsrtest.free_port()
            self.ports.append(p)
        self.conf = str(tmp_path / "wsrouted.ini")
        self.log = str(tmp_path / "wsrouted.log")
        self.write_config(cfg_text)
        args = [SOCKET_ACTIVATE]
        for p in self.ports:
            args += ["-l", "127.0.0.1:%d" % p]
        if fdnames:
            args.append("--fdname=" + ":".join(fdnames))
        for k in (env or {}):
            args += ["-E", k]
        args += [wsrtest.daemon_binary(), "-c", self.conf]
        full_env = dict(os.environ, **(env or {}))
        self.logf = open(self.log, "ab")
        self.proc = subprocess.Popen(args, env=full_env, stdin=subprocess.DEVNULL,
                                     stdout=self.logf, stderr=subprocess.STDOUT)
        # systemd-socket-activate binds, then execs the daemon on the first connection.
        self.first = None
        deadline = time.monotonic() + 5.0
        while self.first is None:
            try:
                self.first = socket.create_connection(("127.0.0.1", self.ports[0]), timeout=2)
            except ConnectionRefusedError:
                assert time.monotonic() < deadline, "systemd-socket-activate never listened"
                assert self.proc.poll() is None, self.log_text()
                time.sleep(0.02)

    def write_config(self, text):
        text = text.replace("{port}", str(self.ports[0]))
        with open(self.conf, "w") as f:
            f.write(text)

    def log_text(self):
        with open(self.log, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def connect(self, i=0):
        return wsrtest.WSClient.connect(("127.0.0.1", self.ports[i]))

    def stop(self):
        if self.first is not None:
            self.first.close()
            self.first = None
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
                raise AssertionError("daemon did not exit within 10 s of SIGTERM")
        self.logf.close()
        return self.proc.returncode


def check_clean_log(text):
    for m in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
        assert m not in text, text


@needs_sa
def test_socket_activation_notify_lifecycle(tmp_path, notify):
    env = {"NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "400000"}
    a = Activated(tmp_path, config(["systemd"]), env=env)
    try:
        pid, kv = notify.wait_kv("READY", "1")
        # Exec'd in place: the PID systemd knows is the daemon (NotifyAccess=main holds).
        assert pid == a.proc.pid
        assert "event=listening listen=systemd fd=3" in a.log_text()
        a.first.close()
        a.first = None

        # Live counts in STATUS=, refreshed without any event.
        conns = [a.connect() for _ in range(3)]
        for c in conns:
            c.echo(wsrtest.OP_TEXT, b"over the passed socket")
        notify.wait_for(lambda kv: kv.get("STATUS", "").startswith(
            "serving 3 connection(s), 1 route(s), 1 listener(s)"), 3.0, "STATUS with 3 connections")

        # WATCHDOG=1 every 200 ms (half of 400 ms).
        t0 = time.monotonic()
        n_wd = 0
        while time.monotonic() - t0 < 1.0:
            try:
                n_wd += notify.recv(1.0 - (time.monotonic() - t0))[1].get("WATCHDOG") == "1"
            except socket.timeout:
                break
        assert 3 <= n_wd <= 7, "WATCHDOG=1 pings in 1 s with WATCHDOG_USEC=400000: %d" % n_wd

        # Good reload: RELOADING=1 with a current MONOTONIC_USEC, then READY=1.
        os.kill(a.proc.pid, signal.SIGHUP)
        _, kv = notify.wait_kv("RELOADING", "1")
        now_us = time.clock_gettime(time.CLOCK_MONOTONIC) * 1e6
        assert abs(int(kv["MONOTONIC_USEC"]) - now_us) < 5e6, kv
        notify.wait_kv("READY", "1")

        # Broken reload: still READY, the failure with file:line in STATUS=, old config serves.
        a.write_config(config(["systemd"]) + "bogus_key = 1\n")
        os.kill(a.proc.pid, signal.SIGHUP)
        notify.wait_kv("RELOADING", "1")
        notify.wait_kv("READY", "1")
        bad_line = len(config(["systemd"]).splitlines()) + 1
        _, kv = notify.wait_for(lambda kv: "reload failed" in kv.get("STATUS", ""), 3.0,
                                "STATUS with the reload failure")
        assert "%s:%d:" % (a.conf, bad_line) in kv["STATUS"], kv
        assert "%s:%d:" % (a.conf, bad_line) in a.log_text()
        for c in conns:
            c.echo(wsrtest.OP_TEXT, b"still here")
        conns.append(a.connect())
        conns[-1].echo(wsrtest.OP_BINARY, b"new connection after a failed reload")

        # Fixed again: the failure leaves STATUS=.
        a.write_config(config(["systemd"]))
        os.kill(a.proc.pid, signal.SIGHUP)
        notify.wait_for(lambda kv: kv.get("STATUS", "").startswith("serving 4 connection(s)")
                        and "failed" not in kv["STATUS"], 3.0, "STATUS without the failure")

        os.kill(a.proc.pid, signal.SIGTERM)
        notify.wait_kv("STOPPING", "1")
        for c in conns:
            c.expect_close(1001)
        assert a.proc.wait(10) == 0
    finally:
        a.stop()
    check_clean_log(a.log_text())


@needs_sa
def test_socket_activation_named_sockets(tmp_path):
    """Two passed sockets: `systemd` serves both, `systemd:NAME` only its own."""
    a = Activated(tmp_path, config(["systemd"]), nports=2, fdnames=["public", "internal"])
    try:
        wsrtest.wait_until(lambda: "event=started" in a.log_text(), 5.0)
        for i in (0, 1):
            a.connect(i).echo(wsrtest.OP_TEXT, b"port %d" % i)
        assert "fd=3 name=public" in a.log_text() and "fd=4 name=internal" in a.log_text()
        # Only the socket named "internal" now; "public" is systemd's: it stays
        # bound but unserved (its connects are queued, not refused).
        a.write_config(config(["systemd:internal"]))
        os.kill(a.proc.pid, signal.SIGHUP)
        assert wsrtest.wait_until(lambda: "event=reloaded" in a.log_text(), 5.0), a.log_text()
        a.connect(1).echo(wsrtest.OP_TEXT, b"internal")
        assert "event=listen_closed listen=systemd fd=3 hint=\"the socket stays bound by systemd" \
            in a.log_text(), a.log_text()
        s = socket.create_connection(("127.0.0.1", a.ports[0]), timeout=2)
        s.sendall(wsrtest.handshake_request()[0])
        s.settimeout(0.5)
        with pytest.raises(socket.timeout):
            s.recv(1)
        s.close()
        # A name no socket has: the reload fails and everything stays.
        a.write_config(config(["systemd:nope"]))
        os.kill(a.proc.pid, signal.SIGHUP)
        assert wsrtest.wait_until(lambda: "event=reload_failed" in a.log_text(), 5.0)
        assert "FileDescriptorName" in a.log_text()
        a.connect(1).echo(wsrtest.OP_TEXT, b"internal still")
        assert a.stop() == 0
    finally:
        a.stop()
    check_clean_log(a.log_text())


@needs_sa
def test_socket_activation_named_tls_socket(tmp_path):
    """`listen = systemd:NAME tls`: the socket named NAME speaks wss (the name
    is NAME, not 'NAME tls'), the other passed socket plain ws."""
    from test_tls import make_cert, client_ctx, tls_ws
    cert, key = make_cert(tmp_path)
    cfg = config(["systemd:plain", "systemd:wss tls"]) + \
        "[tls]\ncertificate = %s\nprivate_key = %s\n" % (cert, key)
    a = Activated(tmp_path, cfg, nports=2, fdnames=["plain", "wss"])
    try:
        assert wsrtest.wait_until(lambda: "event=started" in a.log_text(), 5.0), a.log_text()
        log = a.log_text()
        assert "event=listening listen=systemd:plain fd=3 name=plain" in log, log
        assert "event=listening listen=systemd:wss tls fd=4 name=wss" in log, log
        c = tls_ws(a.ports[1], client_ctx(cert))
        c.echo(wsrtest.OP_TEXT, b"over wss")
        c.echo(wsrtest.OP_BINARY, bytes(range(256)) * 64)
        assert c.sock.version() in ("TLSv1.2", "TLSv1.3")
        a.connect(0).echo(wsrtest.OP_TEXT, b"over ws")
        # The TLS socket does not answer a plaintext handshake with 101.
        s = socket.create_connection(("127.0.0.1", a.ports[1]), timeout=5)
        s.sendall(wsrtest.handshake_request()[0])
        got = b""
        try:
            while len(got) < 4096:
                chunk = s.recv(4096)
                if not chunk:
                    break
                got += chunk
        except (socket.timeout, ConnectionResetError):
            pass
        s.close()
        assert b"101" not in got, got
        # A reload keeps serving wss on the named socket.
        os.kill(a.proc.pid, signal.SIGHUP)
        assert wsrtest.wait_until(lambda: "event=reloaded" in a.log_text(), 5.0), a.log_text()
        tls_ws(a.ports[1], client_ctx(cert)).echo(wsrtest.OP_TEXT, b"after reload")
        c.echo(wsrtest.OP_TEXT, b"old connection")
        assert a.stop() == 0
    finally:
        a.stop()
    check_clean_log(a.log_text())


def test_listen_systemd_without_sockets_is_refused(tmp_path):
    p = tmp_path / "w.ini"
    p.write_text(config(["systemd"]))
    env = {k: v for k, v in os.environ.items() if not k.startswith("LISTEN_")}
    res = subprocess.run([wsrtest.daemon_binary(), "-c", str(p)], env=env, timeout=10,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    assert res.returncode == 1
    assert b"no socket was passed by the service manager" in res.stdout, res.stdout


def test_listen_systemd_config_errors(tmp_path):
    p = tmp_path / "w.ini"
    p.write_text(config(["systemd:", "systemd:a b", "systemd:x", "systemd:x"]))
    res = wsrtest.run_daemon(["-t", "-c", str(p)])
    err = res.stderr.decode()
    assert res.returncode == 1
    assert "%s:2: listen: expected 'systemd' or 'systemd:NAME'" % p in err, err
    assert "%s:3: listen: unexpected 'b'" % p in err, err
    assert "%s:5: listen: duplicate of line 4 ('systemd:x')" % p in err, err


def test_reload_applies_listen_lines(daemon_factory):
    d = daemon_factory(config(["127.0.0.1:{port}"]))
    first = d.connect()
    first.echo(wsrtest.OP_TEXT, b"before")
    port2 = d.port2

    def reload_with(lines, expect):
        n = d.log_text().count(expect)
        with open(d.conf_path, "w") as f:
            f.write(config(lines))
        d.send_signal(signal.SIGHUP)
        assert wsrtest.wait_until(lambda: d.log_text().count(expect) > n, 5.0), d.log_tail()

    reload_with(["127.0.0.1:%d" % d.port, "127.0.0.1:%d" % port2], "event=reloaded")
    assert "event=listening listen=127.0.0.1:%d" % port2 in d.log_text()
    wsrtest.WSClient.connect(("127.0.0.1", port2)).echo(wsrtest.OP_TEXT, b"new port")
    # The unchanged line kept its socket: bound once only.
    assert d.log_text().count("event=listening listen=127.0.0.1:%d" % d.port) == 1

    reload_with(["127.0.0.1:%d" % port2], "event=reloaded")
    assert "event=listen_closed listen=127.0.0.1:%d" % d.port in d.log_text()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", d.port), timeout=2).close()
    first.echo(wsrtest.OP_TEXT, b"a connection of a closed listener lives on")

    # A new line that cannot be bound: nothing changes.
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen(1)
    busy = blocker.getsockname()[1]
    try:
        reload_with(["127.0.0.1:%d" % port2, "127.0.0.1:%d" % busy], "event=reload_failed")
        assert "listen 127.0.0.1:%d: Address already in use" % busy in d.log_text()
        wsrtest.WSClient.connect(("127.0.0.1", port2)).echo(wsrtest.OP_TEXT, b"kept")
    finally:
        blocker.close()
    first.echo(wsrtest.OP_TEXT, b"after")


def ws_text(payload):
    return wsrtest.build_frame(wsrtest.OP_TEXT, payload)


def reload_events(d):
    log = d.log_text()
    return log.count("event=reloaded") + log.count("event=reload_failed")


def test_reload_storm_loses_nothing(daemon_factory):
    """1,000 connections echo continuously (one message in flight each) while
    the config is reloaded 20 times, alternating valid and broken: no connection
    closes, every message comes back once and in order."""
    nconn, nreloads = 1000, 20
    good = config(["127.0.0.1:{port}"], "max_connections = 5000\n")
    d = daemon_factory(good)
    good_text = open(d.conf_path).read()
    bad_text = good_text + "max_connections = lots\n"
    clients = [d.connect() for _ in range(nconn)]
    sel = selectors.DefaultSelector()
    state = []
    for i, c in enumerate(clients):
        c.sock.setblocking(False)
        st = {"i": i, "c": c, "buf": bytearray(c.buf), "sent": 0, "got": 0}
        state.append(st)
        sel.register(c.sock, selectors.EVENT_READ, st)

    def send_next(st):
        st["sent"] += 1
        st["c"].sock.sendall(ws_text(b"%d:%d" % (st["i"], st["sent"])))

    for st in state:
        send_next(st)
    stop_at = None
    reloads = 0
    next_reload = time.monotonic() + 0.2
    deadline = time.monotonic() + 60
    while True:
        now = time.monotonic()
        assert now < deadline, "storm did not finish in 60 s"
        # One SIGHUP at a time: two sent before the daemon took the first
        # merge into one (a pending signal is not queued twice), and it
        # then reads only the later file (seen once on a loaded machine).
        if reloads < nreloads and now >= next_reload and reload_events(d) == reloads:
            with open(d.conf_path, "w") as f:
                f.write(bad_text if reloads % 2 else good_text)
            d.send_signal(signal.SIGHUP)
            reloads += 1
            next_reload = now + 0.25
            if reloads == nreloads:
                stop_at = now + 0.5
        if stop_at is not None and now >= stop_at and all(s["got"] == s["sent"] for s in state):
            break
        for key, _ in sel.select(0.05):
            st = key.data
            data = st["c"].sock.recv(65536)
            assert data, "connection %d closed by the daemon" % st["i"]
            st["buf"] += data
            while len(st["buf"]) >= 2:
                b0, b1 = st["buf"][0], st["buf"][1]
                n = b1 & 0x7F
                assert b0 == 0x81 and n < 126, "unexpected frame %r on %d" % (bytes(st["buf"][:8]), st["i"])
                if len(st["buf"]) < 2 + n:
                    break
                payload = bytes(st["buf"][2:2 + n])
                del st["buf"][:2 + n]
                st["got"] += 1
                assert payload == b"%d:%d" % (st["i"], st["got"]), (payload, st["got"])
                if stop_at is None or time.monotonic() < stop_at:
                    send_next(st)
    log = d.log_text()
    assert log.count("event=reload_failed") == nreloads // 2, d.log_tail()
    assert log.count("event=reloaded") == nreloads // 2, d.log_tail()
    total = sum(s["got"] for s in state)
    assert min(s["got"] for s in state) >= 5, "some connection barely moved"
    assert d.alive()
    for c in clients:
        c.sock.setblocking(True)
        c.sock.settimeout(5)
        c.echo(wsrtest.OP_TEXT, b"last")
    print("storm: %d connections, %d reloads, %d messages echoed" % (nconn, nreloads, total))


def start_with_passed_socket(lsock, conf, logf):
    """Starts the daemon the way systemd does for a .socket unit: the listening
    socket as fd 3, LISTEN_FDS=1, LISTEN_PID = the daemon's own PID (the shell
    execs it, so $$ is that PID)."""
    fd = lsock.fileno()

    def child():
        os.dup2(fd, 3)  # dup2 clears close-on-exec; pass_fds keeps 3 open

    env = {k: v for k, v in os.environ.items() if not k.startswith("LISTEN_")}
    env.update(LISTEN_FDS="1", LISTEN_FDNAMES="wsrouted.socket")
    return subprocess.Popen(["/bin/sh", "-c", 'LISTEN_PID=$$ exec "$@"', "sh",
                             wsrtest.daemon_binary(), "-c", conf],
                            env=env, preexec_fn=child, stdin=subprocess.DEVNULL,
                            stdout=logf, stderr=subprocess.STDOUT, pass_fds=(3,))


@pytest.mark.skipif(not BUILT_WITH_SYSTEMD, reason="built --without-systemd")
def test_restart_with_kept_socket_refuses_nothing(tmp_path):
    """The parent keeps the listening socket across three daemon restarts while
    a client connects over and over: no connection is ever refused, and every
    one that is not cut by the stopping daemon (1001) echoes."""
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(512)
    port = lsock.getsockname()[1]
    conf = str(tmp_path / "w.ini")
    with open(conf, "w") as f:
        f.write(config(["systemd"]))
    logf = open(str(tmp_path / "w.log"), "ab")
    stats = {"ok": 0, "refused": 0, "going_away": 0, "other": []}
    stop = threading.Event()

    def client():
        while not stop.is_set():
            try:
                c = wsrtest.WSClient.connect(("127.0.0.1", port), timeout=10)
            except ConnectionRefusedError:
                stats["refused"] += 1
                continue
            except Exception as e:  # a handshake cut by the stopping daemon
                stats["other"].append(repr(e))
                continue
            try:
                c.echo(wsrtest.OP_TEXT, b"x", timeout=10)
                stats["ok"] += 1
            except Exception:
                stats["going_away"] += 1
            finally:
                c.close_socket()

    procs = []
    t = threading.Thread(target=client)
    try:
        procs.append(start_with_passed_socket(lsock, conf, logf))
        t.start()
        for _ in range(3):
            time.sleep(0.5)
            ok_before = stats["ok"]
            p = procs[-1]
            p.send_signal(signal.SIGTERM)
            assert p.wait(10) == 0
            time.sleep(0.2)  # nobody accepts now: the kernel queues
            procs.append(start_with_passed_socket(lsock, conf, logf))
            assert ok_before > 0
        time.sleep(0.5)
    finally:
        stop.set()
        t.join(30)
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                p.wait(10)
        lsock.close()
        logf.close()
    assert not t.is_alive()
    assert stats["refused"] == 0, stats
    # A connection accepted by a daemon that then stops gets 1001 or EOF; rare.
    assert stats["going_away"] + len(stats["other"]) <= 3, stats
    assert stats["ok"] >= 20, stats
    log = open(str(tmp_path / "w.log"), "rb").read().decode("utf-8", "replace")
    assert log.count("event=listening listen=systemd fd=3 name=wsrouted.socket") == 4, log
    check_clean_log(log)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop privileges")
def test_privilege_drop_after_binding(daemon_factory):
    d = daemon_factory(config(["127.0.0.1:{port}"]).replace("allow_root = yes\n",
                                                            "user = nobody\ngroup = nogroup\n"))
    d.connect().echo(wsrtest.OP_TEXT, b"as nobody")
    with open("/proc/%d/status" % d.pid) as f:
        st = f.read()
    uids = re.search(r"^Uid:\s+(.*)$", st, re.M).group(1).split()
    gids = re.search(r"^Gid:\s+(.*)$", st, re.M).group(1).split()
    groups = re.search(r"^Groups:\s*(.*)$", st, re.M).group(1).split()
    assert uids == ["65534"] * 4, uids
    assert set(gids) == {"65534"} and groups == ["65534"], (gids, groups)
    assert "event=privileges_dropped uid=65534 gid=65534" in d.log_text()


@pytest.mark.skipif(os.geteuid() != 0, reason="the rule is about root")
@pytest.mark.parametrize("extra,message", [
    ("", "refusing to run as root"),
    ("user = no-such-user-here\n", "user: no such user 'no-such-user-here'"),
    ("group = nogroup\n", "group is set but user is not"),
    ("user = root\n", "is root; set 'allow_root = yes'"),
    ("user = 4242\n", "is a bare uid: set 'group =' too"),
])
def test_root_without_privilege_drop_is_refused(tmp_path, extra, message):
    port = wsrtest.free_port()
    p = tmp_path / "w.ini"
    p.write_text(config(["127.0.0.1:%d" % port]).replace("allow_root = yes\n", extra))
    res = subprocess.run([wsrtest.daemon_binary(), "-c", str(p)], timeout=10,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    assert res.returncode == 1, res.stdout
    assert message.encode() in res.stdout, res.stdout
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_reload_cannot_change_identity(daemon_factory):
    """user/group/allow_root apply at start only: a reload that changes them says so
    (and applies the rest)."""
    d = daemon_factory(config(["127.0.0.1:{port}"]))
    text = open(d.conf_path).read()
    with open(d.conf_path, "w") as f:
        f.write(text.replace("allow_root = yes\n", "allow_root = yes\nuser = nobody\n"))
    d.send_signal(signal.SIGHUP)
    assert wsrtest.wait_until(lambda: "event=reloaded" in d.log_text(), 5.0), d.log_tail()
    assert "event=reload_partial keys=\"user group allow_root\"" in d.log_text()
    with open("/proc/%d/status" % d.pid) as f:
        assert re.search(r"^Uid:\s+%d\s" % os.geteuid(), f.read(), re.M)
    d.connect().echo(wsrtest.OP_TEXT, b"same identity")

