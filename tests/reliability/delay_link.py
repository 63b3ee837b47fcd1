"""A TCP relay that adds a fixed one-way delay: the 2 ms of the several-hosts test.

The kernel of the test machine may lack ``sch_netem`` (``tc qdisc … netem``
answers "Specified qdisc kind is unknown"), so the latency the topology asks
for is added here instead: the relay runs inside the services namespace,
listens on the services end of every veth pair, and forwards each
connection to the server on that namespace's loopback. Every chunk read in
either direction is written out ``delay`` seconds after it arrived, in
order, so each direction of each connection is ``delay`` slower — what netem
on both ends of the veth would do. A partition (the veth taken down) stalls
the connection exactly as it would without the relay: the relay's side of
it is on the far end of the cut link.

Run as ``python delay_link.py DELAY LISTEN_HOST:PORT=TARGET_HOST:PORT …``.
"""

from __future__ import annotations

import asyncio
import sys


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                delay: float) -> None:
    """Copy ``reader`` to ``writer``, each chunk ``delay`` seconds after it was read."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def send() -> None:
        while True:
            due, data = await queue.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                if writer.can_write_eof():
                    writer.write_eof()
                return
            writer.write(data)
            await writer.drain()

    sender = asyncio.create_task(send())
    try:
        while data := await reader.read(65536):
            queue.put_nowait((loop.time() + delay, data))
    except (ConnectionError, OSError):
        pass
    queue.put_nowait((loop.time() + delay, b""))
    try:
        await sender
    except (ConnectionError, OSError):
        pass


async def _connection(client_reader: asyncio.StreamReader,
                      client_writer: asyncio.StreamWriter,
                      target: tuple[str, int], delay: float) -> None:
    try:
        server_reader, server_writer = await asyncio.open_connection(*target)
    except OSError:
        client_writer.close()
        return
    await asyncio.gather(_pump(client_reader, server_writer, delay),
                         _pump(server_reader, client_writer, delay))
    for writer in (client_writer, server_writer):
        writer.close()


def _address(text: str) -> tuple[str, int]:
    host, port = text.rsplit(":", 1)
    return host, int(port)


async def main(delay: float, routes: list[str]) -> None:
    servers = []
    for route in routes:
        listen, target = route.split("=")
        host, port = _address(listen)
        destination = _address(target)

        async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter,
                         destination: tuple[str, int] = destination) -> None:
            await _connection(r, w, destination, delay)

        servers.append(await asyncio.start_server(handle, host, port, reuse_address=True))
    print("ready", flush=True)
    await asyncio.gather(*(server.serve_forever() for server in servers))


if __name__ == "__main__":
    asyncio.run(main(float(sys.argv[1]), sys.argv[2:]))
