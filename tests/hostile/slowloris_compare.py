#!/usr/bin/python3
"""Slowloris comparison for the note (not a make check test): the attack of
tests/integration/test_hostile_full.py (4,000 trickling handshakes + 1,000
slow readers, a WebSocket probe every 250 ms) against

  wsrouted       alone, handshake_timeout = 5s
  nginx 1.22     in front of wsrouted, client_header_timeout 5s
  HAProxy 2.6    in front of wsrouted, timeout http-request 5s

so the probe (handshake + echo) is the same everywhere and only the front
end under attack changes. Needs nginx and haproxy installed (Debian
packages; no service is started, the script runs its own instances on
ephemeral loopback ports and stops them by PID).

usage: tests/hostile/slowloris_compare.py BUILD_DIR [SECONDS] [wsrouted nginx haproxy]
"""

import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

import wsrtest  # noqa: E402
import test_hostile_full as hf  # noqa: E402

DEADLINE_S = 5.0
N_SLOW, N_READERS = 4000, 1000


def wait_port(port, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            wsrtest.open_socket(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("nothing listens on %d" % port)


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def start_nginx(tmp, port, upstream):
    os.chmod(tmp, 0o755)        # nginx workers (www-data) traverse the prefix
    os.makedirs(os.path.join(tmp, "logs"), exist_ok=True)
    conf = os.path.join(tmp, "nginx.conf")
    with open(conf, "w") as f:
        f.write("""worker_processes 1;
worker_rlimit_nofile 20000;
pid %(tmp)s/logs/nginx.pid;
error_log %(tmp)s/logs/error.log warn;
events { worker_connections 16384; }
http {
  access_log off;
  client_header_timeout 5s;
  server {
    listen 127.0.0.1:%(port)d;
    location / {
      proxy_pass http://127.0.0.1:%(up)d;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection "upgrade";
      proxy_read_timeout 1h;
    }
  }
}
""" % {"tmp": tmp, "port": port, "up": upstream})
    return subprocess.Popen(["nginx", "-p", tmp, "-c", conf, "-g", "daemon off;"])


def start_haproxy(tmp, port, upstream):
    conf = os.path.join(tmp, "haproxy.cfg")
    with open(conf, "w") as f:
        f.write("""global
  maxconn 9000
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  timeout tunnel 1h
  timeout http-request 5s
frontend fe
  bind 127.0.0.1:%d
  default_backend be
backend be
  server ws 127.0.0.1:%d
""" % (port, upstream))
    return subprocess.Popen(["haproxy", "-db", "-f", conf])


def main():
    build = os.path.abspath(sys.argv[1])
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 15.0
    which = sys.argv[3:] or ["wsrouted", "nginx", "haproxy"]
    os.environ["WSROUTED_BIN"] = os.path.join(build, "daemon", "wsrouted")
    wsrtest.raise_nofile(20000)
    rows = []
    for front in which:
        tmp = tempfile.mkdtemp(prefix="slowloris-")
        procs = []
        d = wsrtest.Daemon(tmp, wsrtest.make_config(
            log_level="warn", handshake_timeout="5s", server_extra="max_output_buffer = 64KiB"))
        try:
            d.start()
            port = d.port
            if front != "wsrouted":
                port = wsrtest.free_port()
                start = start_nginx if front == "nginx" else start_haproxy
                procs.append(start(tmp, port, d.port))
                wait_port(port)
            results, cuts, opened = hf.run_slowloris(("127.0.0.1", port), N_SLOW, N_READERS,
                                                     seconds, DEADLINE_S)
        finally:
            for p in procs:
                stop(p)
            d.stop()
            shutil.rmtree(tmp, ignore_errors=True)
        ok = [t for good, t in results if good]
        cut_s = [t for _, t in cuts]
        rows.append((front, len(ok), len(results),
                     statistics.median(ok) * 1000 if ok else float("nan"),
                     hf.pctl(ok, 0.99) * 1000 if ok else float("nan"),
                     max(ok) * 1000 if ok else float("nan"), opened, len(cuts),
                     min(cut_s) if cut_s else float("nan"), max(cut_s) if cut_s else float("nan")))
    print("front     probes ok/all   p50 ms   p99 ms   max ms   slow opened/cut   cut after open")
    for r in rows:
        print("%-9s %5d/%-7d %8.1f %8.1f %8.1f   %6d/%-6d     %.2f..%.2f s" % r)


if __name__ == "__main__":
    main()
