"""The authorization list and decision: status, expiry, groups, case, unknown tokens."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

from contracts.envelopes import encode_id_token
from tests.workers.harness import T0, token
from workers.sessions.id_tokens import Authorization, IdTokenTable, authorize


def _authorize(table: IdTokenTable, id_token: str, *, allow_unknown: bool = False) -> Authorization:
    return authorize(table, id_token, T0, allow_unknown=allow_unknown)


def test_a_listed_token_has_its_status_expiry_and_group() -> None:
    expires = T0 + timedelta(days=1)
    table = IdTokenTable([token("TAG-1", expires_at=expires, group_id="FLEET")])
    assert _authorize(table, "TAG-1") == Authorization("Accepted", expires, "FLEET")
    table.put(token("TAG-2", "Blocked"))
    assert _authorize(table, "TAG-2").status == "Blocked"


def test_an_accepted_token_past_its_expiry_is_expired() -> None:
    table = IdTokenTable([token("TAG-1", expires_at=T0)])
    assert _authorize(table, "TAG-1").status == "Expired"
    table.put(token("TAG-1", expires_at=T0 + timedelta(seconds=1)))
    assert _authorize(table, "TAG-1").status == "Accepted"


def test_unknown_tokens_follow_the_policy() -> None:
    table = IdTokenTable()
    assert _authorize(table, "NOBODY") == Authorization("Invalid")
    assert _authorize(table, "NOBODY", allow_unknown=True) == Authorization("Accepted")


def test_lookups_ignore_case() -> None:
    table = IdTokenTable([token("04e91c5a", "Blocked")])
    assert _authorize(table, "04E91C5A").status == "Blocked"


def test_a_blocked_or_expired_group_refuses_its_members() -> None:
    table = IdTokenTable([token("TAG-1", group_id="FLEET"), token("FLEET", "Blocked")])
    assert _authorize(table, "TAG-1") == Authorization("Blocked", None, "FLEET")
    table.put(token("FLEET", expires_at=T0 - timedelta(days=1)))
    assert _authorize(table, "TAG-1").status == "Expired"
    table.put(token("FLEET"))
    assert _authorize(table, "TAG-1").status == "Accepted"
    # a token that is its own group is not looked at twice
    table.put(token("SELF", group_id="self"))
    assert _authorize(table, "SELF").status == "Accepted"


def _record(key: str, value: bytes | None, offset: int = 0) -> SimpleNamespace:
    return SimpleNamespace(key=key.encode(), value=value, offset=offset)


def test_records_and_tombstones_of_the_topic_apply_in_order() -> None:
    table = IdTokenTable()
    table.apply(
        [
            _record("TAG-1", encode_id_token(token("TAG-1"))),
            _record("TAG-2", encode_id_token(token("TAG-2", "Blocked"))),
            _record("TAG-1", None),
            _record("TAG-3", b"not json"),
        ]
    )
    assert [r.id_token for r in table] == ["TAG-2"]
    assert len(table) == 1
