"""The authorization list (csms.id-tokens.v1) as a table, and the authorization decision.

The sessions worker follows the compacted topic from its beginning into an
:class:`IdTokenTable`; every instance holds the whole list (it is small next
to the fleet: tens of bytes per token). Id tokens are case insensitive (OCPP
1.6 §7.28 IdToken, 2.0.1 IdTokenType), so the table is too.

:func:`authorize` is the decision, a pure function of the table, the token
and the instant (the event's ``received_at``, never the wall clock):

- a token not in the list: ``Accepted`` when unknown tokens are allowed
  (``CSMS_ALLOW_UNKNOWN_ID_TOKENS``, what ``csms up`` sets for development),
  else ``Invalid``;
- a listed token: its status, but ``Expired`` once past ``expires_at``;
- an ``Accepted`` token whose group (``group_id``, OCPP's parentIdTag /
  groupIdToken) is itself listed and not accepted gets the group's status: a
  blocked account blocks all its cards.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

import msgspec

from contracts.envelopes import IdTokenRecord, IdTokenStatus, decode_id_token

__all__ = ["Authorization", "IdTokenTable", "authorize"]

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True, slots=True)
class Authorization:
    """The answer about one id token."""

    status: IdTokenStatus
    expires_at: datetime | None = None
    group_id: str | None = None


class IdTokenTable:
    """The latest record of every id token, looked up case-insensitively."""

    def __init__(self, records: Iterable[IdTokenRecord] = ()) -> None:
        self._tokens: dict[str, IdTokenRecord] = {}
        for record in records:
            self.put(record)

    def __len__(self) -> int:
        return len(self._tokens)

    def __iter__(self) -> Iterator[IdTokenRecord]:
        return iter(self._tokens.values())

    def get(self, id_token: str) -> IdTokenRecord | None:
        return self._tokens.get(id_token.upper())

    def put(self, record: IdTokenRecord) -> None:
        self._tokens[record.id_token.upper()] = record

    def remove(self, id_token: str) -> None:
        self._tokens.pop(id_token.upper(), None)

    def apply(self, records: list[Any]) -> None:
        """Apply consumed records of csms.id-tokens.v1 (a tombstone removes its key)."""
        for record in records:
            if record.key is None:
                continue
            try:
                found = decode_id_token(record.value)
            except msgspec.DecodeError as exc:
                log.warning(
                    "id_tokens.undecodable", extra={"offset": record.offset, "error": str(exc)}
                )
                continue
            if found is None:
                self.remove(record.key.decode("utf-8", "replace"))
            else:
                self.put(found)


def _status(record: IdTokenRecord, at: datetime) -> IdTokenStatus:
    if record.status == "Accepted" and record.expires_at is not None and record.expires_at <= at:
        return "Expired"
    return record.status


def authorize(
    table: IdTokenTable, id_token: str, at: datetime, *, allow_unknown: bool
) -> Authorization:
    """The status of ``id_token`` at the instant ``at`` (see the module docstring)."""
    record = table.get(id_token)
    if record is None:
        return Authorization("Accepted" if allow_unknown else "Invalid")
    status = _status(record, at)
    if status == "Accepted" and record.group_id is not None:
        group = table.get(record.group_id)
        if group is not None and group.id_token.upper() != record.id_token.upper():
            status = _status(group, at)
    return Authorization(status, record.expires_at, record.group_id)
