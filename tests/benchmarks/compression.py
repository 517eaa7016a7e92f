"""What compressing a gateway-sized record batch costs: aiokafka's lz4 against the own path's.

    .venv/bin/python -m tests.benchmarks.compression [--rounds 9] [--json out.json]

A batch as the gateway sends them at 1,000 calls/s: three OCPP events of
about 500 bytes (a 1.6 MeterValues with four sampled values, a Heartbeat, a
StatusNotification, each in its ``ocpp.events.v1`` envelope with headers).
Timed per batch, from appending the records to the bytes on the wire:

- aiokafka: its ``BatchBuilder`` with lz4, which compresses at level 9 (LZ4-HC);
- csms: the builder without compression, then ``contracts.bus.compression.compress``
  (lz4 at level 1), what the own produce path does;
- none: the builder without compression, for the floor.

Interleaved rounds in a shuffled order; minimum and median over the rounds.
"""

from __future__ import annotations

import argparse
import random
import statistics
import timeit
from collections.abc import Callable
from typing import Any

from aiokafka.producer.message_accumulator import BatchBuilder

from contracts.bus.compression import compress
from tests.benchmarks import _support as support

LZ4 = 3  # Kafka's codec number
HEADERS = [("ce_specversion", b"1.0"), ("ce_type", b"csms.station.call"), ("ocpp_action", b"X")]


def _records() -> list[bytes]:
    envelope = (
        b'{"station_id":"CP-%d","kind":"call","message_id":"%d","action":"%s",'
        b'"ocpp_version":"1.6","gateway_id":"gw-0","connection_id":"9f3a0c1b2d4e5f60",'
        b'"received_at":"2026-11-21T23:41:08.123Z","reply_expected":false,"payload":%s}'
    )
    sampled = b",".join(
        b'{"value":"%d.%d","context":"Sample.Periodic","measurand":"%s","phase":"L1",'
        b'"location":"Outlet","unit":"%s"}' % (1234 + n, n, m, u)
        for n, (m, u) in enumerate(
            [(b"Energy.Active.Import.Register", b"Wh"), (b"Power.Active.Import", b"W"),
             (b"Current.Import", b"A"), (b"Voltage", b"V")]
        )
    )  # fmt: skip
    meter = b'{"connectorId":1,"transactionId":42,"meterValue":[{"timestamp":' \
        b'"2026-11-21T23:41:08Z","sampledValue":[%s]}]}' % sampled  # fmt: skip
    return [
        envelope % (1, 1, b"MeterValues", meter),
        envelope % (2, 2, b"Heartbeat", b"{}"),
        envelope % (3, 3, b"StatusNotification",
                    b'{"connectorId":1,"errorCode":"NoError","status":"Charging"}'),
    ]  # fmt: skip


def _batch(records: list[bytes], codec: int) -> bytes:
    builder = BatchBuilder(16384, codec)
    for n, value in enumerate(records):
        builder.append(timestamp=None, key=b"CP-%d" % n, value=value, headers=HEADERS)
    return bytes(builder._build())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args()
    records = _records()
    paths: dict[str, Callable[[], bytes]] = {
        "aiokafka: builder with lz4 (level 9)": lambda: _batch(records, LZ4),
        "csms: builder, then compress (lz4 level 1)": lambda: compress(_batch(records, 0), "lz4"),
        "none: builder without compression": lambda: _batch(records, 0),
    }
    timings: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(args.rounds):
        for name in random.sample(list(paths), len(paths)):
            number = 2000
            timings[name].append(timeit.timeit(paths[name], number=number) / number * 1e6)
    results: dict[str, Any] = {"machine": support.machine(), "args": vars(args)}
    results["us_per_batch"] = timings
    results["bytes"] = {name: len(path()) for name, path in paths.items()}
    support.finish(
        [
            [name, f"{min(t):.1f}", f"{statistics.median(t):.1f}", results["bytes"][name]]
            for name, t in timings.items()
        ],
        results,
        args.json,
        headers=("path", "µs per batch, min", "median", "bytes"),
    )


if __name__ == "__main__":
    main()
