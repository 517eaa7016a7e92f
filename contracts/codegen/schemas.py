"""The official OCA JSON schemas, as the pinned ``ocpp`` package ships them.

Each version has one directory of schema files: ``ocpp/v16/schemas``,
``ocpp/v201/schemas`` and ``ocpp/v21/schemas``. OCPP 1.6 names a request file
after its action (``Authorize.json``) and 2.0.1 and 2.1 add ``Request``
(``AuthorizeRequest.json``); the response is ``<Action>Response.json``
everywhere. 2.1's ``NotifyPeriodicEventStream.json`` is the one SEND message
(Part 4 §4.2.4): a request without a response. Every file in a directory must
be claimed by exactly one action, so a new schema cannot go unnoticed.

The conformance tests read the schemas through this module too, so the
generator and the oracle it is checked against see the same files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from importlib.abc import Traversable
from typing import Any, Final, Literal

from contracts.codegen.initiators import INITIATORS, Initiator

Version = Literal["1.6", "2.0.1", "2.1"]
VERSIONS: Final[tuple[Version, ...]] = ("1.6", "2.0.1", "2.1")

# The generated module of each version, and the ocpp package directory it comes from.
MODULES: Final[dict[Version, str]] = {"1.6": "v16", "2.0.1": "v201", "2.1": "v21"}

# Actions that are a SEND (no response); 2.1 Part 4 §4.2.4.
SEND_ONLY: Final[dict[Version, frozenset[str]]] = {
    "1.6": frozenset(),
    "2.0.1": frozenset(),
    "2.1": frozenset({"NotifyPeriodicEventStream"}),
}


@dataclass(frozen=True)
class Schema:
    """One schema file: its name and its parsed JSON."""

    file: str
    document: dict[str, Any]


@dataclass(frozen=True)
class ActionSchemas:
    """The request and (except for a SEND) the response schema of one action."""

    name: str
    initiator: Initiator
    request: Schema
    response: Schema | None


def schema_dir(version: Version) -> Traversable:
    """The directory of the ``ocpp`` package holding ``version``'s schemas."""
    return resources.files("ocpp") / MODULES[version] / "schemas"


def load(version: Version) -> list[ActionSchemas]:
    """Every action of ``version``, sorted by name, with its schemas."""
    directory = schema_dir(version)
    files = {
        entry.name: entry
        for entry in directory.iterdir()
        if entry.is_file() and entry.name.endswith(".json")
    }
    initiators = INITIATORS[version]
    request_suffix = "" if version == "1.6" else "Request"
    claimed: set[str] = set()
    actions: list[ActionSchemas] = []
    for name in sorted(initiators):
        send_only = name in SEND_ONLY[version]
        request_file = f"{name}.json" if send_only else f"{name}{request_suffix}.json"
        response_file = None if send_only else f"{name}Response.json"
        missing = [f for f in (request_file, response_file) if f and f not in files]
        if missing:
            raise LookupError(f"OCPP {version} {name}: no schema file {', '.join(missing)}")
        claimed.update(f for f in (request_file, response_file) if f)
        actions.append(
            ActionSchemas(
                name=name,
                initiator=initiators[name],
                request=_read(files[request_file]),
                response=_read(files[response_file]) if response_file else None,
            )
        )
    unclaimed = sorted(set(files) - claimed)
    if unclaimed:
        raise LookupError(
            f"OCPP {version}: schema files of no known action (add them to "
            f"contracts/codegen/initiators.py): {', '.join(unclaimed)}"
        )
    return actions


def _read(entry: Traversable) -> Schema:
    document = json.loads(entry.read_text(encoding="utf-8"))
    if not isinstance(document, dict):
        raise TypeError(f"{entry.name}: a schema must be a JSON object")
    return Schema(file=entry.name, document=document)
