"""workers = N: worker threads with their own loops. Connections are spread
over them, limits count across them, broadcast reaches every worker in
per-sender order, and reload and SIGTERM reach every worker."""

import os
import re
import signal
import socket
import time

import pytest

import wsrtest
from wsrtest import OP_TEXT, WSClient, run_daemon
from test_systemd import Activated, needs_sa
from test_exec import children, wait_for
from test_plugins import PLUGIN_DIR

WORKERS = 2


def wconfig(server_extra="", more="", workers=WORKERS):
    return wsrtest.make_config(server_extra="workers = %s\n%s" % (workers, server_extra),
                               more=more)


class Notify:
    """The service manager's end of sd_notify, enough to read STATUS=."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self.sock.bind(path)

    def wait_status(self, pred, timeout, what):
        """The next STATUS= with pred(status) true; fails after timeout seconds."""
        end = time.monotonic() + timeout
        last = None
        while True:
            left = end - time.monotonic()
            assert left > 0, "no STATUS= with %s within %.1fs; last: %r" % (what, timeout, last)
            self.sock.settimeout(min(left, 1.0))
            try:
                msg = self.sock.recv(4096).decode()
            except socket.timeout:
                continue
            for line in msg.splitlines():
                if line.startswith("STATUS="):
                    last = line[7:]
                    if pred(last):
                        return last

    def close(self):
        self.sock.close()


@pytest.fixture
def notify(tmp_path, monkeypatch):
    n = Notify(str(tmp_path / "notify.sock"))
    # The harness passes its environment to the daemon.
    monkeypatch.setenv("NOTIFY_SOCKET", n.path)
    yield n
    n.close()


def per_worker(status):
    m = re.search(r"workers ([0-9+]+)", status)
    assert m, "STATUS= names no per-worker counts: %r" % status
    return [int(x) for x in m.group(1).split("+")]


def thread_names(pid):
    return [thread_name(pid, int(tid)) for tid in os.listdir("/proc/%d/task" % pid)]


def connect_once_freed(d, path, why, seconds=5.0):
    """Upgrades once a limit frees a place (the daemon answers 503 until
    then); retries every 50 ms, at most `seconds`."""
    end = time.monotonic() + seconds
    while True:
        c = WSClient.connect(("127.0.0.1", d.port), path, expect=None)
        if c.status == 101:
            return c
        c.close_socket()
        assert time.monotonic() < end, why
        time.sleep(0.05)


def test_config_values():
    """0 and garbage are file:line errors; auto is kept as auto; plugins need 1."""
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "w.ini")
        for bad in ("0", "65", "two", "-1", "2x"):
            with open(path, "w") as f:
                f.write("[server]\nlisten = 127.0.0.1:1\nworkers = %s\n"
                        "[route /e]\nhandler = echo\n" % bad)
            r = run_daemon(["-t", "-c", path])
            assert r.returncode == 1, bad
            assert "%s:3: workers: expected an integer 1..64 or auto, got '%s'" % (path, bad) \
                in r.stderr.decode(), r.stderr
        with open(path, "w") as f:
            f.write("[server]\nlisten = 127.0.0.1:1\nworkers = auto\n"
                    "[route /e]\nhandler = echo\n")
        r = run_daemon(["-T", "-c", path])
        assert r.returncode == 0, r.stderr
        assert re.search(r"^workers = auto\b", r.stdout.decode(), re.M), r.stdout
        # Only a plugin that declares WSR_HANDLER_PER_LOOP runs with workers;
        # the refusal is the loader's (the flag is known after dlopen).
        with open(path, "w") as f:
            f.write("[server]\nlisten = 127.0.0.1:1\nworkers = 2\nplugin_dir = %s\n"
                    "[route /p]\nhandler = plugin:chat\n" % PLUGIN_DIR)
        r = run_daemon(["-t", "-c", path])
        assert r.returncode == 1
        assert "%s:5: [route /p]: handler 'plugin:chat' needs workers = 1 (it does not " \
            "declare WSR_HANDLER_PER_LOOP), but 2 workers are configured" % path \
            in r.stderr.decode(), r.stderr
        with open(path, "w") as f:
            f.write("[server]\nlisten = 127.0.0.1:1\nworkers = 2\nplugin_dir = %s\n"
                    "[route /p]\nhandler = plugin:uppercase\n" % PLUGIN_DIR)
        r = run_daemon(["-t", "-c", path])
        assert r.returncode == 0, r.stderr
        # exec reaps per loop (pidfds), so it runs with workers.
        with open(path, "w") as f:
            f.write("[server]\nlisten = 127.0.0.1:1\nworkers = 2\n"
                    "[route /x]\nhandler = exec\ncommand = cat\n")
        r = run_daemon(["-t", "-c", path])
        assert r.returncode == 0, r.stderr


def test_echo_spread_over_threads(daemon_factory, notify):
    d = daemon_factory(wconfig())
    end = time.monotonic() + 5.0
    while True:  # each thread names itself when it starts
        names = thread_names(d.pid)
        if sorted(n for n in names if n.startswith("wsr-w")) == ["wsr-w1", "wsr-w2"]:
            break
        assert time.monotonic() < end, names
        time.sleep(0.05)
    clients = [d.connect() for _ in range(20)]
    for i, c in enumerate(clients):
        c.echo(OP_TEXT, b"hello %d" % i)
    status = notify.wait_status(lambda s: "serving 20 connection" in s, 5.0, "20 connections")
    counts = per_worker(status)
    # Fewest-connections dispatch: 20 connections, 2 workers, 10 each.
    assert counts == [10, 10], status
    for c in clients[:6]:
        c.send_close(1000)
        c.read_close()
        c.close_socket()
    notify.wait_status(lambda s: "serving 14 connection" in s, 5.0, "14 connections")
    # New connections fill up whichever worker lost more.
    more = [d.connect() for _ in range(6)]
    status = notify.wait_status(lambda s: "serving 20 connection" in s, 5.0, "20 again")
    assert per_worker(status) == [10, 10], status
    for c in clients[6:] + more:
        c.echo(OP_TEXT, b"x")


def read_messages(c, n, timeout):
    got = []
    end = time.monotonic() + timeout
    while len(got) < n:
        left = end - time.monotonic()
        assert left > 0, "got %d of %d messages" % (len(got), n)
        op, data, _ = c.read_message(timeout=left)
        assert op == OP_TEXT
        got.append(data)
    return got


def test_broadcast_across_workers(daemon_factory, notify):
    """Every receiver, on either worker, gets every message of every sender, each
    sender's in order."""
    d = daemon_factory(wconfig(more="[route /bc]\nhandler = broadcast\n"))
    n_clients, n_msgs = 8, 150
    clients = [d.connect("/bc") for _ in range(n_clients)]
    status = notify.wait_status(lambda s: "serving 8 connection" in s, 5.0, "8 connections")
    assert per_worker(status) == [4, 4], status
    senders = clients[:3]
    # Interleave the senders so that workers send concurrently.
    for i in range(n_msgs):
        for k, s in enumerate(senders):
            s.send_text("s%d m%04d" % (k, i))
    for c in clients:
        got = read_messages(c, n_msgs * len(senders), 20.0)
        for k in range(len(senders)):
            mine = [m for m in got if m.startswith(b"s%d " % k)]
            assert mine == [b"s%d m%04d" % (k, i) for i in range(n_msgs)], \
                "sender %d's messages out of order or missing" % k


def test_broadcast_rooms_across_workers(daemon_factory):
    d = daemon_factory(wconfig(more="[route /bc]\nhandler = broadcast\nroom_param = room\n"))
    a = [d.connect("/bc?room=a") for _ in range(3)]
    b = [d.connect("/bc?room=b") for _ in range(3)]
    a[0].send_text("to a")
    b[1].send_text("to b")
    for c in a:
        assert c.read_message()[:2] == (OP_TEXT, b"to a")
    for c in b:
        assert c.read_message()[:2] == (OP_TEXT, b"to b")
    for c in a + b:
        c.sock.settimeout(0.3)
        with pytest.raises(socket.timeout):
            c.sock.recv(1)


def test_reload_reaches_every_worker(daemon_factory, notify):
    d = daemon_factory(wconfig())
    old = [d.connect() for _ in range(4)]
    status = notify.wait_status(lambda s: "serving 4 connection" in s, 5.0, "4 connections")
    assert per_worker(status) == [2, 2], status
    # A broken config changes nothing anywhere.
    with open(d.conf_path) as f:
        good = f.read()
    with open(d.conf_path, "w") as f:
        f.write(good + "[route /new]\nhandler = nosuch\n")
    d.send_signal(signal.SIGHUP)
    notify.wait_status(lambda s: "reload failed" in s, 5.0, "the failed reload")
    for _ in range(2):
        d.connect("/new", expect=404).close_socket()
    with open(d.conf_path, "w") as f:
        f.write(good + "[route /new]\nhandler = echo\n")
    d.send_signal(signal.SIGHUP)
    notify.wait_status(lambda s: "2 route(s)" in s and "reload failed" not in s, 5.0,
                       "the new routes")
    new = [d.connect("/new") for _ in range(4)]
    status = notify.wait_status(lambda s: "serving 8 connection" in s, 5.0, "8 connections")
    assert per_worker(status) == [4, 4], status
    for c in old + new:
        c.echo(OP_TEXT, b"still")


def test_reload_cannot_bring_a_one_loop_handler(daemon_factory, notify):
    """Worker threads keep running until a restart, so a reload that sets
    workers = 1 and adds a plugin route without WSR_HANDLER_PER_LOOP is
    refused as a whole."""
    d = daemon_factory(wconfig())
    c = d.connect()
    with open(d.conf_path) as f:
        good = f.read()
    with open(d.conf_path, "w") as f:
        f.write(good.replace("workers = 2", "workers = 1\nplugin_dir = %s" % PLUGIN_DIR) +
                "[route /p]\nhandler = plugin:chat\n")
    d.send_signal(signal.SIGHUP)
    status = notify.wait_status(lambda s: "reload failed" in s, 5.0, "the failed reload")
    # STATUS= carries the cause's start (its path is long), the log all of it.
    assert "[route /p]: handler 'plugin:chat' needs workers = 1 (it does not declare " \
        "WSR_HANDLER_PER_LOOP)" in status, status
    assert "[route /p]: handler 'plugin:chat' needs workers = 1 (it does not declare " \
        "WSR_HANDLER_PER_LOOP), but 2 workers run until a restart" in d.log_text(), d.log_tail()
    d.connect("/p", expect=404).close_socket()
    c.echo(OP_TEXT, b"unchanged")


def exec_config(extra=""):
    return wconfig() + "[route /x]\nhandler = exec\n" + extra


def test_exec_spread_over_workers_reaps_every_child(daemon_factory, notify):
    """40 `cat` children over 2 workers echo; after close none is left, not
    even a zombie (each is reaped on its own worker's loop)."""
    d = daemon_factory(exec_config("command = cat\n"))
    clients = [d.connect("/x") for _ in range(40)]
    status = notify.wait_status(lambda s: "serving 40 connection" in s, 5.0, "40 connections")
    assert per_worker(status) == [20, 20], status
    for i, c in enumerate(clients):
        c.send_text("line %d" % i)
    for i, c in enumerate(clients):
        assert c.read_message()[:2] == (OP_TEXT, b"line %d" % i)
    assert len(children(d.pid)) == 40, children(d.pid)
    for c in clients:
        c.send_close(1000)
    for c in clients:
        c.expect_close(1000)
    assert wait_for(lambda: children(d.pid) == [], 10.0), children(d.pid)
    assert "process_reap_failed" not in d.log_text()


def test_exec_max_processes_across_workers(daemon_factory, notify):
    """max_processes counts the children of every worker: 503 beyond it on
    either worker, and a slot freed on one is usable again."""
    d = daemon_factory(exec_config("command = cat\nmax_processes = 6\n"))
    clients = [d.connect("/x") for _ in range(6)]
    status = notify.wait_status(lambda s: "serving 6 connection" in s, 5.0, "6 connections")
    assert per_worker(status) == [3, 3], status
    for c in clients:
        c.echo(OP_TEXT, b"up")
    # Refused on whichever worker the dispatch picks: the count is shared.
    for _ in range(2):
        WSClient.connect(("127.0.0.1", d.port), "/x", expect=503).close_socket()
    clients[0].send_close(1000)
    clients[0].expect_close(1000)
    c = connect_once_freed(d, "/x", "the slot was never released (child not reaped)")
    c.echo(OP_TEXT, b"again")
    assert d.log_text().count("event=exec_full") >= 2


def test_exec_sigterm_with_running_children(daemon_factory, notify):
    """SIGTERM with children that ignore SIGTERM on both workers: each worker
    kills and reaps its own when it stops, and the daemon exits 0."""
    # cat echoes; at stdin EOF (the connection closed) sleep carries on, still
    # ignoring SIGTERM, so only the stop's SIGKILL can end it.
    d = daemon_factory(exec_config("shell = yes\ncommand = trap '' TERM; cat; exec sleep 60\n"
                                   "kill_grace = 60000ms\n"))
    clients = [d.connect("/x") for _ in range(6)]
    for c in clients:
        c.echo(OP_TEXT, b"running")
    status = notify.wait_status(lambda s: "serving 6 connection" in s, 5.0, "6 connections")
    assert per_worker(status) == [3, 3], status
    pids = [pid for pid, _ in children(d.pid)]
    assert len(pids) == 6, pids
    d.send_signal(signal.SIGTERM)
    for c in clients:
        c.expect_close(1001)
    assert d.wait(10.0) == 0, d.log_tail()
    # They ignored SIGTERM and had a minute's grace: only the workers' stop killed them.
    log = d.log_text()
    for p in pids:
        assert "event=process_kill pid=%d signal=KILL reason=stopping" % p in log, log
    assert wait_for(lambda: not any(os.path.exists("/proc/%d" % p) for p in pids), 5.0), pids


def test_sigterm_drains_every_worker(daemon_factory, notify):
    d = daemon_factory(wconfig())
    clients = [d.connect() for _ in range(6)]
    status = notify.wait_status(lambda s: "serving 6 connection" in s, 5.0, "6 connections")
    assert per_worker(status) == [3, 3], status
    d.send_signal(signal.SIGTERM)
    for c in clients:
        c.expect_close(1001)
    assert d.wait(5.0) == 0, d.log_tail()
    assert "event=stopped open=0" in d.log_text()


def test_max_connections_counted_across_workers(daemon_factory, notify):
    d = daemon_factory(wconfig("max_connections = 4\n"))
    clients = [d.connect() for _ in range(4)]
    status = notify.wait_status(lambda s: "serving 4 connection" in s, 5.0, "4 connections")
    assert per_worker(status) == [2, 2], status
    for _ in range(3):
        WSClient.connect(("127.0.0.1", d.port), expect=503).close_socket()
    clients[0].send_close(1000)
    clients[0].read_close()
    clients[0].close_socket()
    # The refused ones linger briefly; then there is room for one again.
    notify.wait_status(lambda s: "serving 3 connection" in s, 5.0, "3 connections")
    c = d.connect()
    c.echo(OP_TEXT, b"in")
    WSClient.connect(("127.0.0.1", d.port), expect=503).close_socket()


def test_max_connections_per_ip_across_workers(daemon_factory):
    d = daemon_factory(wconfig("max_connections_per_ip = 3\n"))
    clients = [d.connect() for _ in range(3)]
    for _ in range(2):
        WSClient.connect(("127.0.0.1", d.port), expect=503).close_socket()
    clients[0].send_close(1000)
    clients[0].read_close()
    clients[0].close_socket()
    c = connect_once_freed(d, "/echo", "the count was never released")
    c.echo(OP_TEXT, b"ok")


@needs_sa
def test_socket_activation_with_workers(tmp_path):
    """Sockets passed by systemd stay on the main loop; their connections are
    handed to the workers like any other."""
    notify = Notify(str(tmp_path / "sa-notify.sock"))
    cfg = wsrtest.root_opt_in(wsrtest.make_config(listen="systemd",
                                                  server_extra="workers = 2\n"))
    a = Activated(tmp_path, cfg, env={"NOTIFY_SOCKET": notify.path})
    try:
        a.first.close()
        a.first = None
        clients = [a.connect() for _ in range(4)]
        for c in clients:
            c.echo(OP_TEXT, b"passed")
        status = notify.wait_status(lambda s: "serving 4 connection" in s, 5.0,
                                    "4 connections")
        assert per_worker(status) == [2, 2], status
        assert "event=workers_started count=2" in a.log_text()
    finally:
        rc = a.stop()
        notify.close()
    assert rc == 0, a.log_text()


def test_exec_child_in_grace_outlives_a_reload(daemon_factory, notify):
    """A reload dropping the exec route destroys it (on whichever thread drops
    the table last) while a child is in its grace period on a worker: the
    child keeps the route alive, is SIGKILLed by its own worker's timer and
    reaped there."""
    d = daemon_factory(exec_config("shell = yes\ncommand = trap '' TERM; cat; exec sleep 60\n"
                                   "kill_grace = 2000ms\n"))
    c = d.connect("/x")
    c.echo(OP_TEXT, b"running")
    pids = [pid for pid, _ in children(d.pid)]
    assert len(pids) == 1, pids
    c.send_close(1000)
    c.read_close()
    c.close_socket()
    with open(d.conf_path) as f:
        text = f.read()
    with open(d.conf_path, "w") as f:
        f.write(text[:text.index("[route /x]")])
    d.send_signal(signal.SIGHUP)
    notify.wait_status(lambda s: "1 route(s)" in s and "reload failed" not in s, 5.0,
                       "the route gone")
    assert children(d.pid) != [], "killed before its grace period ended"
    assert wait_for(lambda: children(d.pid) == [], 5.0), children(d.pid)
    assert "event=process_kill pid=%d signal=KILL\n" % pids[0] in d.log_text()
    d.connect().echo(OP_TEXT, b"still serving")


# --------------------------------------------------- per-loop plugin instances

TEST_PLUGIN_DIR = wsrtest.TEST_PLUGIN_DIR


def perloop_daemon(daemon_factory, variant="plain", extra=""):
    """workers = 2 with the perloop test plugin on /p (tests/plugins/perloop.c);
    variant "tsan": daemon and plugin under ThreadSanitizer."""
    cfg = wconfig(server_extra="plugin_dir = %s\n" % wsrtest.test_plugin_dir(variant),
                  more="[route /p]\nhandler = plugin:perloop\n" + extra)
    return wsrtest.start_variant(daemon_factory, cfg, variant)


def perloop_events(d, event):
    """{instance: [tid, ...]} of the plugin's `event=perloop_EVENT` lines."""
    got = {}
    for m in re.finditer(r"event=perloop_%s instance=(\d+) tid=(\d+)" % event, d.log_text()):
        got.setdefault(int(m.group(1)), []).append(int(m.group(2)))
    return got


def wait_events(d, event, pred, what, timeout=5.0):
    end = time.monotonic() + timeout
    while True:
        got = perloop_events(d, event)
        if pred(got):
            return got
        assert time.monotonic() < end, "%s: %r\n%s" % (what, got, d.log_tail())
        time.sleep(0.05)


def thread_name(pid, tid):
    with open("/proc/%d/task/%d/comm" % (pid, tid)) as f:
        return f.read().strip()


def instance_of(c):
    c.send_text("which")
    op, data, _ = c.read_message(5.0)
    m = re.fullmatch(rb"instance (\d+)", data)
    assert op == OP_TEXT and m, data
    return int(m.group(1))


@pytest.mark.parametrize("variant", ["plain", "tsan"])
def test_plugin_instance_per_worker(daemon_factory, notify, variant):
    """A WSR_HANDLER_PER_LOOP plugin: create() once per worker, its timer and
    its connections on that worker's thread only, handles across workers,
    destroy() on the instance's own thread."""
    d = perloop_daemon(daemon_factory, variant)
    created = perloop_events(d, "create")
    assert sorted(created) == [1, 2], d.log_tail()
    # Made on the main thread, before the workers run them.
    assert all(t == [d.pid] for t in created.values()), created
    timers = wait_events(d, "timer", lambda g: sorted(g) == [1, 2], "both create() timers")
    ttid = {k: v[0] for k, v in timers.items()}
    assert ttid[1] != ttid[2], timers
    assert sorted(thread_name(d.pid, t) for t in ttid.values()) == ["wsr-w1", "wsr-w2"]
    clients = [d.connect("/p") for _ in range(10)]
    inst = [instance_of(c) for c in clients]
    status = notify.wait_status(lambda s: "serving 10 connection" in s, 5.0, "10 connections")
    assert per_worker(status) == [5, 5], status
    assert sorted(inst) == [1] * 5 + [2] * 5, inst
    opens = perloop_events(d, "open")
    for k in (1, 2):
        assert len(opens[k]) == 5 and set(opens[k]) == {ttid[k]}, (k, opens, ttid)
    # From each worker's thread through handles to every connection, both workers.
    for k in (1, 2):
        clients[inst.index(k)].send_text("all:from %d" % k)
        for c in clients:
            op, data, _ = c.read_message(5.0)
            assert (op, data) == (OP_TEXT, b"%d:from %d" % (k, k))
    for c in clients:
        c.send_close(1000)
        c.read_close()
        c.close_socket()
    rc, killed = d.stop(signal.SIGTERM, 20.0)
    assert not killed and rc == 0, d.log_tail()
    destroyed = perloop_events(d, "destroy")
    assert {k: v for k, v in destroyed.items()} == {1: [ttid[1]], 2: [ttid[2]]}, destroyed


def test_plugin_reload_replaces_instances_per_worker(daemon_factory, notify):
    """A reload makes a new instance per worker; each old one is destroyed on
    its own worker once that worker's last connection using it is gone."""
    d = perloop_daemon(daemon_factory)
    ttid = {k: v[0] for k, v in wait_events(d, "timer", lambda g: sorted(g) == [1, 2],
                                             "the first timers").items()}
    old = [d.connect("/p") for _ in range(4)]
    assert sorted(instance_of(c) for c in old) == [1, 1, 2, 2]
    with open(d.conf_path, "a") as f:
        f.write("; reloaded\n")
    d.send_signal(signal.SIGHUP)
    timers = wait_events(d, "timer", lambda g: sorted(g) == [1, 2, 3, 4], "the new timers")
    for k in (3, 4):
        ttid[k] = timers[k][0]
    assert {ttid[3], ttid[4]} == {ttid[1], ttid[2]}, ttid
    new = [d.connect("/p") for _ in range(4)]
    assert sorted(instance_of(c) for c in new) == [3, 3, 4, 4]
    # The old instances still serve their connections.
    assert sorted(instance_of(c) for c in old) == [1, 1, 2, 2]
    assert perloop_events(d, "destroy") == {}
    for c in old:
        c.send_close(1000)
        c.read_close()
        c.close_socket()
    destroyed = wait_events(d, "destroy", lambda g: sorted(g) == [1, 2], "old instances gone")
    assert destroyed == {1: [ttid[1]], 2: [ttid[2]]}, (destroyed, ttid)
    for c in new:
        assert instance_of(c) in (3, 4)
    rc, killed = d.stop(signal.SIGTERM, 20.0)
    assert not killed and rc == 0, d.log_tail()  # ASan: LeakSanitizer would fail the exit
    destroyed = perloop_events(d, "destroy")
    assert sorted(destroyed) == [1, 2, 3, 4] and all(len(v) == 1 for v in destroyed.values())
    assert destroyed[3] == [ttid[3]] and destroyed[4] == [ttid[4]], (destroyed, ttid)


def test_plugin_without_flag_refused_at_start(tmp_path):
    """-t and a start both refuse a plugin that does not declare the flag
    (here one built for ABI 1, which has no flags at all), with file:line."""
    path = str(tmp_path / "w.ini")
    with open(path, "w") as f:
        f.write("[server]\nlisten = 127.0.0.1:%d\nworkers = 2\nallow_root = yes\n"
                "plugin_dir = %s\n[route /a]\nhandler = plugin:abi1\n"
                % (wsrtest.free_port(), TEST_PLUGIN_DIR))
    want = "%s:6: [route /a]: handler 'plugin:abi1' needs workers = 1 (it does not " \
           "declare WSR_HANDLER_PER_LOOP), but 2 workers are configured" % path
    for args in (["-t", "-c", path], ["-c", path]):
        r = run_daemon(args)
        assert r.returncode == 1, (args, r.stderr)
        assert want in r.stderr.decode(), r.stderr


def test_abi1_plugin_loads_with_one_worker(daemon_factory):
    cfg = wconfig(workers=1, server_extra="plugin_dir = %s\n" % TEST_PLUGIN_DIR,
                  more="[route /a]\nhandler = plugin:abi1\n")
    d = daemon_factory(cfg)
    c = d.connect("/a")
    c.send_text("hi")
    assert c.read_message(5.0)[:2] == (OP_TEXT, b"abi1:hi")


def test_plugin_create_failure_undoes_every_instance(tmp_path):
    """create() failing for the second worker's instance: a config error at
    the option's line, and the first instance is destroyed."""
    path = str(tmp_path / "w.ini")
    with open(path, "w") as f:
        f.write("[server]\nlisten = 127.0.0.1:1\nworkers = 2\nplugin_dir = %s\n"
                "[route /p]\nhandler = plugin:perloop\nfail_after = 1\n" % TEST_PLUGIN_DIR)
    r = run_daemon(["-t", "-c", path])
    err = r.stderr.decode()
    assert r.returncode == 1, err
    assert "%s:7: handler 'plugin:perloop': fail_after: 1 instances made already" % path \
        in err, err
    assert "event=perloop_create instance=1" in err, err
    assert "event=perloop_destroy instance=1" in err, err
    assert "instance=2" not in err, err
