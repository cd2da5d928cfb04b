#!/usr/bin/python3
"""Peer for make bench: an echo server on Debian's python3-websockets.

Usage: py_echo.py PORT. Compression off (wsload offers none anyway),
no size limit, library defaults otherwise.
"""
import asyncio
import sys

import websockets


async def echo(ws, _path=None):
    async for msg in ws:
        await ws.send(msg)


async def main(port):
    async with websockets.serve(echo, "127.0.0.1", port, max_size=None,
                                compression=None):
        await asyncio.Future()


asyncio.run(main(int(sys.argv[1])))
