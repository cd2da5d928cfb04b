#!/usr/bin/python3
"""Deterministic load for counting wsrouted's instructions under callgrind.

Usage: cg_drive.py PORT MODE COUNT
  echo1   one connection, COUNT messages of 32 B, one in flight
  echo16  one connection, COUNT batches of 16 × 32 B sent in one write
  echo16k one connection, COUNT messages of 16 KiB, one in flight
  hs      COUNT times: connect, upgrade, close frame, wait for the
          server's close and EOF

Every exchange waits for its whole answer before the next, so the server
sees the same reads and writes on every run: run-bench drives two counts
and divides the difference in instructions by the difference in messages,
which cancels start-up, the handshake and shutdown exactly.
"""
import base64
import os
import socket
import sys

MASK = b"\x11\x22\x33\x44"


def frame(payload, opcode=1):
    n = len(payload)
    if n < 126:
        hdr = bytes([0x80 | opcode, 0x80 | n])
    elif n < 65536:
        hdr = bytes([0x80 | opcode, 0x80 | 126]) + n.to_bytes(2, "big")
    else:
        hdr = bytes([0x80 | opcode, 0x80 | 127]) + n.to_bytes(8, "big")
    m = (MASK * (n // 4 + 1))[:n]
    return hdr + MASK + bytes(a ^ b for a, b in zip(payload, m))


def recv_exact(s, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise SystemExit("cg_drive: server closed early")
        buf += chunk
    return bytes(buf)


def upgrade(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
               "Sec-WebSocket-Version: 13\r\n\r\n" % key).encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(4096)
        if not chunk:
            raise SystemExit("cg_drive: no 101")
        head += chunk
    if not head.startswith(b"HTTP/1.1 101"):
        raise SystemExit("cg_drive: upgrade refused: %r" % head[:40])
    return s


def close(s):
    s.sendall(frame(b"\x03\xe8", opcode=8))
    while s.recv(4096):
        pass
    s.close()


def main():
    port, mode, count = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    if mode == "hs":
        for _ in range(count):
            close(upgrade(port))
        return
    size, batch = {"echo1": (32, 1), "echo16": (32, 16),
                   "echo16k": (16384, 1)}[mode]
    out = frame(b"x" * size) * batch
    hlen = 2 if size < 126 else 4
    expect = (hlen + size) * batch
    s = upgrade(port)
    for _ in range(count):
        s.sendall(out)
        recv_exact(s, expect)
    close(s)


main()
