"""
Reference 2: an asyncio server on the `websockets` library, broadcasting with
websockets.broadcast() to the set of connections, as its documentation's
broadcast guide shows it (a handler that registers the connection and waits
for it to close).  Default settings, default event loop.

    python bench/ref_websockets.py     (driven by bench/fanout.py)
"""

from __future__ import annotations

import asyncio
from websockets.asyncio.server import broadcast, serve

from common import Controlled, encode, raiseFileLimit

CONNECTIONS = set()


async def register(websocket):
    CONNECTIONS.add(websocket)
    try:
        await websocket.wait_closed()
    finally:
        CONNECTIONS.remove(websocket)


async def main() -> None:
    raiseFileLimit()
    controlled = Controlled(
        broadcast=lambda message: broadcast(CONNECTIONS, encode(message)),
        clients=lambda: len(CONNECTIONS),
    )
    stop = asyncio.get_running_loop().create_future()

    async def control(reader, writer):
        while line := await reader.readline():
            answer = controlled.handle(line.decode())
            if answer is None:
                stop.set_result(None)
                break
            writer.write(answer.encode() + b"\n")
        writer.close()

    async with serve(register, "127.0.0.1", 0) as server:
        wsPort = server.sockets[0].getsockname()[1]
        controlServer = await asyncio.start_server(control, "127.0.0.1", 0)
        print(f"READY {wsPort} {controlServer.sockets[0].getsockname()[1]}", flush=True)
        await stop


if __name__ == "__main__":
    asyncio.run(main())
