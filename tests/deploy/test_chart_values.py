"""values.yaml and values.schema.json: in step with each other and with csms's settings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from tests.deploy.chart import CHART
from tests.deploy.settings_schema import CHART_MANAGED, expected_enums, process_settings

SCHEMA: dict[str, Any] = json.loads((CHART / "values.schema.json").read_text(encoding="utf-8"))
VALUES: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))


def test_setting_names_in_the_schema_are_fresh() -> None:
    for name, enum in expected_enums().items():
        assert SCHEMA["$defs"][name]["enum"] == enum, (
            f"values.schema.json $defs.{name} is stale (a csms setting was added or removed): "
            "run `.venv/bin/python -m tests.deploy.settings_schema` and commit the schema"
        )


def test_the_settings_the_chart_manages_exist() -> None:
    every = set().union(*process_settings().values())
    assert every >= CHART_MANAGED, sorted(CHART_MANAGED - every)


def test_default_values_satisfy_the_schema() -> None:
    jsonschema.Draft7Validator.check_schema(SCHEMA)
    jsonschema.validate(VALUES, SCHEMA)


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if ref is None:
        return node
    target: Any = SCHEMA
    for part in ref.removeprefix("#/").split("/"):
        target = target[part]
    return _resolve(target)


def _missing(schema: dict[str, Any], values: Any, path: str) -> list[str]:
    """Keys the schema describes that values.yaml does not show (with their defaults)."""
    schema = _resolve(schema)
    missing = []
    for key, sub in schema.get("properties", {}).items():
        if key == "global":
            continue
        if not isinstance(values, dict) or key not in values:
            missing.append(f"{path}{key}")
            continue
        missing += _missing(sub, values[key], f"{path}{key}.")
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict) and "properties" in _resolve(extra) and isinstance(values, dict):
        for key, value in values.items():
            missing += _missing(extra, value, f"{path}{key}.")
    return missing


def test_values_yaml_shows_every_key_of_the_schema() -> None:
    assert _missing(SCHEMA, VALUES, "") == []


def test_every_value_is_commented() -> None:
    """Each top-level block and each key that has no comment above it gets one nearby."""
    lines = (CHART / "values.yaml").read_text(encoding="utf-8").splitlines()
    uncommented = []
    for index, line in enumerate(lines):
        if not line or line.startswith(("#", " ")) or ":" not in line:
            continue
        above = lines[max(0, index - 3) : index]
        if not any(a.lstrip().startswith("#") for a in above):
            uncommented.append(line)
    assert uncommented == []


def test_the_schema_file_is_canonical_json() -> None:
    path: Path = CHART / "values.schema.json"
    assert path.read_text(encoding="utf-8") == json.dumps(SCHEMA, indent=2) + "\n"
