"""The generated OCPP payload types, the action tables, and decoding with them.

The systematic comparison with the official schemas is test_conformance.py;
this file pins the shape of the API and the conventions of the types.
"""

from __future__ import annotations

import inspect
import types
from datetime import UTC, datetime
from typing import Any, Final

import msgspec
import pytest

import contracts.ocpp
from contracts.ocpp import SUBPROTOCOLS, VERSIONS, OcppVersion, actions, v16, v21, v201
from contracts.ocpp import validation as validation_module
from contracts.ocpp.errors import Violation, error_code
from contracts.ocpp.validation import (
    PayloadError,
    UnknownAction,
    decode_request,
    decode_response,
    encode,
    payload_error,
)

MODULES: Final = {"1.6": v16, "2.0.1": v201, "2.1": v21}

# The 640-byte MeterValues of a charging session (ARCHITECTURE.md's decode budget).
METER_VALUES_640: Final = (
    b'{"connectorId":1,"transactionId":1234567890,"meterValue":[{"timestamp":'
    b'"2024-05-01T12:15:00Z","sampledValue":[{"value":"123456.789","context":"Sample.Periodic",'
    b'"measurand":"Energy.Active.Import.Register","location":"Outlet","unit":"kWh"},'
    b'{"value":"7360.0","context":"Sample.Periodic","measurand":"Power.Active.Import",'
    b'"location":"Outlet","unit":"W"},{"value":"16.00","context":"Sample.Periodic",'
    b'"measurand":"Current.Import","phase":"L1","unit":"A"},{"value":"230.4","context":'
    b'"Sample.Periodic","measurand":"Voltage","phase":"L1-N","unit":"V"},{"value":"55",'
    b'"context":"Sample.Periodic","measurand":"SoC","location":"EV","unit":"Percent"}]}]}'
)


def structs(module: types.ModuleType) -> list[type[msgspec.Struct]]:
    return [
        value
        for value in vars(module).values()
        if isinstance(value, type)
        and issubclass(value, msgspec.Struct)
        and value.__module__ == module.__name__
    ]


# -- the action tables ---------------------------------------------------------------


def test_each_version_has_its_actions() -> None:
    counts = {version: len(actions(version)) for version in VERSIONS}
    assert counts == {"1.6": 39, "2.0.1": 64, "2.1": 91}


@pytest.mark.parametrize("version", VERSIONS)
def test_every_action_has_a_request_and_a_response_type(version: OcppVersion) -> None:
    module = MODULES[version]
    for name, action in actions(version).items():
        assert action.name == name
        assert action.request is getattr(module, f"{name}Request")
        if (version, name) == ("2.1", "NotifyPeriodicEventStream"):
            assert action.response is None  # a SEND: 2.1 Part 4 §4.2.4
            assert not hasattr(module, f"{name}Response")
        else:
            assert action.response is getattr(module, f"{name}Response")


@pytest.mark.parametrize(
    ("version", "action", "initiator"),
    [
        ("1.6", "BootNotification", "station"),
        ("1.6", "StopTransaction", "station"),
        ("1.6", "RemoteStartTransaction", "csms"),
        ("1.6", "GetCompositeSchedule", "csms"),
        ("1.6", "SignCertificate", "station"),  # security whitepaper §5.17
        ("1.6", "CertificateSigned", "csms"),  # security whitepaper §5.1
        ("1.6", "DataTransfer", "both"),
        ("2.0.1", "TransactionEvent", "station"),
        ("2.0.1", "RequestStartTransaction", "csms"),
        ("2.0.1", "DataTransfer", "both"),
        ("2.1", "NotifyPeriodicEventStream", "station"),
        ("2.1", "SetDefaultTariff", "csms"),
        ("2.1", "DataTransfer", "both"),
    ],
)
def test_who_sends_the_request(version: OcppVersion, action: str, initiator: str) -> None:
    assert actions(version)[action].initiator == initiator


def test_only_data_transfer_goes_both_ways() -> None:
    for version in VERSIONS:
        both = {name for name, a in actions(version).items() if a.initiator == "both"}
        assert both == {"DataTransfer"}


def test_21_keeps_every_201_action_and_its_direction() -> None:
    v2_0_1, v2_1 = actions("2.0.1"), actions("2.1")
    assert {name: a.initiator for name, a in v2_0_1.items()}.items() <= {
        name: a.initiator for name, a in v2_1.items()
    }.items()


def test_the_action_tables_are_read_only() -> None:
    table: Any = actions("1.6")
    with pytest.raises(TypeError):
        table["Heartbeat"] = table["BootNotification"]


def test_an_unknown_version_has_no_table() -> None:
    with pytest.raises(ValueError, match="unknown OCPP version"):
        actions("1.5")  # type: ignore[arg-type]


def test_subprotocols_name_every_version() -> None:
    assert sorted(SUBPROTOCOLS.values()) == sorted(VERSIONS)
    assert SUBPROTOCOLS["ocpp1.6"] == "1.6"
    assert SUBPROTOCOLS["ocpp2.0.1"] == "2.0.1"
    assert SUBPROTOCOLS["ocpp2.1"] == "2.1"


@pytest.mark.parametrize("module", [contracts.ocpp, validation_module, v16, v201, v21])
def test_all_lists_the_public_names(module: types.ModuleType) -> None:
    exported = module.__all__
    assert len(set(exported)) == len(exported)
    assert all(hasattr(module, name) for name in exported)
    defined_here = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and isinstance(value, type | types.FunctionType)
        and value.__module__ == module.__name__
    }
    assert defined_here <= set(exported)


# -- the conventions of the types ----------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_every_type_is_frozen_keyword_only_and_untracked(version: OcppVersion) -> None:
    for struct in structs(MODULES[version]):
        config = struct.__struct_config__
        assert config.frozen, struct
        assert config.omit_defaults, struct
        assert not config.gc, struct  # nothing in a payload can form a reference cycle
        parameters = inspect.signature(struct).parameters.values()
        assert all(p.kind is p.KEYWORD_ONLY for p in parameters), struct


@pytest.mark.parametrize("version", VERSIONS)
def test_an_optional_property_defaults_to_unset_never_none(version: OcppVersion) -> None:
    for struct in structs(MODULES[version]):
        for field in msgspec.structs.fields(struct):
            assert field.default in (msgspec.NODEFAULT, msgspec.UNSET), (struct, field)
            assert field.default_factory is msgspec.NODEFAULT, (struct, field)


@pytest.mark.parametrize("version", VERSIONS)
def test_only_custom_data_accepts_unknown_properties(version: OcppVersion) -> None:
    # 2.0.1/2.1 CustomDataType is the schemas' one object without
    # "additionalProperties": false (Part 4 §9, the CustomData extension).
    open_types = {s.__name__ for s in structs(MODULES[version])}
    open_types = {
        n
        for n in open_types
        if not getattr(MODULES[version], n).__struct_config__.forbid_unknown_fields
    }
    assert open_types == (set() if version == "1.6" else {"CustomDataType"})


def test_python_names_are_snake_case_and_wire_names_are_the_schemas() -> None:
    fields = {f.name: f.encode_name for f in msgspec.structs.fields(v16.MeterValuesRequest)}
    assert fields == {
        "connector_id": "connectorId",
        "transaction_id": "transactionId",
        "meter_value": "meterValue",
    }
    ev = {f.name: f.encode_name for f in msgspec.structs.fields(v21.EVPowerScheduleEntryType)}
    assert ev["duration"] == "duration"
    charging_needs = {
        f.encode_name: f.name for f in msgspec.structs.fields(v21.V2XChargingParametersType)
    }
    assert charging_needs["evMaxV2XEnergyRequest"] == "ev_max_v2x_energy_request"


def field_type(struct: type[msgspec.Struct], wire_name: str) -> Any:
    (field,) = [f for f in msgspec.structs.fields(struct) if f.encode_name == wire_name]
    return field.type


def test_1_6_inline_types_have_the_specs_names_once() -> None:
    # OCPP 1.6 edition 2 §7: one type, however many schemas inline it
    for response in (
        v16.AuthorizeResponse,
        v16.StartTransactionResponse,
        v16.StopTransactionResponse,
    ):
        assert field_type(response, "idTagInfo") in (
            v16.IdTagInfo,
            v16.IdTagInfo | msgspec.UnsetType,
        )
    assert field_type(v16.SetChargingProfileRequest, "csChargingProfiles") is v16.ChargingProfile
    # StopTransaction's transactionData and MeterValues' meterValue: one MeterValue
    assert field_type(v16.StopTransactionRequest, "transactionData") == (
        tuple[v16.MeterValue, ...] | msgspec.UnsetType
    )


# -- decoding and encoding -------------------------------------------------------------

ROUND_TRIPS: Final = [
    ("1.6", "request", "MeterValues", METER_VALUES_640),
    (
        "1.6",
        "request",
        "BootNotification",
        b'{"chargePointVendor":"VendorX","chargePointModel":"SingleSocketCharger"}',
    ),
    (
        "1.6",
        "response",
        "StartTransaction",
        b'{"idTagInfo":{"expiryDate":"2024-06-01T00:00:00Z","status":"Accepted"},"transactionId":7}',
    ),
    (
        "1.6",
        "request",
        "SetChargingProfile",
        b'{"connectorId":1,"csChargingProfiles":{"chargingProfileId":1,"stackLevel":0,'
        b'"chargingProfilePurpose":"TxDefaultProfile","chargingProfileKind":"Absolute",'
        b'"chargingSchedule":{"chargingRateUnit":"A","chargingSchedulePeriod":'
        b'[{"startPeriod":0,"limit":16.0},{"startPeriod":3600,"limit":21.4}]}}}',
    ),
    (
        "2.0.1",
        "request",
        "TransactionEvent",
        b'{"eventType":"Started","timestamp":"2024-05-01T12:15:00.500000+02:00",'
        b'"triggerReason":"Authorized","seqNo":0,"transactionInfo":{"transactionId":"tx-1"},'
        b'"evse":{"id":1,"connectorId":1},"idToken":{"idToken":"04A2B3C4","type":"ISO14443"}}',
    ),
    (
        "2.0.1",
        "response",
        "BootNotification",
        b'{"currentTime":"2024-05-01T12:15:00Z","interval":300,"status":"Accepted"}',
    ),
    (
        "2.1",
        "request",
        "NotifyPeriodicEventStream",
        b'{"data":[{"t":1.5,"v":"230.4"}],"id":1,"pending":0,"basetime":"2024-05-01T12:15:00Z"}',
    ),
]


@pytest.mark.parametrize(("version", "direction", "action", "payload"), ROUND_TRIPS)
def test_encode_gives_back_the_payload_it_decoded(
    version: OcppVersion, direction: str, action: str, payload: bytes
) -> None:
    decode = decode_request if direction == "request" else decode_response
    assert encode(decode(version, action, payload)) == payload


def test_the_meter_values_sample_is_the_benchmarks_640_bytes() -> None:
    assert len(METER_VALUES_640) == 640
    request = decode_request("1.6", "MeterValues", METER_VALUES_640)
    assert isinstance(request, v16.MeterValuesRequest)
    (reading,) = request.meter_value
    assert reading.timestamp == datetime(2024, 5, 1, 12, 15, tzinfo=UTC)
    assert [s.measurand for s in reading.sampled_value][:2] == [
        "Energy.Active.Import.Register",
        "Power.Active.Import",
    ]
    assert isinstance(reading.sampled_value, tuple)


def test_an_unset_optional_property_is_absent_on_the_wire() -> None:
    boot = v16.BootNotificationRequest(charge_point_vendor="VendorX", charge_point_model="M1")
    assert encode(boot) == b'{"chargePointVendor":"VendorX","chargePointModel":"M1"}'
    assert boot.firmware_version is msgspec.UNSET
    status = v201.StatusNotificationRequest(
        timestamp=datetime(2024, 5, 1, tzinfo=UTC),
        connector_status="Available",
        evse_id=1,
        connector_id=1,
    )
    assert b"customData" not in encode(status)


def test_null_is_not_an_absent_optional_property() -> None:
    with pytest.raises(PayloadError) as caught:
        decode_request(
            "1.6",
            "BootNotification",
            b'{"chargePointVendor":"V","chargePointModel":"M","iccid":null}',
        )
    assert caught.value.violation is Violation.TYPE
    assert caught.value.path == "$.iccid"


def test_a_timestamp_without_offset_is_accepted_as_naive() -> None:
    # ADR 0002: a deliberate leniency for 1.6 field chargers; downstream treats it as UTC.
    heartbeat = decode_response("1.6", "Heartbeat", b'{"currentTime":"2024-05-01T12:15:00"}')
    assert isinstance(heartbeat, v16.HeartbeatResponse)
    assert heartbeat.current_time == datetime(2024, 5, 1, 12, 15)
    assert heartbeat.current_time.tzinfo is None


def test_custom_data_extension_properties_are_accepted_and_not_kept() -> None:
    payload = b'{"customData":{"vendorId":"com.example","mainMeterValue":12345}}'
    heartbeat = decode_request("2.0.1", "Heartbeat", payload)
    assert encode(heartbeat) == b'{"customData":{"vendorId":"com.example"}}'


@pytest.mark.parametrize(
    "payload",
    [
        b'{"idTag":"04A2B3C4"}',
        memoryview(b'{"idTag":"04A2B3C4"}'),
        msgspec.Raw(b'{"idTag":"04A2B3C4"}'),
    ],
    ids=["bytes", "memoryview", "Raw"],
)
def test_a_payload_decodes_from_any_buffer(payload: Any) -> None:
    assert decode_request("1.6", "Authorize", payload) == v16.AuthorizeRequest(id_tag="04A2B3C4")


def test_a_payload_left_raw_by_the_frame_decoder_decodes() -> None:
    frame = b'[2,"19223201","Authorize",{"idTag":"04A2B3C4"}]'
    *_, raw = msgspec.json.decode(frame, type=tuple[int, str, str, msgspec.Raw])
    assert decode_request("1.6", "Authorize", raw) == v16.AuthorizeRequest(id_tag="04A2B3C4")


# -- unknown actions -----------------------------------------------------------------


def test_an_action_the_version_does_not_have_is_unknown() -> None:
    with pytest.raises(UnknownAction, match="has no action 'TransactionEvent'"):
        decode_request("1.6", "TransactionEvent", b"{}")
    with pytest.raises(UnknownAction, match="has no action 'StartTransaction'"):
        decode_response("2.0.1", "StartTransaction", b"{}")


def test_a_send_has_no_response() -> None:
    with pytest.raises(UnknownAction, match="is a SEND"):
        decode_response("2.1", "NotifyPeriodicEventStream", b"{}")


def test_an_unknown_version_is_unknown() -> None:
    with pytest.raises(UnknownAction, match="unknown OCPP version"):
        decode_request("1.5", "Heartbeat", b"{}")  # type: ignore[arg-type]
    assert issubclass(UnknownAction, LookupError)


# -- the violation of each kind of error, per version -----------------------------------

# (payload, violation, path) per version; every category at least twice.
VIOLATIONS: Final[dict[str, list[tuple[str, bytes, Violation, str]]]] = {
    "1.6": [
        ("StatusNotification", b"[]", Violation.FORMAT, "$"),
        ("StatusNotification", b'{"connectorId":1', Violation.FORMAT, "$"),
        (
            "StatusNotification",
            b'{"connectorId":1,"errorCode":"NoError","status":"Available","x":1}',
            Violation.FORMAT,
            "$",
        ),
        (
            "StatusNotification",
            b'{"connectorId":"1","errorCode":"NoError","status":"Available"}',
            Violation.TYPE,
            "$.connectorId",
        ),
        (
            "StatusNotification",
            b'{"connectorId":1,"errorCode":"NoError","status":"Available","info":null}',
            Violation.TYPE,
            "$.info",
        ),
        (
            "StatusNotification",
            b'{"connectorId":1,"errorCode":"NoError"}',
            Violation.OCCURRENCE,
            "$",
        ),
        ("MeterValues", b'{"connectorId":1,"meterValue":[]}', Violation.OCCURRENCE, "$.meterValue"),
        (
            "StatusNotification",
            b'{"connectorId":1,"errorCode":"NoError","status":"Idle"}',
            Violation.PROPERTY,
            "$.status",
        ),
        (
            "StatusNotification",
            b'{"connectorId":1,"errorCode":"NoError","status":"Available","info":"'
            + b"x" * 51
            + b'"}',
            Violation.PROPERTY,
            "$.info",
        ),
        (
            "StatusNotification",
            b'{"connectorId":1,"errorCode":"NoError","status":"Available","timestamp":"yesterday"}',
            Violation.PROPERTY,
            "$.timestamp",
        ),
    ],
    "2.0.1": [
        ("Heartbeat", b'"beat"', Violation.FORMAT, "$"),
        ("Heartbeat", b'{"beat":1}', Violation.FORMAT, "$"),
        ("Heartbeat", b'{"customData":{"vendorId":7}}', Violation.TYPE, "$.customData.vendorId"),
        ("Heartbeat", b'{"customData":null}', Violation.TYPE, "$.customData"),
        ("Heartbeat", b'{"customData":{}}', Violation.OCCURRENCE, "$.customData"),
        (
            "GetVariables",
            b'{"getVariableData":[]}',
            Violation.OCCURRENCE,
            "$.getVariableData",
        ),
        (
            "ClearCache",
            b'{"customData":{"vendorId":"' + b"v" * 256 + b'"}}',
            Violation.PROPERTY,
            "$.customData.vendorId",
        ),
        ("Reset", b'{"type":"Hard"}', Violation.PROPERTY, "$.type"),
        (
            "NotifyEVChargingNeeds",
            b'{"evseId":1,"chargingNeeds":{"requestedEnergyTransfer":"DC",'
            b'"dcChargingParameters":{"evMaxCurrent":100,"evMaxVoltage":400,"stateOfCharge":101}}}',
            Violation.PROPERTY,
            "$.chargingNeeds.dcChargingParameters.stateOfCharge",
        ),
    ],
    "2.1": [
        ("Heartbeat", b"null", Violation.FORMAT, "$"),
        ("Heartbeat", b'{"customData":{"vendorId":"v"},"other":true}', Violation.FORMAT, "$"),
        (
            "NotifyPeriodicEventStream",
            b'{"id":1,"pending":0,"basetime":"2024-05-01T12:15:00Z","data":{}}',
            Violation.TYPE,
            "$.data",
        ),
        (
            "NotifyPeriodicEventStream",
            b'{"id":1.5,"pending":0,"basetime":"2024-05-01T12:15:00Z","data":[{"t":1,"v":"x"}]}',
            Violation.TYPE,
            "$.id",
        ),
        (
            "NotifyPeriodicEventStream",
            b'{"id":1,"pending":0,"data":[{"t":1,"v":"x"}]}',
            Violation.OCCURRENCE,
            "$",
        ),
        (
            "NotifyPeriodicEventStream",
            b'{"id":1,"pending":0,"basetime":"2024-05-01T12:15:00Z","data":[]}',
            Violation.OCCURRENCE,
            "$.data",
        ),
        (
            "NotifyPeriodicEventStream",
            b'{"id":-1,"pending":0,"basetime":"2024-05-01T12:15:00Z","data":[{"t":1,"v":"x"}]}',
            Violation.PROPERTY,
            "$.id",
        ),
        (
            "NotifyPeriodicEventStream",
            b'{"id":1,"pending":0,"basetime":"2024-13-01T12:15:00Z","data":[{"t":1,"v":"x"}]}',
            Violation.PROPERTY,
            "$.basetime",
        ),
    ],
}
CODES: Final = {
    "1.6": {
        Violation.FORMAT: "FormationViolation",
        Violation.TYPE: "TypeConstraintViolation",
        Violation.OCCURRENCE: "OccurenceConstraintViolation",
        Violation.PROPERTY: "PropertyConstraintViolation",
    },
    "2.0.1": {
        Violation.FORMAT: "FormatViolation",
        Violation.TYPE: "TypeConstraintViolation",
        Violation.OCCURRENCE: "OccurrenceConstraintViolation",
        Violation.PROPERTY: "PropertyConstraintViolation",
    },
}
CODES["2.1"] = CODES["2.0.1"]


@pytest.mark.parametrize(
    ("version", "action", "payload", "violation", "path"),
    [(version, *case) for version, cases in VIOLATIONS.items() for case in cases],
)
def test_each_kind_of_error_is_its_violation(
    version: OcppVersion, action: str, payload: bytes, violation: Violation, path: str
) -> None:
    with pytest.raises(PayloadError) as caught:
        decode_request(version, action, payload)
    assert (caught.value.violation, caught.value.path) == (violation, path)
    assert error_code(caught.value.violation, version) == CODES[version][violation]
    assert str(caught.value).startswith(f"{path}: ")


def test_every_violation_is_tested_for_every_version() -> None:
    for cases in VIOLATIONS.values():
        assert {violation for *_, violation, _ in cases} == set(Violation)


@pytest.mark.parametrize(
    ("message", "violation", "path", "reason"),
    [
        (
            "Object missing required field `status`",
            Violation.OCCURRENCE,
            "$",
            "Object missing required field `status`",
        ),
        (
            "Object contains unknown field `x` - at `$.a[2]`",
            Violation.FORMAT,
            "$.a[2]",
            "Object contains unknown field `x`",
        ),
        ("Expected `object`, got `array`", Violation.FORMAT, "$", "Expected `object`, got `array`"),
        (
            "Expected `object`, got `array` - at `$.a`",
            Violation.TYPE,
            "$.a",
            "Expected `object`, got `array`",
        ),
        (
            "Expected `array` of length <= 4 - at `$.a`",
            Violation.OCCURRENCE,
            "$.a",
            "Expected `array` of length <= 4",
        ),
        (
            "Expected `str` of length <= 20 - at `$.a`",
            Violation.PROPERTY,
            "$.a",
            "Expected `str` of length <= 20",
        ),
        ("Number out of range - at `$.v`", Violation.PROPERTY, "$.v", "Number out of range"),
        # a value echoed in the message cannot move the path: the last " - at `...`" counts
        (
            "Invalid enum value 'x - at `$.y`' - at `$.z`",
            Violation.PROPERTY,
            "$.z",
            "Invalid enum value 'x - at `$.y`'",
        ),
    ],
)
def test_payload_error_reads_msgspecs_words(
    message: str, violation: Violation, path: str, reason: str
) -> None:
    error = payload_error(msgspec.ValidationError(message))
    assert (error.violation, error.path, error.reason) == (violation, path, reason)


def test_invalid_json_is_a_format_violation() -> None:
    error = payload_error(msgspec.DecodeError("Input data was truncated"))
    assert (error.violation, error.path) == (Violation.FORMAT, "$")
    assert error.reason == "invalid JSON: Input data was truncated"


@pytest.mark.parametrize(
    "payload",
    [b'{"reason": "\xc3"}', '{"reason": "\ud800"}', b"[" * 10_000],
    ids=["invalid-utf8", "lone-surrogate", "deep-nesting"],
)
def test_undecodable_payloads_are_format_violations_not_crashes(payload: bytes | str) -> None:
    # raw payloads may come from anywhere (a command on Kafka), not only through the codec
    for decode in (decode_request, decode_response):
        with pytest.raises(PayloadError) as raised:
            decode("2.0.1", "BootNotification", payload)  # type: ignore[arg-type]
        assert raised.value.violation is Violation.FORMAT
