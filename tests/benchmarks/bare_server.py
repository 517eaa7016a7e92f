"""The transport's ceiling: websockets + uvloop answering every CALL with a canned CALLRESULT.

    .venv/bin/python -m tests.benchmarks.bare_server [--port 0]

No OCPP parsing, no validation, no Kafka: the message id is cut out of the
frame's text (``[2,"<id>",...``) and put into a fixed ``[3,"<id>",{}]``. What
this costs per call is what websockets' asyncio server on uvloop costs; no
OCPP server on that stack can answer for less. Prints ``listening on PORT``;
stops on SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import Awaitable, Callable

import uvloop
from websockets.asyncio.server import ServerConnection, serve


async def _answer(connection: ServerConnection) -> None:
    try:
        async for message in connection:
            text = message if isinstance(message, str) else message.decode()
            if text.startswith('[2,"'):
                await connection.send('[3,"' + text[4 : text.index('"', 4)] + '",{}]')
    except Exception:  # the station went away
        return


async def _serve(handler: Callable[[ServerConnection], Awaitable[None]], port: int) -> None:
    stop = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set_result, None)
    async with serve(
        handler, "127.0.0.1", port, subprotocols=["ocpp1.6"], compression=None, max_queue=64
    ) as server:  # type: ignore[arg-type]
        print(f"listening on {server.sockets[0].getsockname()[1]}", flush=True)
        await stop


def run_server(handler: Callable[[ServerConnection], Awaitable[None]], description: str) -> None:
    """Serve OCPP 1.6 websockets with ``handler`` on uvloop (no compression) until SIGTERM."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--port", type=int, default=0)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(_serve(handler, parser.parse_args().port))


if __name__ == "__main__":
    run_server(_answer, __doc__.splitlines()[0])
