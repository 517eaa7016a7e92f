"""Charge points for end-to-end tests: the ``ocpp`` package's classes, and a raw OCPP-J client."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import orjson
import websockets
from ocpp.routing import on
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call_result as result16
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call_result as result201
from websockets.asyncio.client import ClientConnection


def station_id(prefix: str = "CP") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


class Station16(ChargePoint16):  # type: ignore[misc]
    """An OCPP 1.6 charge point that answers GetConfiguration and RemoteStartTransaction."""

    configuration = [{"key": "HeartbeatInterval", "readonly": False, "value": "300"}]

    @on("GetConfiguration")  # type: ignore[misc]
    def get_configuration(self, **kwargs: Any) -> Any:
        return result16.GetConfiguration(configuration_key=self.configuration)

    @on("RemoteStartTransaction")  # type: ignore[misc]
    def remote_start(self, **kwargs: Any) -> Any:
        return result16.RemoteStartTransaction(status="Accepted")


class Station201(ChargePoint201):  # type: ignore[misc]
    """An OCPP 2.0.1 charge point that answers GetVariables."""

    @on("GetVariables")  # type: ignore[misc]
    def get_variables(self, get_variable_data: list[dict[str, Any]], **kwargs: Any) -> Any:
        return result201.GetVariables(
            get_variable_result=[
                {
                    "attribute_status": "Accepted",
                    "component": item["component"],
                    "variable": item["variable"],
                    "attribute_value": "300",
                }
                for item in get_variable_data
            ]
        )


@contextlib.asynccontextmanager
async def running(station: Any) -> AsyncIterator[Any]:
    """Run an ``ocpp`` charge point's receive loop for the duration of the block."""
    task = asyncio.get_running_loop().create_task(station.start())
    try:
        yield station
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, websockets.ConnectionClosed):
            await task


@contextlib.asynccontextmanager
async def connect16(
    url: str, station_class: type[Station16] = Station16, **kwargs: Any
) -> AsyncIterator[Station16]:
    station = url.rsplit("/", 1)[-1]
    async with (
        websockets.connect(url, subprotocols=["ocpp1.6"], **kwargs) as ws,  # type: ignore[list-item]
        running(station_class(station, ws)) as cp,
    ):
        yield cp


@contextlib.asynccontextmanager
async def connect201(
    url: str, station_class: type[Station201] = Station201, **kwargs: Any
) -> AsyncIterator[Station201]:
    station = url.rsplit("/", 1)[-1]
    async with (
        websockets.connect(url, subprotocols=["ocpp2.0.1"], **kwargs) as ws,  # type: ignore[list-item]
        running(station_class(station, ws)) as cp,
    ):
        yield cp


class RawStation:
    """A websocket client speaking OCPP-J frames by hand (2.1, malformed input)."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    async def send(self, frame: Any) -> None:
        await self.ws.send(
            frame if isinstance(frame, str | bytes) else orjson.dumps(frame).decode()
        )

    async def receive(self, timeout: float = 10.0) -> Any:
        async with asyncio.timeout(timeout):
            return orjson.loads(await self.ws.recv())

    async def call(
        self, action: str, payload: dict[str, Any], message_id: str | None = None
    ) -> Any:
        message_id = message_id or uuid.uuid4().hex
        await self.send([2, message_id, action, payload])
        return await self.receive()


@contextlib.asynccontextmanager
async def connect_raw(url: str, subprotocol: str, **kwargs: Any) -> AsyncIterator[RawStation]:
    async with websockets.connect(url, subprotocols=[subprotocol], **kwargs) as ws:  # type: ignore[list-item]
        yield RawStation(ws)
