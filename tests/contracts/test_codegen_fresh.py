"""The checked-in payload modules are what the generator makes of the installed schemas.

``make generate`` (``python -m contracts.codegen``) rewrites contracts/ocpp/v16.py,
v201.py and v21.py; this fails when someone edited them by hand, changed the
generator without regenerating, or upgraded the ``ocpp`` package (and with it
the schemas) without regenerating. It also pins that the generator refuses
what it cannot translate instead of dropping it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from contracts.codegen import OUTPUT_DIR, build, generate
from contracts.codegen.__main__ import main
from contracts.codegen.schemas import ActionSchemas, Schema, Version

MODULES = ("v16.py", "v201.py", "v21.py")


def test_the_checked_in_modules_are_fresh(tmp_path: Path) -> None:
    written = generate(tmp_path)
    assert sorted(p.name for p in written) == sorted(MODULES)
    for path in written:
        checked_in = OUTPUT_DIR / path.name
        assert checked_in.read_text(encoding="utf-8") == path.read_text(encoding="utf-8"), (
            f"{checked_in} is stale: run `make generate` (python -m contracts.codegen)"
        )


def test_the_output_does_not_depend_on_hash_seeds(tmp_path: Path) -> None:
    # This process hashes with a random seed; the child with a fixed one.
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    subprocess.run(
        [sys.executable, "-m", "contracts.codegen", "--output-dir", str(tmp_path)],
        check=True,
        capture_output=True,
        env=env,
        cwd=OUTPUT_DIR.parents[1],
    )
    for name in MODULES:
        assert (tmp_path / name).read_bytes() == (OUTPUT_DIR / name).read_bytes()


def test_check_reports_a_stale_module(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    generate(tmp_path)
    assert main(["--check", "--output-dir", str(tmp_path)]) == 0
    stale = tmp_path / "v201.py"
    stale.write_text(stale.read_text(encoding="utf-8") + "# edited by hand\n", encoding="utf-8")
    assert main(["--check", "--output-dir", str(tmp_path)]) == 1
    assert "v201.py" in capsys.readouterr().err


# -- the generator refuses what it cannot translate ---------------------------------------


def translate(version: Version, request: dict[str, Any], *more: dict[str, Any]) -> build.Module:
    """The module of made-up actions Test0, Test1... with these request schemas."""
    actions = [
        ActionSchemas(
            name=f"Test{i}",
            initiator="station",
            request=Schema(f"Test{i}Request.json", document),
            response=None,
        )
        for i, document in enumerate((request, *more))
    ]
    return build.translate(version, actions)


def obj(properties: dict[str, Any], **rest: Any) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": False, "properties": properties, **rest}


def test_a_made_up_schema_translates() -> None:
    module = translate(
        "2.0.1",
        obj(
            {
                "evseId": {"type": "integer", "minimum": 0},
                "when": {"type": "string", "format": "date-time"},
            },
            required=["evseId"],
        ),
    )
    (message,) = module.messages
    assert [(f.python_name, f.wire_name, f.annotation, f.required) for f in message.fields] == [
        ("evse_id", "evseId", "Annotated[int, Meta(ge=0)]", True),
        ("when", "when", "datetime", False),
    ]
    assert message.forbid_unknown_fields


def test_an_unknown_keyword_stops_the_generator() -> None:
    with pytest.raises(build.SchemaError, match=r"unsupported keyword\(s\) \['pattern2'\]"):
        translate("2.0.1", obj({"name": {"type": "string", "pattern2": "x"}}))


def test_an_unknown_format_stops_the_generator() -> None:
    with pytest.raises(build.SchemaError, match="unsupported format 'email'"):
        translate("2.0.1", obj({"name": {"type": "string", "format": "email"}}))


def test_one_definition_name_with_two_shapes_stops_the_generator() -> None:
    def schema(max_length: int) -> dict[str, Any]:
        return {
            **obj({"token": {"$ref": "#/definitions/TokenType"}}),
            "definitions": {"TokenType": obj({"id": {"type": "string", "maxLength": max_length}})},
        }

    translate("2.0.1", schema(36), schema(36))  # the same shape twice is one type
    with pytest.raises(build.SchemaError, match="TokenType differs from its definition"):
        translate("2.0.1", schema(36), schema(255))


def test_one_enumeration_name_with_two_value_sets_stops_the_generator() -> None:
    def schema(*values: str) -> dict[str, Any]:
        return {
            **obj({"status": {"$ref": "#/definitions/StatusEnumType"}}),
            "definitions": {"StatusEnumType": {"type": "string", "enum": list(values)}},
        }

    with pytest.raises(build.SchemaError, match="enumeration StatusEnumType differs"):
        translate("2.0.1", schema("Accepted"), schema("Accepted", "Rejected"))


def test_an_unnamed_1_6_inline_type_stops_the_generator() -> None:
    with pytest.raises(build.SchemaError, match=r"add 'Test0Request:status' to names\.V16_INLINE"):
        translate("1.6", obj({"status": {"type": "string", "enum": ["Accepted"]}}))


def test_a_2x_inline_object_stops_the_generator() -> None:
    with pytest.raises(build.SchemaError, match="expected to use definitions"):
        translate("2.1", obj({"inner": obj({})}))


def test_additional_properties_must_be_a_boolean() -> None:
    with pytest.raises(build.SchemaError, match="additionalProperties must be true or false"):
        translate("2.0.1", {"type": "object", "additionalProperties": {"type": "string"}})


@pytest.mark.parametrize(
    ("wire", "python"),
    [
        ("idTag", "id_tag"),
        ("connectorId", "connector_id"),
        ("iso15118SchemaVersion", "iso15118_schema_version"),
        ("EVSE", "evse"),
        ("responderURL", "responder_url"),
        ("limit_L2", "limit_l2"),
        ("evMaxV2XEnergyRequest", "ev_max_v2x_energy_request"),  # names.SNAKE_CASE
        ("prioritizedEMAIDs", "prioritized_emaids"),  # names.SNAKE_CASE
    ],
)
def test_python_names(wire: str, python: str) -> None:
    assert build.python_name(wire) == python
