"""Packet loss and latency between client and daemon, in network namespaces
this test creates (root only): the daemon in one, clients in another, a veth
pair between them with addresses that exist only there. nftables drops a
share of the daemon's TCP segments both ways (this kernel has no netem); a
small asyncio relay in the client namespace adds latency. Checked: echo
sessions see no spurious close and get every message whole and in order;
a peer behind 100 % loss is freed within ping_period + timeout (+ a tick).
Namespaces are named after this process's PID and deleted in a finally.
"""

import json
import os
import shutil
import subprocess
import time

import pytest

import wsrtest

HERE = os.path.dirname(os.path.abspath(__file__))
PY = "/usr/bin/python3"          # Debian's, with the stdlib the client needs
SRV_IP, CLI_IP = "10.231.0.1", "10.231.0.2"
PING_S, TIMEOUT_S, CLOSE_S = 2.0, 4.0, 0.5
# The lossy echo sessions run with an idle timeout shaped like production's
# (default 60 s), not the dead-peer phase's 4 s: at 10 % loss both ways the
# kernel's exponential retransmission back-off (0.2, 0.4, 0.8, 1.6 s ...)
# now and then stalls a stream for more than 4 s, and a Ping queued behind
# the stalled bytes cannot be answered. Closing that peer after `timeout` is
# the option doing its job; it failed CI once (ASan run) as a "spurious"
# close. 30 s needs ~7 back-to-back drops of one segment.
LOSSY_TIMEOUT_S = 30.0
DELAY_MS = 20

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("nft") or not shutil.which("ip"),
    reason="needs root, nft (nftables) and ip (iproute2) to build network namespaces")


def sh(*args, check=True, timeout=20):
    return subprocess.run(list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, check=check, timeout=timeout)


class Netns:
    """Two namespaces joined by a veth pair; loss rules in the server's."""

    def __init__(self):
        tag = "%d" % os.getpid()
        self.srv, self.cli = "wsr-srv-" + tag, "wsr-cli-" + tag
        self.made = []

    def __enter__(self):
        for ns in (self.srv, self.cli):
            sh("ip", "netns", "add", ns)
            self.made.append(ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "link", "add", "wsrv%d" % os.getpid(), "netns", self.srv, "type", "veth",
           "peer", "name", "wcli%d" % os.getpid(), "netns", self.cli)
        for ns, dev, ip in ((self.srv, "wsrv%d" % os.getpid(), SRV_IP),
                            (self.cli, "wcli%d" % os.getpid(), CLI_IP)):
            sh("ip", "-n", ns, "addr", "add", ip + "/30", "dev", dev)
            sh("ip", "-n", ns, "link", "set", dev, "up")
        return self

    def __exit__(self, *exc):
        for ns in self.made:        # deleting a namespace removes its veth end too
            sh("ip", "netns", "del", ns, check=False)

    def loss(self, port, percent):
        """Drop `percent` % of the daemon's segments in each direction (0: none)."""
        sh("ip", "netns", "exec", self.srv, "nft", "delete", "table", "inet", "wsrloss", check=False)
        if percent == 0:
            return
        rule = ("tcp sport %d numgen random mod 100 < %d counter drop" % (port, percent)
                if percent < 100 else "tcp sport %d counter drop" % port)
        rule_in = rule.replace("sport", "dport")
        subprocess.run(["ip", "netns", "exec", self.srv, "nft", "-f", "-"], check=True, timeout=20,
                       universal_newlines=True, input="""table inet wsrloss {
  chain out { type filter hook output priority 0; policy accept; %s; }
  chain in { type filter hook input priority 0; policy accept; %s; }
}
""" % (rule, rule_in))

    def dropped(self):
        r = sh("ip", "netns", "exec", self.srv, "nft", "list", "table", "inet", "wsrloss", check=False)
        return sum(int(x.split()[1]) for x in r.stdout.split("counter")[1:] if x.split()[0] == "packets")

    def client(self, *args, timeout=90):
        return subprocess.run(["ip", "netns", "exec", self.cli, PY, os.path.join(HERE, "netloss_client.py")]
                              + [str(a) for a in args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              universal_newlines=True, timeout=timeout)


def start_daemon(daemon_factory, net, tmp_path, timeout_s):
    wrapper = tmp_path / "in-netns"
    wrapper.write_text("#!/bin/sh\nexec ip netns exec %s %s \"$@\"\n" % (net.srv, wsrtest.daemon_binary()))
    wrapper.chmod(0o755)
    # handshake_timeout well above the harness's 5 s: when a SYN or SYN-ACK
    # was lost, Linux falls back to a 3 s RTO for the data that follows, so
    # a request dropped twice more arrives ~9 s after the accept. Cutting it
    # is the daemon doing its job, not a spurious close; here it would only
    # make the test flaky (seen once in CI as a relay closed with 0 bytes).
    cfg = wsrtest.make_config(log_level="info", listen="%s:{port}" % SRV_IP,
                              ping_period="%ds" % PING_S, timeout="%ds" % timeout_s,
                              close_timeout="%dms" % (CLOSE_S * 1000),
                              handshake_timeout="30s")
    d = daemon_factory(cfg, ready=False, start=False)
    d.binary = str(wrapper)
    d.start()
    end = time.monotonic() + 10
    while time.monotonic() < end:   # ready when it listens inside its namespace
        r = sh("ip", "netns", "exec", net.srv, "ss", "-Hltn", "sport = :%d" % d.port, check=False)
        if r.stdout.strip():
            return d
        assert d.alive(), d.log_tail()
        time.sleep(0.1)
    raise AssertionError("daemon did not listen in %s" % net.srv)


def delay_proxy(net, port, listen_port, seconds):
    return subprocess.Popen(["ip", "netns", "exec", net.cli, PY, os.path.join(HERE, "delay_relay.py"),
                             str(listen_port), SRV_IP, str(port), str(DELAY_MS), str(seconds)],
                            stdout=subprocess.PIPE, universal_newlines=True)


def test_loss_and_latency(daemon_factory, tmp_path):
    with Netns() as net:
        d = start_daemon(daemon_factory, net, tmp_path, LOSSY_TIMEOUT_S)
        fds_idle = d.num_fds()
        figures = []
        for percent in (5, 10):
            net.loss(d.port, percent)
            relay = delay_proxy(net, d.port, 18500, 40)
            try:
                assert relay.stdout.readline().strip() == "listening"
                r = net.client("echo", "127.0.0.1", 18500, 4, 150)
            finally:
                relay.terminate()
                relay.wait(10)
            assert r.returncode == 0, r.stderr[-2000:]
            res = json.loads(r.stdout.strip().splitlines()[-1])
            drops = net.dropped()
            figures.append("%d %% loss + %d ms each way: %d sessions ok, %d messages, "
                           "rtt p50 %.0f ms p99 %.0f ms, %d segments dropped"
                           % (percent, DELAY_MS, res["ok"], res["messages"], res["rtt_p50"] * 1000,
                              res["rtt_p99"] * 1000, drops))
            assert not res["errors"], (res["errors"], d.log_tail())
            assert res["ok"] == 4 and res["messages"] == 4 * 150
            assert drops > 0, "the loss rule dropped nothing"
        net.loss(d.port, 0)

        # The sessions closed cleanly above; their descriptors go once the
        # lingering closes end (bounded by close_timeout, plus the relay's).
        assert wsrtest.wait_until(lambda: d.num_fds() == fds_idle, 10), \
            "daemon holds %d descriptors, %d with no client" % (d.num_fds(), fds_idle)
        assert d.alive()
        d.stop()

        # A peer that vanishes: everything it sends or is sent is dropped.
        # A daemon of its own with the short timeout, so the test is quick.
        d = start_daemon(daemon_factory, net, tmp_path, TIMEOUT_S)
        fds_before = d.num_fds()
        idle = subprocess.Popen(["ip", "netns", "exec", net.cli, PY, os.path.join(HERE, "netloss_client.py"),
                                 "idle", SRV_IP, str(d.port), "30"],
                                stdout=subprocess.PIPE, universal_newlines=True)
        try:
            assert idle.stdout.readline().strip() == "up"
            time.sleep(PING_S * 1.5)         # it answers a ping or two
            assert d.num_fds() == fds_before + 1
            net.loss(d.port, 100)
            t0 = time.monotonic()
            end = t0 + PING_S + TIMEOUT_S + 5
            while d.num_fds() > fds_before and time.monotonic() < end:
                time.sleep(0.05)
            freed = time.monotonic() - t0
        finally:
            idle.kill()
            idle.wait(10)
        figures.append("100 %% loss: peer freed %.2f s after the cut (ping_period %gs + timeout %gs)"
                       % (freed, PING_S, TIMEOUT_S))
        print("\n".join(figures))
        assert d.num_fds() == fds_before, "peer behind 100 % loss not freed within %.1f s" % freed
        # Detection is at last receive + timeout (≤ cut + timeout), then the
        # close frame lingers close_timeout: within ping_period + timeout when
        # close_timeout ≤ ping_period, plus a tick.
        assert freed <= PING_S + TIMEOUT_S + 0.5, "freed after %.2f s" % freed
        assert "idle_timeout" in d.log_text()
        assert d.alive()
