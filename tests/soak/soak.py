#!/usr/bin/python3
"""make soak (not in CI): the daemon holds 5,000 WebSocket connections
carrying 1,000 echoed messages per second for SOAK_SECONDS (default 7,200);
its RSS and open descriptors are sampled every 10 s. Fails on any echo
error or closed connection, on RSS drift above 5 % after the warm-up
(the first 10 % of the run, at least 60 s), or on any change in the number
of descriptors. wsload has no fixed-rate mode, hence this driver: one
process, epoll, every echo checked (payload carries connection and
sequence number).

usage: SOAK_SECONDS=600 tests/soak/soak.py BUILD_DIR
Environment: SOAK_SECONDS, SOAK_CONNS (5000), SOAK_RATE (1000 msg/s), SOAK_PING
(the daemon's ping_period, 20s; 0 turns keepalive off).
"""

import os
import selectors
import struct
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

import wsrtest  # noqa: E402
from wsrtest import OP_BINARY  # noqa: E402

SAMPLE_S = 10.0
MAX_DRIFT = 0.05


class Conn:
    def __init__(self, idx, c):
        self.idx = idx
        self.c = c
        self.sent = 0
        self.got = 0
        self.out = bytearray()


def payload(idx, seq):
    return struct.pack(">II", idx, seq) + b"s" * 56


def main():
    build = os.path.abspath(sys.argv[1])
    seconds = float(os.environ.get("SOAK_SECONDS", "7200"))
    n_conns = int(os.environ.get("SOAK_CONNS", "5000"))
    rate = float(os.environ.get("SOAK_RATE", "1000"))
    warmup = max(60.0, seconds * 0.10)
    os.environ["WSROUTED_BIN"] = os.path.join(build, "daemon", "wsrouted")
    have = wsrtest.raise_nofile(20000)
    if have < n_conns + 200:
        sys.exit("soak: needs %d descriptors, RLIMIT_NOFILE is %d" % (n_conns + 200, have))
    tmp = tempfile.mkdtemp(prefix="wsrouted-soak-")
    # Pings on, so keepalive traffic runs through the soak too.
    d = wsrtest.Daemon(tmp, wsrtest.make_config(log_level="warn", ping_period=os.environ.get("SOAK_PING", "20s"),
                                                timeout="60s"))
    d.start()
    sel = selectors.EpollSelector()
    conns = []
    errors = []
    samples = []        # (t, rss_kb, fds)
    try:
        for i in range(n_conns):
            c = wsrtest.WSClient.connect(("127.0.0.1", d.port), timeout=10.0)
            c.sock.setblocking(False)
            conns.append(Conn(i, c))
            sel.register(c.sock, selectors.EVENT_READ, conns[-1])
        t0 = time.monotonic()
        end = t0 + seconds
        next_sample = t0
        sent_total = got_total = 0
        rr = 0
        while time.monotonic() < end and not errors:
            now = time.monotonic()
            if now >= next_sample:
                samples.append((now - t0, d.rss_kb(), d.num_fds()))
                print("soak: t=%5.0f s rss=%d KiB fds=%d sent=%d echoed=%d"
                      % (samples[-1] + (sent_total, got_total)), flush=True)
                next_sample += SAMPLE_S
            # Messages due by now at `rate`, spread round-robin.
            due = int((now - t0) * rate) - sent_total
            for _ in range(min(due, n_conns)):
                k = conns[rr]
                rr = (rr + 1) % n_conns
                k.out += wsrtest.build_frame(OP_BINARY, payload(k.idx, k.sent))
                k.sent += 1
                sent_total += 1
                try:
                    n = k.c.sock.send(k.out)
                    del k.out[:n]
                except BlockingIOError:
                    pass
                if k.out:
                    errors.append("conn %d: could not send %d bytes at once" % (k.idx, len(k.out)))
            for key, _ in sel.select(timeout=0.005):
                k = key.data
                try:
                    data = k.c.sock.recv(65536)
                except BlockingIOError:
                    continue
                except OSError as e:
                    errors.append("conn %d: %r" % (k.idx, e))
                    continue
                if not data:
                    errors.append("conn %d closed by the daemon" % k.idx)
                    continue
                k.c.buf += data
                while True:
                    f = parse_frame(k.c.buf)
                    if f is None:
                        break
                    op, body = f
                    if op == 0x9:           # ping: answer
                        k.c.sock.setblocking(True)
                        k.c.send_frame(0xA, body)
                        k.c.sock.setblocking(False)
                        continue
                    if op != OP_BINARY or body != payload(k.idx, k.got):
                        errors.append("conn %d: echo %d wrong (op %#x, %d bytes)"
                                      % (k.idx, k.got, op, len(body)))
                        break
                    k.got += 1
                    got_total += 1
        samples.append((time.monotonic() - t0, d.rss_kb(), d.num_fds()))
    finally:
        sel.close()
        for k in conns:
            k.c.close_socket()
        d.stop()
    after = [s for s in samples if s[0] >= warmup]
    print("soak: %d connections, %.0f msg/s for %.0f s: sent %d, echoed %d, %d errors"
          % (n_conns, rate, seconds, sent_total, got_total, len(errors)))
    for e in errors[:10]:
        print("soak: error: " + e)
    ok = not errors
    if len(after) >= 2:
        base = after[0][1]
        top = max(s[1] for s in after)
        drift = (top - base) / base
        fds = {s[2] for s in samples}
        print("soak: RSS after warm-up (%.0f s): %d KiB, max %d KiB, end %d KiB: drift %+.2f %% "
              "(limit %.0f %%); fds %s" % (warmup, base, top, after[-1][1], drift * 100,
                                          MAX_DRIFT * 100, sorted(fds)))
        if drift > MAX_DRIFT:
            ok = False
        if len(fds) != 1:
            ok = False
    else:
        print("soak: run too short for a drift figure (warm-up %.0f s)" % warmup)
        ok = False
    print("soak: %s" % ("PASS" if ok else "FAIL"))
    return 0 if ok else 1


def parse_frame(buf):
    """One unmasked server frame off the front of buf, or None if incomplete."""
    if len(buf) < 2:
        return None
    op = buf[0] & 0x0F
    n = buf[1] & 0x7F
    off = 2
    if n == 126:
        if len(buf) < 4:
            return None
        n = struct.unpack(">H", buf[2:4])[0]
        off = 4
    elif n == 127:
        if len(buf) < 10:
            return None
        n = struct.unpack(">Q", buf[2:10])[0]
        off = 10
    if len(buf) < off + n:
        return None
    body = bytes(buf[off:off + n])
    del buf[:off + n]
    return op, body


if __name__ == "__main__":
    sys.exit(main())
