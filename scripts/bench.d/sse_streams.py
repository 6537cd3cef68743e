"""Holds N live top-seller streams (Server-Sent Events) of the web back
office open until stdin closes, counting the events they receive.

Usage: python3 sse_streams.py HOST PORT COOKIE N
Prints "open N" once every stream answered 200, and at the end
"events E" (all streams together)."""
import asyncio
import sys


async def stream(host, port, cookie, counter, opened):
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(
        f"GET /app/operator/live HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Cookie: {cookie}\r\nAccept: text/event-stream\r\n\r\n".encode()
    )
    await writer.drain()
    status = await reader.readline()
    if b" 200 " not in status:
        raise SystemExit(f"stream refused: {status!r}")
    opened.append(1)
    while True:
        line = await reader.readline()
        if not line:
            return
        if line.startswith(b"data:"):
            counter[0] += 1


async def main():
    host, port, cookie, n = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    counter, opened = [0], []
    tasks = [asyncio.create_task(stream(host, port, cookie, counter, opened)) for _ in range(n)]
    while len(opened) < n:
        await asyncio.sleep(0.05)
        for t in tasks:
            if t.done() and t.exception():
                raise t.exception()
    print(f"open {n}", flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    print(f"events {counter[0]}", flush=True)
    for t in tasks:
        t.cancel()


asyncio.run(main())
