"""A TCP relay in its own process, to put a controllable network between a fleet and its
database.

Run ``python tests/tcp_proxy.py LISTEN_HOST LISTEN_PORT TARGET_HOST TARGET_PORT``; it
prints ``listening HOST:PORT`` once ready (port 0 picks a free one) and ``accepted IP``
for every client. The test controls the "network" through the process itself:

- SIGSTOP: a silent partition. The kernel still completes handshakes, but not a byte
  flows either way; clients hang until their own timeouts, as across a dead link.
- SIGCONT: the partition heals and queued bytes flow again.
- kill, then start again on the same port: the database is gone (connections reset and
  refused), then back.
"""

from __future__ import annotations

import asyncio
import sys

CHUNK = 65536


async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def serve(listen_host: str, listen_port: int, target_host: str, target_port: int) -> None:
    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        print(f"accepted {peer[0]}", flush=True)
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(
                target_host, target_port
            )
        except OSError:
            writer.close()
            return
        await asyncio.gather(relay(reader, upstream_writer), relay(upstream_reader, writer))

    server = await asyncio.start_server(on_client, listen_host, listen_port, reuse_address=True)
    host, port = server.sockets[0].getsockname()[:2]
    print(f"listening {host}:{port}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    listen_host, listen_port, target_host, target_port = sys.argv[1:5]
    asyncio.run(serve(listen_host, int(listen_port), target_host, int(target_port)))
