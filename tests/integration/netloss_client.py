#!/usr/bin/python3
"""Client side of test_netloss.py, run inside the client's network namespace
(`ip netns exec NS /usr/bin/python3 netloss_client.py ...`): Python here has
no os.setns, so the test cannot move one of its own threads there.

  echo HOST PORT SESSIONS MESSAGES
      SESSIONS concurrent WebSocket sessions each send MESSAGES numbered
      binary messages of varied sizes (pipelined, ≤ 32 in flight) and check
      every echo comes back whole and in order, answering pings meanwhile.
      Prints one JSON line: {"ok": n, "errors": [...], "rtt_p50": s, "rtt_p99": s}.
  idle HOST PORT SECONDS
      One session: one echo, prints "up", then only answers pings for
      SECONDS (the test cuts the network under it).
Every wait is bounded.
"""

import json
import os
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import wsrtest  # noqa: E402
from wsrtest import OP_BINARY, OP_TEXT  # noqa: E402

WINDOW = 32


def payload(session, i):
    size = (i * 977) % 4096 + 8
    head = struct.pack(">II", session, i)
    return head + bytes((session + i + k) & 0xff for k in range(size - 8))


def session(host, port, sid, n, out):
    rtts = []
    try:
        c = wsrtest.WSClient.connect((host, port), timeout=20.0)
        sent_at = {}
        sent = got = 0
        while got < n:
            while sent < n and sent - got < WINDOW:
                sent_at[sent] = time.monotonic()
                c.send_frame(OP_BINARY, payload(sid, sent))
                sent += 1
            op, data, _ = c.read_message(timeout=30.0)
            want = payload(sid, got)
            if op != OP_BINARY or data != want:
                seq = struct.unpack(">II", data[:8]) if len(data) >= 8 else None
                raise AssertionError("message %d: got %d bytes (header %r), want %d bytes"
                                     % (got, len(data), seq, len(want)))
            rtts.append(time.monotonic() - sent_at.pop(got))
            got += 1
        c.send_close(1000)
        c.read_close(timeout=20.0)
        c.close_socket()
        out.append(("ok", rtts))
    except (AssertionError, OSError) as e:
        out.append(("session %d: %r" % (sid, e), rtts))


def main():
    mode, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if mode == "echo":
        n_sessions, n_msgs = int(sys.argv[4]), int(sys.argv[5])
        out = []
        threads = [threading.Thread(target=session, args=(host, port, i, n_msgs, out))
                   for i in range(n_sessions)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        rtts = sorted(r for _, rs in out for r in rs)
        errors = [s for s, _ in out if s != "ok"]
        if len(out) < n_sessions:
            errors.append("%d sessions did not finish" % (n_sessions - len(out)))
        print(json.dumps({
            "ok": sum(1 for s, _ in out if s == "ok"), "errors": errors, "messages": len(rtts),
            "rtt_p50": rtts[len(rtts) // 2] if rtts else None,
            "rtt_p99": rtts[min(len(rtts) - 1, int(len(rtts) * 0.99))] if rtts else None}))
    elif mode == "idle":
        seconds = float(sys.argv[4])
        c = wsrtest.WSClient.connect((host, port), timeout=10.0)
        c.echo(OP_TEXT, b"hello", timeout=10.0)
        print("up", flush=True)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                c.read_message(timeout=min(1.0, max(0.01, end - time.monotonic())))
            except wsrtest.WSTimeout:
                pass
            except (AssertionError, OSError):
                break
        c.close_socket()
    else:
        sys.exit("unknown mode %r" % mode)


if __name__ == "__main__":
    main()
