"""``csms tail TOPIC``: print a topic's records as JSON lines, the kcat of csms.

Each line is one record::

    {"topic": "...", "partition": 0, "offset": 12, "timestamp": "2026-...Z",
     "key": "CP-1", "headers": {"ocpp-action": "Heartbeat", ...}, "value": {...}}

``value`` is the record's JSON as it is on the topic (or a string when the value
is not JSON, ``null`` for a tombstone). Reading needs no consumer group and
commits nothing, so tailing never disturbs the services.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import signal
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from aiokafka.errors import KafkaError

from contracts.bus.clients import assign_all, consumer, seek_to_end
from contracts.cli import Command
from contracts.settings import KafkaSettings, add_arguments, load

__all__ = ["command", "format_record", "tail"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class TailOptions:
    topic: str
    from_beginning: bool = False
    key: str | None = None
    max_records: int | None = None
    idle_timeout: float | None = None


def _text(data: bytes | None) -> str | None:
    return None if data is None else data.decode("utf-8", "replace")


def format_record(record: Any) -> bytes:
    """One JSON line for a consumer record (key, headers and value decoded for reading)."""
    value: Any
    if record.value is None:
        value = None
    else:
        try:
            orjson.loads(record.value)
            value = orjson.Fragment(record.value)
        except orjson.JSONDecodeError:
            value = _text(record.value)
    line = {
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "timestamp": datetime.fromtimestamp(record.timestamp / 1000, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z"),
        "key": _text(record.key),
        "headers": {name: _text(raw) for name, raw in record.headers},
        "value": value,
    }
    return orjson.dumps(line)


async def tail(
    kafka: KafkaSettings,
    options: TailOptions,
    emit: Callable[[bytes], None],
    stop: asyncio.Event | None = None,
    positioned: Callable[[], None] | None = None,
) -> int:
    """Emit the records of ``options.topic`` until stopped; returns how many were emitted."""
    stop = stop or asyncio.Event()
    client = consumer(kafka, "csms-tail")
    await client.start()
    emitted = 0
    try:
        partitions = await assign_all(client, options.topic)
        if options.from_beginning:
            await client.seek_to_beginning(*partitions)
        else:
            await seek_to_end(client, partitions)
        if positioned is not None:
            positioned()
        key = options.key.encode() if options.key is not None else None
        loop = asyncio.get_running_loop()
        last_record_at = loop.time()
        while not stop.is_set():
            batches = await client.getmany(timeout_ms=200)
            for records in batches.values():
                for record in records:
                    if key is not None and record.key != key:
                        continue
                    emit(format_record(record))
                    emitted += 1
                    last_record_at = loop.time()
                    if options.max_records is not None and emitted >= options.max_records:
                        return emitted
            if (
                options.idle_timeout is not None
                and loop.time() - last_record_at > options.idle_timeout
            ):
                return emitted
    finally:
        await client.stop()
    return emitted


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("topic", metavar="TOPIC", help="topic name, e.g. ocpp.events.v1")
    parser.add_argument(
        "--from-beginning", action="store_true", help="start at the oldest record, not the end"
    )
    parser.add_argument("--key", help="only records with this key (a station id, say)")
    parser.add_argument("--max-records", type=int, help="stop after this many records")
    parser.add_argument(
        "--idle-timeout", type=float, help="stop after this many seconds without a record"
    )
    add_arguments(parser, KafkaSettings)


def _run(args: argparse.Namespace) -> int:
    kafka = load(KafkaSettings, args)
    options = TailOptions(
        topic=args.topic,
        from_beginning=args.from_beginning,
        key=args.key,
        max_records=args.max_records,
        idle_timeout=args.idle_timeout,
    )

    def emit(line: bytes) -> None:
        sys.stdout.buffer.write(line + b"\n")
        sys.stdout.buffer.flush()

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        where = "the oldest record" if options.from_beginning else "the end"

        def positioned() -> None:
            print(f"csms tail: reading {options.topic} from {where}", file=sys.stderr, flush=True)

        await tail(kafka, options, emit, stop, positioned)

    try:
        asyncio.run(main())
    except TimeoutError as exc:
        print(f"csms tail: {exc}", file=sys.stderr)
        return 1
    except (KafkaError, OSError) as exc:
        print(f"csms tail: cannot read from Kafka at {kafka.bootstrap}: {exc}", file=sys.stderr)
        return 1
    with contextlib.suppress(BrokenPipeError):
        sys.stdout.flush()
    return 0


command = Command(
    help="print a topic's records as JSON lines (key, headers, value)",
    configure=_configure,
    run=_run,
)
