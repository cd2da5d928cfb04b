#!/usr/bin/python3
"""Latency for test_netloss.py (this kernel has no netem): a TCP relay from
127.0.0.1:LISTEN to HOST:PORT that holds every chunk DELAY_MS in each
direction, keeping byte order; prints "listening" once bound and exits
after SECONDS. After the recipe in ../shared/recipes/delay_proxy.py.

usage: delay_relay.py LISTEN HOST PORT DELAY_MS SECONDS
"""
import asyncio
import sys
import time

LISTEN, HOST, PORT = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
DELAY, SECONDS = float(sys.argv[4]) / 1000, float(sys.argv[5])


async def pipe(r, w):
    q = asyncio.Queue()

    async def pump():
        while True:
            item = await q.get()
            if item is None:
                break
            due, data = item
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            w.write(data)
            await w.drain()
        w.close()

    t = asyncio.create_task(pump())
    try:
        while True:
            data = await r.read(65536)
            if not data:
                break
            q.put_nowait((time.monotonic() + DELAY, data))
    finally:
        q.put_nowait(None)
        await t


async def handle(cr, cw):
    try:
        ur, uw = await asyncio.open_connection(HOST, PORT)
    except OSError as e:    # say why the client's connection is dropped
        print("relay: upstream connect failed: %r" % e, file=sys.stderr, flush=True)
        cw.close()
        return
    await asyncio.gather(pipe(cr, uw), pipe(ur, cw), return_exceptions=True)


async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", LISTEN)
    print("listening", flush=True)
    async with server:
        await asyncio.sleep(SECONDS)

asyncio.run(main())
