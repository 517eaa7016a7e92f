"""contracts/asyncapi.yaml: fresh, complete, true to the Structs, and valid AsyncAPI 3."""

from __future__ import annotations

import inspect
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import msgspec
import pytest
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from contracts import asyncapi
from contracts.asyncapi import EXAMPLES, LIFECYCLE_PAYLOADS, main, render
from contracts.topics import CATALOGUE, Topic

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / ".tools" / "asyncapi"
VALIDATOR = ROOT / "tests" / "asyncapi_validate.mjs"
DOCUMENT_URI = "urn:csms:asyncapi"


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(asyncapi.DOCUMENT_PATH.read_text(encoding="utf-8"))
    return loaded


def test_checked_in_document_is_fresh() -> None:
    assert asyncapi.DOCUMENT_PATH.read_text(encoding="utf-8") == render(), (
        "contracts/asyncapi.yaml is stale: run `python -m contracts.asyncapi` and commit it"
    )


def test_check_mode_reports_a_stale_file(tmp_path: Path) -> None:
    target = tmp_path / "asyncapi.yaml"
    assert main(["--output", str(target)]) == 0
    assert main(["--check", "--output", str(target)]) == 0
    target.write_text(target.read_text() + "# edited by hand\n")
    assert main(["--check", "--output", str(target)]) == 1


def test_every_topic_has_a_channel_at_its_address(document: dict[str, Any]) -> None:
    channels = document["channels"]
    assert [c["address"] for c in channels.values()] == [t.name for t in CATALOGUE]
    for topic in CATALOGUE:
        channel = channels[topic.name]
        assert topic.summary in channel["description"]
        policy = channel["bindings"]["kafka"]["topicConfiguration"]["cleanup.policy"]
        assert policy == (["compact"] if topic.compacted else ["delete"])


def _resolve(document: dict[str, Any], ref: str) -> Any:
    node: Any = document
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def _messages(document: dict[str, Any], topic: Topic) -> dict[str, Any]:
    channel = document["channels"][topic.name]
    return {name: _resolve(document, m["$ref"]) for name, m in channel["messages"].items()}


def test_each_channel_carries_its_envelope_key_and_headers(document: dict[str, Any]) -> None:
    for topic in CATALOGUE:
        messages = _messages(document, topic)
        name = topic.value_type.__name__
        expected = [name, f"{name}Tombstone"] if topic.compacted else [name]
        assert list(messages) == expected
        record = messages[name]
        assert record["payload"] == {"$ref": f"#/components/schemas/{name}"}
        assert record["bindings"]["kafka"]["key"]["type"] == "string"
        headers = record["headers"]
        assert set(headers["required"]) == {
            "ce_specversion",
            "ce_id",
            "ce_type",
            "ce_source",
            "ce_time",
            "content-type",
        }
        live_types = [t for t in topic.ce_types if not t.endswith(".deleted")]
        assert headers["properties"]["ce_type"]["enum"] == live_types
        ocpp = {h for h in headers["properties"] if h.startswith("ocpp-")}
        assert ocpp == set(topic.ocpp_headers)
        if topic.compacted:
            tombstone = messages[f"{name}Tombstone"]
            assert tombstone["payload"] == {"type": "null"}
            assert tombstone["headers"]["properties"]["ce_type"]["enum"] == [
                f"{topic.ce_type_prefix}.deleted"
            ]


def test_operations_name_every_writer_and_reader(document: dict[str, Any]) -> None:
    found = {
        (op["action"], op["channel"]["$ref"].removeprefix("#/channels/"), op["summary"])
        for op in document["operations"].values()
    }
    expected = set()
    for topic in CATALOGUE:
        for writer in topic.writers:
            expected.add(("send", topic.name, f"The {writer} writes {topic.name}."))
        for reader in topic.readers:
            expected.add(("receive", topic.name, f"The {reader} reads {topic.name}."))
    assert found == expected
    for op in document["operations"].values():
        channel = op["channel"]["$ref"]
        assert all(m["$ref"].startswith(f"{channel}/messages/") for m in op["messages"])


def _cleaned(node: Any) -> Any:
    # Docstrings keep their indentation on Python 3.11 and lose it on 3.13;
    # the document carries them cleaned, so compare cleaned text.
    if isinstance(node, dict):
        return {
            k: inspect.cleandoc(v) if k == "description" and isinstance(v, str) else _cleaned(v)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_cleaned(v) for v in node]
    return node


def test_schemas_are_the_structs_json_schemas(document: dict[str, Any]) -> None:
    components = document["components"]["schemas"]
    structs = [t.value_type for t in CATALOGUE] + list(LIFECYCLE_PAYLOADS)
    seen = set()
    for struct in structs:
        generated = msgspec.json.schema(struct)
        text = json.dumps(generated["$defs"]).replace("#/$defs/", "#/components/schemas/")
        for name, schema in json.loads(text).items():
            assert components[name] == _cleaned(schema), name
            seen.add(name)
    assert seen == set(components)


def test_schemas_use_no_keyword_newer_than_draft_07(document: dict[str, Any]) -> None:
    # AsyncAPI Schema is a superset of JSON Schema draft-07: a 2019-09/2020-12
    # keyword would be ignored by validators and code generators.
    newer = {"$defs", "prefixItems", "dependentRequired", "dependentSchemas", "$dynamicRef"}
    newer |= {"unevaluatedProperties", "unevaluatedItems", "$anchor", "minContains"}

    def keys(node: Any) -> set[str]:
        if isinstance(node, dict):
            return set(node).union(*(keys(v) for v in node.values()))
        if isinstance(node, list):
            return set().union(*(keys(v) for v in node))
        return set()

    assert not keys(document["components"]["schemas"]) & newer


def _validator(document: dict[str, Any], schema: dict[str, Any]) -> jsonschema.Draft7Validator:
    resource = Resource.from_contents(document, default_specification=DRAFT7)
    registry: Registry[Any] = Registry().with_resource(DOCUMENT_URI, resource)
    rebased = json.loads(json.dumps(schema).replace('"#/', f'"{DOCUMENT_URI}#/'))
    return jsonschema.Draft7Validator(
        rebased, registry=registry, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER
    )


def test_every_example_matches_its_message(document: dict[str, Any]) -> None:
    # The parser does not check examples against the schemas, so check them here.
    checked = 0
    for topic in CATALOGUE:
        for message in _messages(document, topic).values():
            for example in message["examples"]:
                _validator(document, message["headers"]).validate(example["headers"])
                _validator(document, message["payload"]).validate(example.get("payload"))
                checked += 1
    assert checked == sum(len(examples) for examples in EXAMPLES.values())


def test_the_example_check_catches_a_wrong_payload(document: dict[str, Any]) -> None:
    message = _messages(document, CATALOGUE[0])[CATALOGUE[0].value_type.__name__]
    wrong = dict(message["examples"][0]["payload"], received_at="yesterday")
    with pytest.raises(jsonschema.ValidationError, match="date-time"):
        _validator(document, message["payload"]).validate(wrong)


# --- the official parser ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def parsed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """The parser's report on the document and on a broken copy of it (one node run for both).

    The broken copy has an operation with an action AsyncAPI 3 does not know:
    it shows that the validation can fail.
    """
    node = shutil.which("node")
    if node is None:
        pytest.fail(
            "node is not installed: the AsyncAPI document is validated with @asyncapi/parser "
            "under node (v20 or newer). Install node and npm, then run `make unit`."
        )
    if not (TOOLS / "node_modules" / "@asyncapi" / "parser").is_dir():
        pytest.fail(
            f"@asyncapi/parser is not installed in {TOOLS.relative_to(ROOT)}: run `make unit` "
            "(it installs the pinned parser with npm first)."
        )
    broken = tmp_path_factory.mktemp("asyncapi") / "broken.yaml"
    text = asyncapi.DOCUMENT_PATH.read_text(encoding="utf-8")
    broken.write_text(text.replace("action: send", "action: publish", 1), encoding="utf-8")
    done = subprocess.run(
        [node, str(VALIDATOR), str(TOOLS), str(asyncapi.DOCUMENT_PATH), str(broken)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode in (0, 1), f"the validator failed to run:\n{done.stderr}"
    report = json.loads(done.stdout)
    document, broken_document = report["documents"]
    return {"document": document, "broken": broken_document}


def test_the_asyncapi_parser_accepts_the_document(parsed: dict[str, dict[str, Any]]) -> None:
    report = parsed["document"]
    problems = [d for d in report["diagnostics"] if d["severity"] <= 1]  # errors and warnings
    assert report["parsed"], json.dumps(problems, indent=2)
    assert report["ok"], json.dumps(problems, indent=2)
    assert not problems, json.dumps(problems, indent=2)


def test_the_asyncapi_parser_rejects_a_broken_document(parsed: dict[str, dict[str, Any]]) -> None:
    report = parsed["broken"]
    assert not report["ok"]
    errors = [d for d in report["diagnostics"] if d["severity"] == 0]
    assert any(d["path"].endswith("/action") for d in errors), report
