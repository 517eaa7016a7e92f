"""Batches compressed by the own produce path read back as Kafka clients read them."""

from __future__ import annotations

import os

import pytest
from aiokafka.producer.message_accumulator import BatchBuilder
from aiokafka.record.default_records import DefaultRecordBatch

from contracts.bus.compression import compress, restamp
from contracts.settings import Compression

CODES = {"gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}


def _batch(values: list[bytes]) -> bytes:
    builder = BatchBuilder(16384, 0)  # uncompressed, as the own path gets them
    builder._set_producer_state(7, 1, 42)
    for n, value in enumerate(values):
        builder.append(timestamp=None, key=b"CP-%d" % n, value=value, headers=[("h", b"v")])
    return bytes(builder._build())


def _records(batch: bytes) -> list[tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]]:
    return [(r.key, r.value, list(r.headers)) for r in DefaultRecordBatch(batch)]


@pytest.mark.parametrize("codec", ["lz4", "zstd", "snappy", "gzip"])
def test_a_compressed_batch_holds_the_same_records_with_a_valid_crc(codec: Compression) -> None:
    values = [b'{"action":"MeterValues","payload":{"value":"%d.5"}}' % n for n in range(20)]
    plain = _batch(values)

    packed = compress(plain, codec)

    assert len(packed) < len(plain)
    batch = DefaultRecordBatch(packed)
    assert batch.validate_crc()
    assert batch.compression_type == CODES[codec]
    assert (batch.producer_id, batch.producer_epoch, batch.base_sequence) == (7, 1, 42)
    assert batch.last_offset_delta == len(values) - 1
    assert _records(packed) == _records(plain)
    assert [value for _, value, _ in _records(packed)] == values


def test_records_that_do_not_shrink_are_sent_as_they_are() -> None:
    plain = _batch([os.urandom(200)])
    assert compress(plain, "lz4") == plain
    assert compress(plain, "none") == plain


@pytest.mark.parametrize("codec", ["lz4", "none"])
def test_a_restamped_batch_has_the_new_producer_state_the_same_records_and_a_valid_crc(
    codec: Compression,
) -> None:
    values = [b'{"action":"Heartbeat","n":%d}' % n for n in range(20)]
    packed = compress(_batch(values), codec)

    stamped = restamp(packed, 9001, 0, 0)

    batch = DefaultRecordBatch(stamped)
    assert batch.validate_crc()
    assert (batch.producer_id, batch.producer_epoch, batch.base_sequence) == (9001, 0, 0)
    assert len(stamped) == len(packed) and _records(stamped) == _records(packed)
