"""``csms gateway`` runs the gateway alone (production); ``csms send`` sends a command."""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid
from datetime import UTC, datetime, timedelta

import msgspec
import orjson
from aiokafka.errors import KafkaError

from contracts.bus.clients import producer
from contracts.bus.follower import TopicFollower
from contracts.cli import Command
from contracts.envelopes import (
    StationCommand,
    decode_command_result,
    encode_command,
    record_key,
)
from contracts.headers import command_headers
from contracts.service.logs import configure_logging
from contracts.service.runtime import run
from contracts.settings import KafkaSettings, add_arguments, load
from contracts.topics import COMMAND_RESULTS, COMMANDS
from gateway.settings import GatewaySettings

__all__ = ["gateway_command", "send_command"]


# --------------------------------------------------------------------------- csms gateway


def _configure_gateway(parser: argparse.ArgumentParser) -> None:
    add_arguments(parser, GatewaySettings)


def _run_gateway(args: argparse.Namespace) -> int:
    from gateway.app import serve

    settings = load(GatewaySettings, args)
    configure_logging("gateway", settings.resolved_instance_id(), settings.service.log_level)
    return run(lambda: serve(settings))


gateway_command = Command(
    help="run the OCPP gateway (websockets in, Kafka out)",
    configure=_configure_gateway,
    run=_run_gateway,
)


# --------------------------------------------------------------------------- csms send


def _configure_send(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("station", metavar="STATION", help="station id")
    parser.add_argument("action", metavar="ACTION", help="OCPP action, e.g. GetConfiguration")
    parser.add_argument(
        "payload", metavar="JSON", nargs="?", default="{}", help="the call's payload (default {})"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        help="seconds the station has to answer (default 30); csms send waits a little longer",
    )
    parser.add_argument(
        "--expires-in", type=float, help="seconds after which the command must not be sent"
    )
    add_arguments(parser, KafkaSettings)


async def send(
    kafka: KafkaSettings,
    station: str,
    action: str,
    payload: bytes,
    *,
    timeout: float,
    expires_in: float | None = None,
) -> bytes | None:
    """Publish a command and return its result record's value (None if none came in time)."""
    command_id = str(uuid.uuid4())
    found: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def on_records(records: list[object]) -> None:
        for record in records:
            value = getattr(record, "value", None)
            if (
                value
                and not found.done()
                and command_id.encode() in value
                and decode_command_result(value).command_id == command_id
            ):
                found.set_result(value)

    # follow the results first, so the result cannot pass by before we look
    results = TopicFollower(
        kafka,
        COMMAND_RESULTS.name,
        on_records,
        client_id="csms-send",
        from_beginning=False,
        fetch_max_wait=kafka.fetch_max_wait,
    )
    client = producer(kafka, "csms-send", enable_idempotence=False)
    try:
        await results.start()
        await client.start()
        now = datetime.now(UTC)
        command = StationCommand(
            command_id=command_id,
            station_id=station,
            kind="call",
            action=action,
            created_at=now,
            expires_at=now + timedelta(seconds=expires_in) if expires_in else None,
            timeout_s=timeout,
            source="/csms/cli/send",
            payload=msgspec.Raw(payload),
        )
        await client.send_and_wait(
            COMMANDS.name,
            encode_command(command),
            key=record_key(station),
            headers=command_headers(command),
        )
        try:
            return await asyncio.wait_for(found, timeout + 10)
        except TimeoutError:
            return None
    finally:
        await client.stop()
        await results.stop()


def _run_send(args: argparse.Namespace) -> int:
    kafka = load(KafkaSettings, args)
    try:
        payload = orjson.dumps(orjson.loads(args.payload))
    except orjson.JSONDecodeError as exc:
        print(f"csms send: the payload is not JSON: {exc}", file=sys.stderr)
        return 2
    if not payload.startswith(b"{"):
        print("csms send: the payload must be a JSON object", file=sys.stderr)
        return 2
    try:
        value = asyncio.run(
            send(
                kafka,
                args.station,
                args.action,
                payload,
                timeout=args.timeout,
                expires_in=args.expires_in,
            )
        )
    except (KafkaError, OSError, TimeoutError) as exc:
        print(f"csms send: cannot reach Kafka at {kafka.bootstrap}: {exc}", file=sys.stderr)
        return 1
    if value is None:
        print("csms send: no result arrived (is a gateway running?)", file=sys.stderr)
        return 3
    sys.stdout.buffer.write(value + b"\n")
    return 0 if decode_command_result(value).status == "completed" else 1


send_command = Command(
    help="send an OCPP call to a station through Kafka and print its result",
    configure=_configure_send,
    run=_run_send,
)
