"""Conformance of the generated OCPP payload types with the official OCA JSON schemas.

For every action of every version, request and response, the official schema
(jsonschema, the draft its ``$schema`` names, date-time checked with
rfc3339-validator) is the oracle, and our decoder must agree with it:

(a) what the schema accepts decodes, and survives ``encode`` (the encoding is
    schema-valid and decodes to the same value): payloads hypothesis-jsonschema
    draws from the schema, a payload with every property set, and the example
    payloads of the specifications;
(b) what the schema rejects is rejected, for the same reason at the same place:
    mutants of small valid payloads, derived from each schema (a required
    property removed, a wrong JSON type, ``null`` for an optional property, a
    string one character too long, a value outside the enumeration, a number
    out of range, too few or too many items, an unknown property, a bad
    date-time, a payload that is not an object); the oracle must report the
    mutant's category at the mutant's path, our ``PayloadError`` must carry the
    same ``Violation`` and path, and ``error_code`` must spell it as the
    version does (1.6 ``OccurenceConstraintViolation`` ...).

A definition shared by many schemas (2.x ``IdTokenType``) is mutated in the
first schema that uses it, in name order; every schema's own properties are
mutated in every schema.

Deliberate disagreements are not skipped: each one is an entry of ``KNOWN``,
and a mutant that hits it asserts the disagreement itself (the schema rejects
and we accept, or the reverse), so fixing either side fails this test until the
entry goes; docs/contracts.md lists the same entries.

``CSMS_CONFORMANCE_EXAMPLES=200`` draws more hypothesis examples per schema
(default 2, to keep the file within seconds on two cores).
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from functools import cache
from importlib import resources
from typing import Any, Final, Literal

import jsonschema
import msgspec
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis_jsonschema import from_schema

from contracts.ocpp import VERSIONS, OcppVersion, actions
from contracts.ocpp.errors import Violation, error_code
from contracts.ocpp.validation import PayloadError, decode_request, decode_response, encode

Direction = Literal["request", "response"]

EXAMPLES: Final = settings(
    max_examples=int(os.environ.get("CSMS_CONFORMANCE_EXAMPLES", "2")),
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# The deliberate disagreements, by name (docs/contracts.md, "Where the types and
# the schemas disagree"). "lenient": the schema rejects, we accept; "stricter":
# the schema accepts, we reject.
KNOWN: Final[dict[str, tuple[Literal["lenient", "stricter"], str]]] = {
    "date-time-without-offset": (
        "lenient",
        "a timestamp without offset is accepted (a naive datetime, UTC downstream)",
    ),
    "date-time-space-separator": (
        "lenient",
        "RFC 3339 §5.6 allows a space for T by agreement; rfc3339-validator does not",
    ),
    "multiple-of": ("lenient", "multipleOf 0.1 (1.6 charging rates) is not enforced"),
    "integral-float-for-integer": (
        "stricter",
        "2.0 for an integer: draft-06 accepts it, msgspec wants a JSON integer",
    ),
    "unit-hertz-in-stop-transaction": (
        "lenient",
        "1.6 StopTransaction shares MeterValues' UnitOfMeasure, which has Hertz",
    ),
    "empty-sampled-value": (
        "lenient",
        "1.6 MeterValues shares StopTransaction's MeterValue, which allows no samples",
    ),
    "number-beyond-double": (
        "stricter",
        "1e400 is a JSON number the schema accepts; a float cannot hold it",
    ),
    "lone-surrogate": (
        "stricter",
        "a \\ud800 escape is invalid Unicode: Python's json accepts it, msgspec does not",
    ),
}

# Where a systematic mutant meets a merged type (contracts/codegen/names.py).
KNOWN_AT: Final[dict[tuple[str, str, str, str], str]] = {
    ("1.6", "MeterValues.json", "$.meterValue[0].sampledValue", "too few items"): (
        "empty-sampled-value"
    ),
}

# jsonschema keyword -> the category of the violation it reports.
CATEGORY: Final[dict[str, Violation]] = {
    "additionalProperties": Violation.FORMAT,
    "type": Violation.TYPE,
    "required": Violation.OCCURRENCE,
    "minItems": Violation.OCCURRENCE,
    "maxItems": Violation.OCCURRENCE,
    "enum": Violation.PROPERTY,
    "maxLength": Violation.PROPERTY,
    "minimum": Violation.PROPERTY,
    "maximum": Violation.PROPERTY,
    "format": Violation.PROPERTY,
    "multipleOf": Violation.PROPERTY,
}


# -- the oracle ---------------------------------------------------------------------


def _exact_multiple_of(
    validator: Any, multiple_of: Any, instance: Any, schema: Any
) -> Iterator[Any]:
    # jsonschema divides floats: 21.4 / 0.1 is 213.99999999999997, so it would
    # call 21.4 "not a multiple of 0.1". The ocpp package works around it with
    # Decimal; the oracle computes exactly on the decimal text of the numbers:
    # the schema's evident meaning.
    number = validator.is_type(instance, "number") and not isinstance(instance, bool)
    if number and Fraction(repr(instance)) % Fraction(repr(multiple_of)) != 0:
        yield jsonschema.ValidationError(f"{instance!r} is not a multiple of {multiple_of}")


_ORACLES: Final = {
    draft: jsonschema.validators.extend(draft, {"multipleOf": _exact_multiple_of})
    for draft in (jsonschema.Draft4Validator, jsonschema.Draft6Validator)
}


@dataclass(frozen=True)
class Case:
    """One schema file: the request or the response of one action."""

    version: OcppVersion
    action: str
    direction: Direction
    file: str
    schema: dict[str, Any] = field(repr=False, compare=False)

    def __str__(self) -> str:
        return f"{self.version}-{self.action}-{self.direction}"

    @property
    def draft4(self) -> bool:
        return "draft-04" in self.schema["$schema"]

    @property
    def oracle(self) -> Any:
        return _oracle(self)

    def decode(self, payload: bytes) -> msgspec.Struct:
        decode = decode_request if self.direction == "request" else decode_response
        return decode(self.version, self.action, payload)


@cache
def _oracle(case: Case) -> Any:
    draft = jsonschema.validators.validator_for(case.schema)
    oracle = _ORACLES[draft]
    return oracle(case.schema, format_checker=draft.FORMAT_CHECKER)


def _cases() -> list[Case]:
    """Every schema file the ocpp package ships, named independently of the generator."""
    cases = []
    for version, directory in zip(VERSIONS, ("v16", "v201", "v21"), strict=True):
        for entry in sorted(
            resources.files("ocpp").joinpath(directory, "schemas").iterdir(), key=lambda e: e.name
        ):
            stem = entry.name.removesuffix(".json")
            direction: Direction = "response" if stem.endswith("Response") else "request"
            action = stem.removesuffix("Response").removesuffix("Request")
            schema = json.loads(entry.read_text(encoding="utf-8"))
            cases.append(Case(version, action, direction, entry.name, schema))
    return cases


CASES: Final = _cases()


def test_every_schema_is_an_action_of_the_table() -> None:
    from_files = {(c.version, c.action, c.direction) for c in CASES}
    from_table = {
        (version, name, direction)
        for version in VERSIONS
        for name, action in actions(version).items()
        for direction in ("request", "response")
        if direction == "request" or action.response is not None
    }
    assert from_files == from_table
    assert len(CASES) == 2 * (39 + 64 + 91) - 1


def test_the_oracle_checks_date_times() -> None:
    # Without rfc3339-validator jsonschema skips "format": the mutants would then
    # say nothing about date-times.
    for draft in _ORACLES:
        assert "date-time" in draft.FORMAT_CHECKER.checkers


# -- (a) what the schema accepts decodes --------------------------------------------

_ANNOTATIONS: Final = {"description", "javaType", "comment", "title", "$id", "$schema"}


def _inlined(node: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    """``node`` with its $refs replaced by their definitions and annotations dropped.

    hypothesis-jsonschema cannot resolve a "#/definitions/..." ref under a
    ``urn:`` $id, and re-canonicalises big schemas slowly; the same schema
    without either is equivalent for drawing valid instances.
    """
    if "$ref" in node:
        return _inlined(_definition(root, node["$ref"]), root)
    inlined = {k: v for k, v in node.items() if k not in _ANNOTATIONS and k != "definitions"}
    if "properties" in node:  # property names are not keywords: a tariff has a "description"
        inlined["properties"] = {k: _inlined(v, root) for k, v in node["properties"].items()}
    if "items" in node:
        inlined["items"] = _inlined(node["items"], root)
    return inlined


def _definition(root: dict[str, Any], ref: str) -> dict[str, Any]:
    prefix = "#/definitions/"
    assert ref.startswith(prefix), ref
    definition: dict[str, Any] = root["definitions"][ref.removeprefix(prefix)]
    return definition


def _assert_round_trip(case: Case, value: msgspec.Struct, tolerate: frozenset[str]) -> None:
    """``encode`` gives what the schema accepts, and decodes to the same value."""
    encoded = encode(value)
    errors = [
        e.message
        for e in case.oracle.iter_errors(json.loads(encoded))
        if str(e.validator) not in tolerate
    ]
    assert not errors, f"{case}: the encoding of {value!r} is not schema-valid: {errors}"
    assert case.decode(encoded) == value


@pytest.mark.parametrize("case", CASES, ids=str)
def test_payloads_the_schema_accepts_decode(case: Case) -> None:
    @EXAMPLES
    @given(from_schema(_inlined(case.schema, case.schema)))
    def check(payload: Any) -> None:
        # hypothesis-jsonschema makes multiples of 0.1 in floats (6.1000000000000005),
        # which the decimal oracle refuses: the KNOWN "multiple-of", which we accept.
        tolerate = frozenset(str(e.validator) for e in case.oracle.iter_errors(payload))
        assert tolerate <= {"multipleOf"}
        value = case.decode(json.dumps(payload).encode())
        _assert_round_trip(case, value, tolerate)

    check()


@pytest.mark.parametrize("case", CASES, ids=str)
def test_a_payload_with_every_property_decodes(case: Case) -> None:
    payload = full(case.schema, case.schema)
    assert case.oracle.is_valid(payload), list(case.oracle.iter_errors(payload))
    _assert_round_trip(case, case.decode(json.dumps(payload).encode()), frozenset())


@dataclass(frozen=True)
class SpecExample:
    where: str  # the specification and section the payload is quoted from
    version: OcppVersion
    action: str
    direction: Direction
    payload: dict[str, Any]
    # None: valid; else the violation both the schema and we report (an error in the spec)
    rejected: tuple[Violation, str] | None = None


SPEC_EXAMPLES: Final = (
    SpecExample(
        "OCPP-J 1.6 §4.2.1",
        "1.6",
        "BootNotification",
        "request",
        {"chargePointVendor": "VendorX", "chargePointModel": "SingleSocketCharger"},
    ),
    # The example answers "heartbeatInterval", a name the 1.6 response does not
    # have (it is "interval"): the schema and we refuse it.
    SpecExample(
        "OCPP-J 1.6 §4.2.2",
        "1.6",
        "BootNotification",
        "response",
        {"status": "Accepted", "currentTime": "2013-02-01T20:53:32.486Z", "heartbeatInterval": 300},
        rejected=(Violation.FORMAT, "$"),
    ),
    *(
        example
        for version, part4 in (("2.0.1", "OCPP 2.0.1 Part 4"), ("2.1", "OCPP 2.1 Part 4"))
        for example in (
            SpecExample(
                f"{part4} §4.2.1",
                version,  # type: ignore[arg-type]
                "BootNotification",
                "request",
                {
                    "reason": "PowerUp",
                    "chargingStation": {"model": "SingleSocketCharger", "vendorName": "VendorX"},
                },
            ),
            SpecExample(
                f"{part4} §4.2.2",
                version,  # type: ignore[arg-type]
                "BootNotification",
                "response",
                {"currentTime": "2013-02-01T20:53:32.486Z", "interval": 300, "status": "Accepted"},
            ),
            SpecExample(
                f"{part4} §9 CustomData Extension",
                version,  # type: ignore[arg-type]
                "Heartbeat",
                "request",
                {
                    "customData": {
                        "vendorId": "com.mycompany.customheartbeat",
                        "mainMeterValue": 12345,
                        "sessionsToDate": 342,
                    }
                },
            ),
        )
    ),
    # The SEND example has "t" as a timestamp and no "basetime"; the schema has
    # "t" as seconds after a required "basetime".
    SpecExample(
        "OCPP 2.1 Part 4 §4.2.4",
        "2.1",
        "NotifyPeriodicEventStream",
        "request",
        {
            "id": 123,
            "pending": 0,
            "data": [
                {"t": "2024-08-27T12:30:40Z", "v": "230.4"},
                {"t": "2024-08-27T12:30:45Z", "v": "230.2"},
            ],
        },
        rejected=(Violation.TYPE, "$.data[0].t"),
    ),
)


@pytest.mark.parametrize("example", SPEC_EXAMPLES, ids=lambda e: f"{e.where}-{e.action}")
def test_the_specifications_examples(example: SpecExample) -> None:
    case = next(
        c
        for c in CASES
        if (c.version, c.action, c.direction)
        == (example.version, example.action, example.direction)
    )
    raw = json.dumps(example.payload).encode()
    if example.rejected is None:
        assert case.oracle.is_valid(example.payload)
        case.decode(raw)
        return
    assert not case.oracle.is_valid(example.payload)
    with pytest.raises(PayloadError) as caught:
        case.decode(raw)
    assert (caught.value.violation, caught.value.path) == example.rejected


# -- (b) what the schema rejects is rejected -----------------------------------------


def full(node: dict[str, Any], root: dict[str, Any]) -> Any:
    """A valid instance of ``node`` with every property present and one item per array."""
    return instance(node, root, every_property=True)


def instance(
    node: dict[str, Any], root: dict[str, Any], *, every_property: bool, depth: int = -1
) -> Any:
    """A valid instance of ``node``: every property or only the required ones.

    ``depth`` limits ``every_property`` to that many levels of objects (-1: all).
    """
    if "$ref" in node:
        return instance(
            _definition(root, node["$ref"]), root, every_property=every_property, depth=depth
        )
    if "enum" in node:
        return node["enum"][0]
    kind = node.get("type")
    if kind == "object":
        properties: dict[str, Any] = node.get("properties", {})
        required = node.get("required", [])
        deeper = every_property and depth != 1
        return {
            name: instance(sub, root, every_property=deeper, depth=depth - 1)
            for name, sub in properties.items()
            if (every_property and depth != 0) or name in required
        }
    if kind == "array":
        item = instance(node["items"], root, every_property=every_property, depth=depth)
        return [item] * max(1 if every_property else 0, node.get("minItems", 0))
    if kind == "string":
        if node.get("format") == "date-time":
            return "2024-05-01T12:15:00Z"
        return "https://example.com/x" if node.get("format") == "uri" else "x"
    if kind in ("integer", "number"):
        number = int if kind == "integer" else float  # the schemas write "minimum": 0.0
        value = number(1 if kind == "integer" else 1.5)
        value = max(value, number(node.get("minimum", value)))
        return min(value, number(node.get("maximum", value)))
    if kind == "boolean":
        return True
    return {"any": ["JSON"]}  # no type at all: DataTransfer data in 2.x


Steps = tuple[str | int, ...]


def jsonpath(steps: Steps) -> str:
    return "$" + "".join(f"[{s}]" if isinstance(s, int) else f".{s}" for s in steps)


@dataclass(frozen=True)
class Mutant:
    """A payload derived from a valid one, and what the schema and we must say of it."""

    what: str
    payload: Any  # a JSON value, or bytes that are not JSON
    path: str
    violation: Violation | None  # None: the schema accepts it and so must we
    known: str | None = None  # a KNOWN disagreement this mutant exhibits


class Mutator:
    """Derives the mutants of each schema of one version."""

    def __init__(self) -> None:
        self.mutated_definitions: set[str] = set()

    def mutants(self, case: Case) -> list[Mutant]:
        # Each mutant changes one node of a small valid payload: the object being
        # mutated has all its properties, everything else only what is required
        # (the official validator costs milliseconds per kilobyte).
        self.case = case
        self.base = self._skeleton(case.schema)
        self.out: list[Mutant] = [
            Mutant("a JSON array", [], "$", Violation.FORMAT),
            Mutant("a JSON string", "payload", "$", Violation.FORMAT),
            Mutant("null", None, "$", Violation.FORMAT),
            Mutant("not JSON", b'{"truncated": ', "$", Violation.FORMAT),
        ]
        self._object(case.schema, ())
        return self.out

    def _add(
        self,
        what: str,
        steps: Steps,
        value: Any,
        violation: Violation | None,
        known: str | None = None,
        at: Steps | None = None,
    ) -> None:
        """A mutant: the base payload with ``value`` at ``steps`` (or that key deleted).

        ``violation`` is the category at ``at`` (default: ``steps``) that the schema
        and we report, or, for a KNOWN disagreement, the side that refuses it.
        """
        payload = copy.deepcopy(self.base)
        *parents, last = steps
        parent = payload
        for step in parents:
            parent = parent[step]
        if value is _DELETE:
            del parent[last]
        else:
            parent[last] = value
        path = jsonpath(steps if at is None else at)
        known = known or KNOWN_AT.get((self.case.version, self.case.file, path, what))
        self.out.append(Mutant(what, payload, path, violation, known))

    def _skeleton(self, node: dict[str, Any]) -> Any:
        """``node`` with all its own properties, each with only what it requires."""
        return instance(node, self.case.schema, every_property=True, depth=1)

    def _descend(self, steps: Steps, value: Any, then: Callable[[], None]) -> None:
        saved = self.base
        self.base = copy.deepcopy(saved)
        *parents, last = steps
        parent = self.base
        for step in parents:
            parent = parent[step]
        parent[last] = value
        then()
        self.base = saved

    # -- schemas

    def _resolve(self, node: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
        if "$ref" in node:
            return _definition(self.case.schema, node["$ref"]), node["$ref"]
        return node, None

    def _object(self, node: dict[str, Any], steps: Steps) -> None:
        properties: dict[str, Any] = node.get("properties", {})
        required = node.get("required", [])
        for name in required:
            self._add(f"no `{name}`", (*steps, name), _DELETE, Violation.OCCURRENCE, at=steps)
        if node.get("additionalProperties") is False:
            self._add(
                "an unknown property", (*steps, "unknownProperty"), 1, Violation.FORMAT, at=steps
            )
        else:  # 2.x CustomDataType: extension properties are allowed
            self._add("an extension property", (*steps, "vendorExtension"), {"x": 1}, None)
        for name, sub in properties.items():
            resolved, _ = self._resolve(sub)
            if name not in required:
                # null for an optional property: a type error, unless it is untyped (any JSON)
                untyped = not ({"type", "enum"} & set(resolved))
                self._add("null", (*steps, name), None, None if untyped else Violation.TYPE)
            self._value(sub, (*steps, name))

    def _value(self, node: dict[str, Any], steps: Steps) -> None:
        node, ref = self._resolve(node)
        if ref is not None and node.get("type") == "object":
            if ref in self.mutated_definitions:
                return  # mutated in an earlier schema of this version
            self.mutated_definitions.add(ref)
        kind = "string" if "enum" in node else node.get("type")
        wrong = {"string": 12, "integer": "12", "number": "1.5", "boolean": "true"}
        wrong |= {"object": "an object", "array": {"an": "array"}}
        if kind in wrong:
            self._add(
                f"a {type(wrong[kind]).__name__} for a {kind}", steps, wrong[kind], Violation.TYPE
            )
        if "enum" in node:
            self._add(
                "a value outside the enumeration", steps, "NotAnEnumValue", Violation.PROPERTY
            )
        if "maxLength" in node:
            too_long = "x" * (node["maxLength"] + 1)
            self._add("a string one character too long", steps, too_long, Violation.PROPERTY)
        if node.get("format") == "date-time":
            for text in ("not a date-time", "2024-02-30T12:15:00Z", "2024-05-01T24:00:00Z"):
                self._add(f"date-time {text!r}", steps, text, Violation.PROPERTY)
            lenient = Violation.PROPERTY  # what the schema says; we accept
            self._add(
                "no offset", steps, "2024-05-01T12:15:00", lenient, "date-time-without-offset"
            )
            self._add(
                "a space for T", steps, "2024-05-01 12:15:00Z", lenient, "date-time-space-separator"
            )
        if kind == "integer":
            self._add("1.5 for an integer", steps, 1.5, Violation.TYPE)
            # draft-04 refuses 2.0 as an integer like we do; draft-06 takes it
            known = None if self.case.draft4 else "integral-float-for-integer"
            self._add("2.0 for an integer", steps, 2.0, Violation.TYPE, known=known)
        if kind in ("integer", "number"):
            number = int if kind == "integer" else float  # the schemas write "minimum": 0.0
            if "minimum" in node:
                below = number(node["minimum"]) - 1
                self._add("below the minimum", steps, below, Violation.PROPERTY)
            if "maximum" in node:
                above = number(node["maximum"]) + 1
                self._add("above the maximum", steps, above, Violation.PROPERTY)
            if "multipleOf" in node:
                self._add("not a multiple", steps, 1.55, Violation.PROPERTY, "multiple-of")
        if kind == "object":
            self._descend(steps, self._skeleton(node), lambda: self._object(node, steps))
        if kind == "array":
            item = instance(node["items"], self.case.schema, every_property=False)
            if node.get("minItems", 0) > 0:
                few = [item] * (node["minItems"] - 1)
                self._add("too few items", steps, few, Violation.OCCURRENCE)
            if "maxItems" in node:
                many = [item] * (node["maxItems"] + 1)
                self._add("too many items", steps, many, Violation.OCCURRENCE)
            items = [item] * max(1, node.get("minItems", 1))
            self._descend(steps, items, lambda: self._value(node["items"], (*steps, 0)))


_DELETE: Final = object()


def _all_mutants() -> dict[Case, list[Mutant]]:
    mutators = {version: Mutator() for version in VERSIONS}
    return {case: mutators[case.version].mutants(case) for case in CASES}


MUTANTS: Final = _all_mutants()

# The CALLERROR code of each category, spelt per version (OCPP-J 1.6 §4.2.3 with
# errata 5.1/5.2, 2.0.1/2.1 Part 4 §4.3): written out here, not derived.
CODES: Final = {
    "1.6": {
        Violation.FORMAT: "FormationViolation",
        Violation.TYPE: "TypeConstraintViolation",
        Violation.OCCURRENCE: "OccurenceConstraintViolation",
        Violation.PROPERTY: "PropertyConstraintViolation",
    },
    **{
        version: {
            Violation.FORMAT: "FormatViolation",
            Violation.TYPE: "TypeConstraintViolation",
            Violation.OCCURRENCE: "OccurrenceConstraintViolation",
            Violation.PROPERTY: "PropertyConstraintViolation",
        }
        for version in ("2.0.1", "2.1")
    },
}


def _schema_says(case: Case, payload: Any) -> set[tuple[Violation, str]]:
    """The (category, path) of every error the official schema finds."""
    if isinstance(payload, bytes):  # not JSON: nothing for a schema to look at
        return {(Violation.FORMAT, "$")}
    found = set()
    for error in case.oracle.iter_errors(payload):
        category = CATEGORY[str(error.validator)]
        if category is Violation.TYPE and not error.absolute_path:
            category = Violation.FORMAT  # the payload itself is not an object
        found.add((category, error.json_path))
    return found


def _we_say(case: Case, raw: bytes) -> tuple[Violation, str] | None:
    """The (category, path) our decoder reports, after checking how it spells them."""
    error = None
    try:
        case.decode(raw)
    except PayloadError as exc:
        error = exc
    if error is None:
        return None
    # The CALLERROR code as the version spells it, and a readable message.
    assert error_code(error.violation, case.version) == CODES[case.version][error.violation]
    assert str(error) == f"{error.path}: {error.reason}"
    return error.violation, error.path


def disagreement(case: Case, mutant: Mutant) -> str | None:
    """What is wrong with how the schema and we judge ``mutant``, or None."""
    raw = (
        mutant.payload if isinstance(mutant.payload, bytes) else json.dumps(mutant.payload).encode()
    )
    schema, ours = _schema_says(case, mutant.payload), _we_say(case, raw)
    claim = None if mutant.violation is None else (mutant.violation, mutant.path)
    side = KNOWN[mutant.known][0] if mutant.known else None
    if side is None and claim is None and (schema or ours):
        return f"should be accepted; the schema says {schema}, we say {ours}"
    if side is None and claim is not None and (claim not in schema or ours != claim):
        return f"should be {claim}; the schema says {schema}, we say {ours}"
    verdicts = f"the schema says {schema}, we say {ours}"
    if side == "lenient" and (claim not in schema or ours is not None):
        return f"known {mutant.known}: the schema should say {claim}, we accept; {verdicts}"
    if side == "stricter" and (schema or ours != claim):
        return f"known {mutant.known}: the schema should accept, we say {claim}; {verdicts}"
    return None


@pytest.mark.parametrize("case", CASES, ids=str)
def test_payloads_the_schema_rejects_are_rejected(case: Case) -> None:
    failures = [
        f"{mutant.what} at {mutant.path}: {problem}"
        for mutant in MUTANTS[case]
        if (problem := disagreement(case, mutant))
    ]
    assert not failures, f"{case} ({case.file}):\n" + "\n".join(failures)


@dataclass(frozen=True)
class Targeted:
    """A KNOWN disagreement the systematic mutants cannot reach: raw JSON and its verdicts."""

    known: str
    version: OcppVersion
    action: str
    raw: bytes
    violation: Violation  # what the refusing side says
    path: str


TARGETED: Final = (
    Targeted(
        "unit-hertz-in-stop-transaction",
        "1.6",
        "StopTransaction",
        b'{"meterStop": 0, "timestamp": "2024-05-01T12:15:00Z", "transactionId": 1,'
        b' "transactionData": [{"timestamp": "2024-05-01T12:15:00Z",'
        b' "sampledValue": [{"value": "50.0", "measurand": "Frequency", "unit": "Hertz"}]}]}',
        Violation.PROPERTY,
        "$.transactionData[0].sampledValue[0].unit",
    ),
    Targeted(
        "number-beyond-double",
        "2.0.1",
        "MeterValues",
        b'{"evseId": 1, "meterValue": [{"timestamp": "2024-05-01T12:15:00Z",'
        b' "sampledValue": [{"value": 1e400}]}]}',
        Violation.PROPERTY,
        "$.meterValue[0].sampledValue[0].value",
    ),
    Targeted("lone-surrogate", "1.6", "Authorize", b'{"idTag": "\\ud800"}', Violation.FORMAT, "$"),
)


@pytest.mark.parametrize("targeted", TARGETED, ids=lambda t: t.known)
def test_targeted_known_disagreements(targeted: Targeted) -> None:
    case = next(
        c
        for c in CASES
        if (c.version, c.action, c.direction) == (targeted.version, targeted.action, "request")
    )
    schema = _schema_says(case, json.loads(targeted.raw))
    ours = _we_say(case, targeted.raw)
    claim = (targeted.violation, targeted.path)
    if KNOWN[targeted.known][0] == "lenient":
        assert claim in schema
        assert ours is None
    else:
        assert not schema
        assert ours == claim


def test_every_known_disagreement_is_exercised() -> None:
    exercised = {m.known for mutants in MUTANTS.values() for m in mutants if m.known}
    exercised |= {t.known for t in TARGETED}
    assert exercised == set(KNOWN)
