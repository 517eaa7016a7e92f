"""The Kafka envelopes and headers: codecs, the evolution rule, and the header scheme."""

from __future__ import annotations

import functools
import importlib
import inspect
import json
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema
from msgspec import inspect as mi

from contracts import envelopes as env
from contracts import headers as hdr
from contracts.asyncapi import EXAMPLES, SCHEMA_REF, schemas
from contracts.topics import CATALOGUE, COMMANDS, EVENTS, PRESENCE, STATIONS, Topic, by_name

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).with_name("fixtures")

DECODERS: dict[str, Callable[[bytes], Any]] = {
    "ocpp.events.v1": env.decode_event,
    "ocpp.commands.v1": env.decode_command,
    "ocpp.command-results.v1": env.decode_command_result,
    "ocpp.presence.v1": env.decode_presence,
    "csms.sessions.v1": env.decode_session,
    "csms.alerts.v1": env.decode_alert,
    "csms.alert-silences.v1": env.decode_silence,
    "csms.station-status.v1": env.decode_station_status,
    "csms.stations.v1": env.decode_station,
    "csms.id-tokens.v1": env.decode_id_token,
    "csms.sites.v1": env.decode_site,
    "csms.dead-letter.v1": env.decode_dead_letter,
}
ENCODERS: dict[str, Callable[[Any], bytes | None]] = {
    "ocpp.events.v1": env.encode_event,
    "ocpp.commands.v1": env.encode_command,
    "ocpp.command-results.v1": env.encode_command_result,
    "ocpp.presence.v1": env.encode_presence,
    "csms.sessions.v1": env.encode_session,
    "csms.alerts.v1": env.encode_alert,
    "csms.alert-silences.v1": env.encode_silence,
    "csms.station-status.v1": env.encode_station_status,
    "csms.stations.v1": env.encode_station,
    "csms.id-tokens.v1": env.encode_id_token,
    "csms.sites.v1": env.encode_site,
    "csms.dead-letter.v1": env.encode_dead_letter,
}

AT = datetime(2026, 3, 1, 12, 15, 0, 123456, tzinfo=UTC)


def _event(**overrides: Any) -> env.StationEvent:
    fields: dict[str, Any] = {
        "station_id": "CP-1",
        "kind": "call",
        "message_id": "m-1",
        "action": "Heartbeat",
        "ocpp_version": "2.0.1",
        "gateway_id": "gw-1",
        "connection_id": "c-1",
        "received_at": AT,
        "payload": msgspec.Raw(b"{}"),
    }
    fields.update(overrides)
    return env.StationEvent(**fields)


def _command(**overrides: Any) -> env.StationCommand:
    fields: dict[str, Any] = {
        "command_id": "cmd-1",
        "station_id": "CP-1",
        "kind": "call",
        "action": "Reset",
        "created_at": AT,
        "source": "/test",
        "payload": msgspec.Raw(b'{"type":"Soft"}'),
    }
    fields.update(overrides)
    return env.StationCommand(**fields)


# --- codecs -------------------------------------------------------------------------------------


def test_every_topic_has_a_codec_for_its_value_type() -> None:
    assert set(DECODERS) == set(ENCODERS) == {topic.name for topic in CATALOGUE}
    for topic in CATALOGUE:
        example = next(e.value for e in EXAMPLES[topic.name] if e.value is not None)
        assert isinstance(example, topic.value_type)
        assert isinstance(DECODERS[topic.name](ENCODERS[topic.name](example)), topic.value_type)


@pytest.mark.parametrize(
    ("topic", "example"),
    [
        pytest.param(name, example, id=f"{name}-{example.name}")
        for name, examples in EXAMPLES.items()
        for example in examples
        if example.value is not None
    ],
)
def test_examples_round_trip(topic: str, example: Any) -> None:
    encoded = ENCODERS[topic](example.value)
    assert encoded is not None
    assert DECODERS[topic](encoded) == example.value


def test_timestamps_are_rfc3339_utc_with_z() -> None:
    encoded = env.encode_event(_event(reply_expected=True, reply_by=AT + timedelta(seconds=5)))
    value = json.loads(encoded)
    assert value["received_at"] == "2026-03-01T12:15:00.123456Z"
    assert value["reply_by"] == "2026-03-01T12:15:05.123456Z"


def test_decoders_read_any_utc_offset_and_reject_a_timestamp_without_one() -> None:
    value = json.loads(env.encode_event(_event()))
    value["received_at"] = "2026-03-01T14:15:00.123456+02:00"
    decoded = env.decode_event(json.dumps(value).encode())
    assert decoded.received_at == AT
    assert decoded.received_at.utcoffset() == timedelta(hours=2)

    value["received_at"] = "2026-03-01T12:15:00"
    with pytest.raises(msgspec.ValidationError, match="timezone"):
        env.decode_event(json.dumps(value).encode())


def test_ocpp_payload_is_embedded_byte_for_byte() -> None:
    # Whitespace, key order and escapes as the station sent them: nothing re-encoded.
    payload = b'{ "idTag" : "\\u00e9t\\u00e9",\n  "b": [1.50, 2e3] }'
    encoded = env.encode_event(_event(action="Authorize", payload=msgspec.Raw(payload)))
    assert b'"payload":' + payload + b"}" in encoded
    assert bytes(env.decode_event(encoded).payload) == payload


def test_every_field_is_written_even_when_null() -> None:
    value = json.loads(env.encode_event(_event(kind="connected", action=None)))
    assert value["action"] is None
    assert value["reply_by"] is None
    assert set(value) == set(env.StationEvent.__struct_fields__)


def test_lifecycle_payloads_round_trip_inside_an_event() -> None:
    facts = env.ConnectedPayload(
        remote_address="192.0.2.1", subprotocol="ocpp2.0.1", security_profile=3
    )
    event = env.decode_event(
        env.encode_event(_event(kind="connected", payload=env.encode_connection_payload(facts)))
    )
    assert env.decode_connected_payload(event.payload) == facts

    closed = env.DisconnectedPayload(
        close_code=1001, close_reason="going away", connected_seconds=2.5
    )
    event = env.decode_event(
        env.encode_event(_event(kind="disconnected", payload=env.encode_connection_payload(closed)))
    )
    assert env.decode_disconnected_payload(event.payload) == closed

    refused = env.RejectedPayload(remote_address="192.0.2.1", reason="bad_credentials")
    event = env.decode_event(
        env.encode_event(_event(kind="rejected", payload=env.encode_connection_payload(refused)))
    )
    assert env.decode_rejected_payload(event.payload) == refused


def test_compacted_topics_encode_and_decode_tombstones() -> None:
    assert env.encode_presence(None) is None
    assert env.decode_presence(None) is None
    assert env.encode_station(None) is None
    assert env.decode_station(None) is None
    assert env.encode_id_token(None) is None
    assert env.decode_id_token(None) is None
    assert env.encode_site(None) is None
    assert env.decode_site(None) is None


def test_command_result_payload_defaults_to_json_null() -> None:
    result = env.CommandResult(
        command_id="c",
        station_id="CP-1",
        action="Reset",
        status="station_offline",
        error=env.CommandError(code="StationOffline"),
        gateway_id="gw-1",
        completed_at=AT,
    )
    value = json.loads(env.encode_command_result(result))
    assert value["payload"] is None
    assert value["error"] == {"code": "StationOffline", "description": "", "details": {}}


def test_record_key_is_the_utf8_station_id() -> None:
    assert env.record_key("CP-1") == b"CP-1"
    assert env.record_key("Ladesäule-7") == "Ladesäule-7".encode()


def test_a_wrong_shape_raises_a_validation_error() -> None:
    with pytest.raises(msgspec.ValidationError, match="kind"):
        env.decode_event(env.encode_event(_event()).replace(b'"call"', b'"dance"'))
    with pytest.raises(msgspec.DecodeError):
        env.decode_command(b'{"command_id": "x"')


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({}, None),
        ({"kind": "call_result", "message_id": "42", "action": "Authorize"}, None),
        ({"kind": "call_error", "message_id": "42", "error_code": "InternalError"}, None),
        ({"kind": "call_result"}, "needs the message_id"),
        ({"kind": "call_error", "message_id": "42"}, "needs an error_code"),
        ({"error_code": "InternalError"}, "has no error_code"),
        ({"timeout_s": 0.0}, "timeout_s"),
        ({"timeout_s": -1.0}, "timeout_s"),
        ({"action": ""}, "action"),
    ],
)
def test_command_problem(overrides: dict[str, Any], problem: str | None) -> None:
    found = env.command_problem(_command(**overrides))
    if problem is None:
        assert found is None
    else:
        assert found is not None
        assert problem in found


def test_an_invalid_command_still_decodes_so_its_result_can_name_it() -> None:
    # A reply without message_id is invalid, but the gateway must still learn
    # its command_id to write the "invalid" result.
    raw = env.encode_command(_command(kind="call_result"))
    command = env.decode_command(raw)
    assert command.command_id == "cmd-1"
    assert env.command_problem(command) is not None


@given(
    key=st.one_of(st.none(), st.binary(max_size=40)),
    value=st.one_of(st.none(), st.binary(max_size=200)),
    headers=st.lists(st.tuples(st.text(max_size=10), st.one_of(st.none(), st.binary(max_size=20)))),
)
def test_original_record_gives_the_original_bytes_back(
    key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes | None]]
) -> None:
    original = env.original_record(
        topic="t", partition=1, offset=2, key=key, value=value, headers=headers
    )
    dead = env.DeadLetter(record=original, worker="w", reason="r", failures=1, failed_at=AT)
    again = env.decode_dead_letter(env.encode_dead_letter(dead)).record
    assert again.key_bytes() == key
    assert again.value_bytes() == value
    assert [(h.name, h.value_bytes()) for h in again.headers] == headers


def test_original_record_keeps_text_readable_and_binary_base64() -> None:
    record = env.original_record(
        topic="t", partition=0, offset=0, key=b"CP-1", value=b"\xff\x00", headers=[("h", b"v")]
    )
    assert (record.key, record.key_encoding) == ("CP-1", "utf-8")
    assert (record.value, record.value_encoding) == ("/wA=", "base64")
    assert record.headers == (env.OriginalHeader(name="h", value="v"),)


def test_a_corrupt_base64_value_is_a_value_error() -> None:
    record = env.OriginalRecord(
        topic="t", partition=0, offset=0, key=None, value="%%%", value_encoding="base64"
    )
    with pytest.raises(ValueError, match="base64"):
        record.value_bytes()


# --- evolution: records of the first shape, and tolerance -------------------------------------


def _fixtures() -> Iterator[tuple[Topic, str, bytes]]:
    for path in sorted(FIXTURES.glob("*.jsonl")):
        topic = next(t for t in CATALOGUE if path.name.startswith(f"{t.name}."))
        for number, line in enumerate(path.read_bytes().splitlines(), start=1):
            yield topic, f"{path.name}:{number}", line


FIXTURE_RECORDS = list(_fixtures())


def test_there_are_first_shape_records_of_every_topic() -> None:
    assert {topic.name for topic, _, _ in FIXTURE_RECORDS} == {t.name for t in CATALOGUE}


def _struct_type(t: mi.Type) -> mi.StructType | None:
    """The Struct inside a field type (through metadata, optional and tuple types), if any."""
    if isinstance(t, mi.Metadata):
        return _struct_type(t.type)
    if isinstance(t, mi.StructType):
        return t
    if isinstance(t, mi.UnionType):
        inner = [s for s in (_struct_type(u) for u in t.types) if s is not None]
        return inner[0] if inner else None
    if isinstance(t, mi.VarTupleType | mi.ListType):
        return _struct_type(t.item_type)
    return None


def _walk(
    value: Any, struct: mi.StructType, visit: Callable[[dict[str, Any], mi.StructType], None]
) -> None:
    """Call ``visit`` on every JSON object of ``value`` that is a Struct, nested ones first."""
    if isinstance(value, list):
        for item in value:
            _walk(item, struct, visit)
        return
    if not isinstance(value, dict):
        return
    for field in struct.fields:
        inner = _struct_type(field.type)
        if inner is not None and field.encode_name in value:
            _walk(value[field.encode_name], inner, visit)
    visit(value, struct)


def _strip_defaulted(obj: dict[str, Any], struct: mi.StructType) -> None:
    for field in struct.fields:
        if not field.required:
            obj.pop(field.encode_name, None)


def _add_unknown(obj: dict[str, Any], struct: mi.StructType) -> None:
    obj["field_from_the_future"] = {"nested": [1, "two", None]}
    obj["zz_flag"] = True


def _plain(struct: msgspec.Struct) -> Any:
    return json.loads(msgspec.json.encode(struct))


def _default_of(field: mi.Field) -> Any:
    if field.default_factory is not msgspec.NODEFAULT:
        return field.default_factory()
    return field.default


@pytest.mark.parametrize(
    ("topic", "where", "line"), FIXTURE_RECORDS, ids=[w for _, w, _ in FIXTURE_RECORDS]
)
def test_first_shape_records_decode(topic: Topic, where: str, line: bytes) -> None:
    decoded = DECODERS[topic.name](line)
    assert isinstance(decoded, topic.value_type)
    # Every field of the first shape is read, none left to its default by mistake; fields
    # added later (with defaults, the evolution rule) may appear beside them.
    again = msgspec.json.decode(ENCODERS[topic.name](decoded) or b"null")
    assert _keeps(again, json.loads(line))


def _keeps(new: Any, old: Any) -> bool:
    """``new`` holds everything ``old`` holds, unchanged (objects may have more fields)."""
    if isinstance(old, dict):
        return isinstance(new, dict) and all(k in new and _keeps(new[k], v) for k, v in old.items())
    if isinstance(old, list):
        return (
            isinstance(new, list)
            and len(new) == len(old)
            and all(_keeps(n, o) for n, o in zip(new, old, strict=True))
        )
    return bool(new == old)


def test_keeps_allows_new_fields_but_no_change() -> None:
    assert _keeps({"a": 1, "b": [{"c": 2, "new": 3}], "new": None}, {"a": 1, "b": [{"c": 2}]})
    assert not _keeps({"a": 2}, {"a": 1})
    assert not _keeps({"b": [{"c": 3}]}, {"b": [{"c": 2}]})
    assert not _keeps({}, {"a": None})


@pytest.mark.parametrize(
    ("topic", "where", "line"), FIXTURE_RECORDS, ids=[w for _, w, _ in FIXTURE_RECORDS]
)
def test_records_missing_every_defaulted_field_decode_to_the_defaults(
    topic: Topic, where: str, line: bytes
) -> None:
    struct = mi.type_info(topic.value_type)
    assert isinstance(struct, mi.StructType)
    value = json.loads(line)
    _walk(value, struct, _strip_defaulted)
    decoded = DECODERS[topic.name](json.dumps(value).encode())
    for field in struct.fields:
        if not field.required:
            assert getattr(decoded, field.name) == _default_of(field), field.name
    # One field at a time, too: each default stands on its own.
    for field in struct.fields:
        if not field.required:
            single = json.loads(line)
            single.pop(field.encode_name, None)  # a newer field is absent from old records
            decoded = DECODERS[topic.name](json.dumps(single).encode())
            assert getattr(decoded, field.name) == _default_of(field), field.name


@pytest.mark.parametrize(
    ("topic", "where", "line"), FIXTURE_RECORDS, ids=[w for _, w, _ in FIXTURE_RECORDS]
)
def test_records_with_unknown_fields_decode_as_without(
    topic: Topic, where: str, line: bytes
) -> None:
    struct = mi.type_info(topic.value_type)
    assert isinstance(struct, mi.StructType)
    value = json.loads(line)
    _walk(value, struct, _add_unknown)
    assert value["field_from_the_future"]  # the walk reached the top level
    decoded = DECODERS[topic.name](json.dumps(value).encode())
    # Compared as JSON: json.dumps spaces the embedded OCPP payload differently.
    assert _plain(decoded) == _plain(DECODERS[topic.name](line))


def test_lifecycle_payloads_of_the_first_shape_decode() -> None:
    decoders = {
        "connected": env.decode_connected_payload,
        "disconnected": env.decode_disconnected_payload,
        "rejected": env.decode_rejected_payload,
    }
    seen = set()
    for topic, _, line in FIXTURE_RECORDS:
        if topic is EVENTS:
            event = env.decode_event(line)
            if event.kind in decoders:
                decoders[event.kind](event.payload)
                seen.add(event.kind)
    assert seen == set(decoders)


def _without_docs(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {k: _without_docs(v) for k, v in schema.items() if k not in ("description", "title")}
    if isinstance(schema, list):
        return [_without_docs(v) for v in schema]
    return schema


def test_schemas_keep_the_evolution_rule() -> None:
    """Fields of the first shape keep their type and required-ness; newer fields have defaults."""
    first = json.loads((FIXTURES / "schemas.v1.json").read_text())
    now = schemas()
    for name, old in first.items():
        assert name in now, f"{name} was removed"
        new = now[name]
        assert set(new.get("required", [])) == set(old.get("required", [])), (
            f"{name}: required fields changed (a new field needs a default)"
        )
        for field, old_schema in old["properties"].items():
            assert field in new["properties"], f"{name}.{field} was removed"
            assert _without_docs(new["properties"][field]) == _without_docs(old_schema), (
                f"{name}.{field} changed its type"
            )


def test_structs_are_frozen_keyword_only_and_tolerant() -> None:
    for name in schemas():
        struct = getattr(env, name)
        config = struct.__struct_config__
        assert config.frozen, name
        parameters = inspect.signature(struct).parameters.values()
        assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in parameters), name
        assert not config.forbid_unknown_fields, name
        assert not config.omit_defaults, name
        # snake_case on the wire: no rename, every encoded name is the field's name.
        info = mi.type_info(struct)
        assert isinstance(info, mi.StructType)
        assert all(f.encode_name == f.name for f in info.fields), name
        assert all(re.fullmatch(r"[a-z][a-z0-9_]*", f.name) for f in info.fields), name


# --- property test: every value the schema allows decodes, and re-encodes the same -------------


def _schema_for(struct: type[msgspec.Struct]) -> dict[str, Any]:
    components = schemas()
    ref_prefix = SCHEMA_REF.format(name="")
    text = json.dumps(components).replace(ref_prefix, "#/definitions/")
    return {"$ref": f"#/definitions/{struct.__name__}", "definitions": json.loads(text)}


# msgspec reads int64/uint64; JSON Schema's integer is unbounded.
_INT_RANGE = {"minimum": -(2**63), "maximum": 2**63 - 1}
# Free-form objects (OCPP payloads, alert details) kept small: generating deep
# arbitrary JSON is slow and tests nothing of the envelope.
_SMALL_OBJECT = {
    "maxProperties": 3,
    "additionalProperties": {"type": ["string", "integer", "boolean", "null"]},
}


def _bounded(schema: Any) -> Any:
    if isinstance(schema, dict):
        bounded = {k: _bounded(v) for k, v in schema.items()}
        if bounded.get("type") == "integer":
            bounded = {**_INT_RANGE, **bounded}
        kind = bounded.get("type")
        if (kind == "object" or (isinstance(kind, list) and "object" in kind)) and (
            "properties" not in bounded
        ):
            bounded = {**bounded, **_SMALL_OBJECT}
        return bounded
    if isinstance(schema, list):
        return [_bounded(v) for v in schema]
    return schema


@functools.cache
def _values_allowed_by_schema(topic: Topic) -> st.SearchStrategy[Any]:
    return from_schema(_bounded(_schema_for(topic.value_type)))


@pytest.mark.parametrize("topic", CATALOGUE, ids=lambda t: t.name)
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_value_the_schema_allows_decodes(topic: Topic, data: st.DataObject) -> None:
    value = data.draw(_values_allowed_by_schema(topic))
    raw = json.dumps(value).encode()
    decoded = DECODERS[topic.name](raw)
    again = ENCODERS[topic.name](decoded)
    assert again is not None
    assert DECODERS[topic.name](again) == decoded


# --- headers ------------------------------------------------------------------------------------


def _all_examples() -> list[tuple[Topic, Any]]:
    return [(by_name(name), example) for name, examples in EXAMPLES.items() for example in examples]


@pytest.mark.parametrize(
    ("topic", "example"), _all_examples(), ids=[f"{t.name}-{e.name}" for t, e in _all_examples()]
)
def test_every_record_carries_the_cloudevents_headers(topic: Topic, example: Any) -> None:
    headers = example.headers
    assert all(isinstance(name, str) and isinstance(value, bytes) for name, value in headers)
    names = [name for name, _ in headers]
    assert len(names) == len(set(names)), "a header appears twice"
    read = hdr.read_headers(headers)
    assert read.ce_specversion == "1.0"
    assert read.ce_id
    assert read.ce_type in topic.ce_types
    assert read.ce_source is not None
    assert read.ce_source.startswith("/")
    time = read.time()
    assert time is not None
    assert time.utcoffset() == timedelta(0)
    assert read.ce_time is not None
    assert read.ce_time.endswith("Z")
    if example.value is None:
        assert read.ce_type == f"{topic.ce_type_prefix}.deleted"
        assert read.content_type is None
    else:
        assert read.content_type == "application/json"
        # ce_time is the envelope's own timestamp, written as in the value.
        assert f'"{read.ce_time}"'.encode() in ENCODERS[topic.name](example.value)
    ocpp = {name for name in names if name.startswith("ocpp-")}
    assert ocpp <= set(topic.ocpp_headers)


def test_event_headers_name_the_action_version_and_gateway() -> None:
    headers = hdr.event_headers(_event(action="MeterValues", ocpp_version="1.6"))
    assert headers == [
        ("ce_specversion", b"1.0"),
        ("ce_id", b"c-1:m-1"),
        ("ce_type", b"csms.ocpp.event.call"),
        ("ce_source", b"/csms/gateway/gw-1"),
        ("ce_time", b"2026-03-01T12:15:00.123456Z"),
        ("content-type", b"application/json"),
        ("ocpp-version", b"1.6"),
        ("ocpp-action", b"MeterValues"),
    ]
    lifecycle = dict(hdr.event_headers(_event(kind="connected", action=None)))
    assert "ocpp-action" not in lifecycle
    assert lifecycle["ce_type"] == b"csms.ocpp.event.connected"


def test_command_headers_use_the_command_id_and_source() -> None:
    headers = dict(hdr.command_headers(_command(kind="call_error", ocpp_version="2.1")))
    assert headers["ce_id"] == b"cmd-1"
    assert headers["ce_type"] == b"csms.ocpp.command.call_error"
    assert headers["ce_source"] == b"/test"
    assert headers["ocpp-action"] == b"Reset"
    assert headers["ocpp-version"] == b"2.1"
    assert "ocpp-version" not in dict(hdr.command_headers(_command()))


def test_ce_types_cover_every_kind_of_record() -> None:
    assert EVENTS.ce_types == (
        "csms.ocpp.event.call",
        "csms.ocpp.event.send",
        "csms.ocpp.event.connected",
        "csms.ocpp.event.disconnected",
        "csms.ocpp.event.rejected",
    )
    for kind in ("call", "send", "connected", "disconnected", "rejected"):
        assert dict(hdr.event_headers(_event(kind=kind)))["ce_type"].decode() in EVENTS.ce_types
    for kind in ("call", "call_result", "call_error"):
        assert (
            dict(hdr.command_headers(_command(kind=kind)))["ce_type"].decode() in COMMANDS.ce_types
        )
    for topic in CATALOGUE:
        assert all(re.fullmatch(r"csms(\.[a-z_-]+)+", t) for t in topic.ce_types), topic.name


def test_ce_id_is_the_same_for_a_duplicate_and_differs_between_records() -> None:
    assert hdr.event_headers(_event()) == hdr.event_headers(_event())
    ids = [hdr.read_headers(e.headers).ce_id for examples in EXAMPLES.values() for e in examples]
    assert len(ids) == len(set(ids))


def test_tombstones_only_on_compacted_topics() -> None:
    headers = dict(hdr.tombstone_headers(STATIONS, "CP-1", source="/ops", at=AT))
    assert headers["ce_type"] == b"csms.station.deleted"
    assert "content-type" not in headers
    presence = dict(hdr.tombstone_headers(PRESENCE, "CP-1", source="/csms/gateway/g", at=AT))
    assert presence["ce_type"] == b"csms.ocpp.presence.deleted"
    with pytest.raises(ValueError, match="not compacted"):
        hdr.tombstone_headers(EVENTS, "CP-1", source="/ops", at=AT)


def test_ce_time_is_utc_text_even_for_another_offset() -> None:
    # Producers pass UTC; a datetime with another offset is still RFC 3339.
    plus_two = AT.astimezone(timezone(timedelta(hours=2)))
    text = dict(hdr.event_headers(_event(received_at=plus_two)))["ce_time"].decode()
    assert datetime.fromisoformat(text) == AT


def test_read_headers_ignores_others_and_takes_the_last_of_a_name() -> None:
    read = hdr.read_headers(
        [("ce_type", b"first"), ("traceparent", b"00-ab"), ("ce_type", b"second"), ("ce_id", None)]
    )
    assert read.ce_type == "second"
    assert read.ce_id is None
    assert read.ocpp_action is None
    assert read.time() is None
    assert hdr.header([("ocpp-action", b"A"), ("ocpp-action", b"B")], "ocpp-action") == "B"
    assert hdr.header([], "ocpp-action") is None


def test_sources() -> None:
    assert hdr.gateway_source("gw-1") == "/csms/gateway/gw-1"
    assert hdr.worker_source("sessions", "pod-1") == "/csms/workers/sessions/pod-1"


# --- the guide's examples -----------------------------------------------------------------------


def _guide_records() -> list[dict[str, Any]]:
    text = (ROOT / "docs" / "topics.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```json\n(.*?)```", text, flags=re.DOTALL)
    records = [json.loads(block) for block in blocks]
    return [r for r in records if isinstance(r, dict) and "topic" in r]


def test_the_guide_shows_a_valid_record_of_every_topic() -> None:
    records = _guide_records()
    assert {r["topic"] for r in records} == {t.name for t in CATALOGUE}
    for record in records:
        topic = by_name(record["topic"])
        value = None if record["value"] is None else json.dumps(record["value"]).encode()
        if value is None:
            assert topic.compacted, record
        else:
            assert isinstance(DECODERS[topic.name](value), topic.value_type)
        headers = [(k, v.encode()) for k, v in record["headers"].items()]
        assert hdr.read_headers(headers).ce_type in topic.ce_types, record
        assert record["key"]


# --- the modules --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "module", ["contracts.envelopes", "contracts.headers", "contracts.topics", "contracts.asyncapi"]
)
def test_all_names_every_public_definition(module: str) -> None:
    loaded = importlib.import_module(module)
    for name in loaded.__all__:
        assert hasattr(loaded, name), f"{module}.__all__ names a missing {name}"
    defined = {
        name
        for name, value in vars(loaded).items()
        if not name.startswith("_")
        and (inspect.isclass(value) or inspect.isfunction(value))
        and value.__module__ == module
    }
    assert defined <= set(loaded.__all__)


def test_the_pure_contracts_import_no_io_library() -> None:
    # A downstream service can vendor envelopes, headers and topics (ADR 0001).
    code = (
        "import json, sys, contracts.envelopes, contracts.headers, contracts.topics; "
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(json.loads(done.stdout))
    assert "msgspec" in loaded
    assert not loaded & {"aiokafka", "websockets", "yaml", "orjson", "gateway", "workers"}
