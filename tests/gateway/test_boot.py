"""The boot gate, alone and inside the session: no command before boot, no call while not accepted.

OCPP 2.0.1 B01.FR.10, B02.FR.01, B02.FR.09, B03.FR.03, B03.FR.07 (and 1.6's
equivalents): what may go out and what may come in, for each boot answer.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts.ocpp import OcppVersion
from gateway.boot import PENDING_COMMANDS, BootGate, asks_for
from gateway.session import CommandExpired, Session, SessionLimits, StationCall
from tests.gateway.test_session import BOOT, RESET, Clock, Ids, call_frame, events, sent

GRACE = 3.0

GET_VARIABLES = (
    b'{"getVariableData":[{"component":{"name":"OCPPCommCtrlr"},'
    b'"variable":{"name":"HeartbeatInterval"}}]}'
)
GET_CONFIGURATION = b"{}"
READ = {"1.6": ("GetConfiguration", GET_CONFIGURATION), "2.0.1": ("GetVariables", GET_VARIABLES)}


def gate(version: str = "2.0.1", *, strict: bool = False) -> BootGate:
    return BootGate.opened(version, 1000.0, grace=GRACE, strict=strict)


def boot_answer(status: str) -> bytes:
    return b'{"currentTime":"2026-01-01T00:00:00Z","interval":60,"status":"%s"}' % status.encode()


def make(version: OcppVersion = "2.0.1", *, strict: bool = False) -> tuple[Session, Clock]:
    clock = Clock()
    boot = BootGate.opened(version, clock(), grace=GRACE, strict=strict)
    session = Session(version, SessionLimits(), clock=clock, new_message_id=Ids(), boot=boot)
    return session, clock


def boot(session: Session, status: str, message_id: str = "boot") -> list[Any]:
    """The station boots and is answered ``status``: the frames that go out."""
    session.receive_text(call_frame(message_id, "BootNotification", BOOT[session.version]))
    events(session)
    session.answer(message_id, boot_answer(status))
    return sent(session)


def calls_sent(frames: list[Any]) -> list[str]:
    return [frame[2] for frame in frames if frame[0] == 2]


# --- the gate alone ----------------------------------------------------------------------


def test_a_silent_connection_holds_commands_until_the_grace_is_over() -> None:
    g = gate()
    assert not g.may_send("GetVariables", 1000.0 + GRACE - 0.001)
    assert g.next_deadline() == 1000.0 + GRACE
    assert g.may_send("Reset", 1000.0 + GRACE)
    assert g.state == "assumed"
    assert g.next_deadline() is None


def test_a_first_call_other_than_boot_counts_as_booted() -> None:
    g = gate("1.6")
    assert g.may_call("Heartbeat")
    assert g.state == "assumed"
    assert g.may_send("Reset", 1000.0)


def test_strict_mode_assumes_nothing() -> None:
    g = gate(strict=True)
    assert not g.may_call("Heartbeat")
    assert not g.may_send("GetVariables", 10_000.0)
    assert g.next_deadline() is None
    assert g.may_call("BootNotification")
    assert not g.may_call("Heartbeat")  # booting, strict
    g.answered("Accepted")
    assert g.may_call("Heartbeat") and g.may_send("Reset", 1000.0)


def test_booting_holds_commands_and_lets_calls_through() -> None:
    g = gate()
    assert g.may_call("BootNotification")
    assert g.state == "booting"
    assert not g.may_send("GetVariables", 1_000_000.0)  # the grace is for silence only
    assert g.may_call("Heartbeat")


@pytest.mark.parametrize("version", ["1.6", "2.0.1", "2.1"])
def test_pending_sends_only_b02_fr_01_commands(version: str) -> None:
    g = gate(version)
    g.may_call("BootNotification")
    g.answered("Pending")
    for action in PENDING_COMMANDS[version]:
        assert g.may_send(action, 1000.0)
    for action in ("Reset", "RemoteStartTransaction", "RequestStartTransaction", "SetVariables"):
        assert g.may_send(action, 1000.0) is (action in PENDING_COMMANDS[version])


def test_pending_refuses_calls_but_what_a_command_asked_for() -> None:
    g = gate()
    g.may_call("BootNotification")
    g.answered("Pending")
    assert not g.may_call("Heartbeat")
    assert not g.may_call("NotifyReport")
    g.sent("NotifyReport")
    g.sent(None)
    assert g.may_call("NotifyReport")
    assert not g.may_call("StatusNotification")
    assert g.may_call("BootNotification")  # the station boots again


def test_rejected_sends_nothing_and_takes_only_boot() -> None:
    g = gate("1.6")
    g.may_call("BootNotification")
    g.answered("Rejected")
    for action in ("GetConfiguration", "TriggerMessage", "Reset"):
        assert not g.may_send(action, 1_000_000.0)
    assert not g.may_call("Heartbeat")
    assert g.may_call("BootNotification")


def test_a_new_answer_forgets_what_was_asked() -> None:
    g = gate()
    g.may_call("BootNotification")
    g.answered("Pending")
    g.sent("Heartbeat")
    g.may_call("BootNotification")
    g.answered("Pending")
    assert not g.may_call("Heartbeat")


def test_an_unknown_status_changes_nothing() -> None:
    g = gate()
    g.may_call("BootNotification")
    g.answered("Maybe")
    assert g.state == "booting"


@pytest.mark.parametrize(
    ("action", "request_", "asks"),
    [
        ("GetBaseReport", None, "NotifyReport"),
        ("GetReport", None, "NotifyReport"),
        ("TriggerMessage", {"requested_message": "Heartbeat"}, "Heartbeat"),
        ("TriggerMessage", {"requested_message": "SignV2GCertificate"}, "SignCertificate"),
        ("ExtendedTriggerMessage", {"requested_message": "SignChargePointCertificate"}, None),
        ("GetVariables", None, None),
    ],
)
def test_asks_for(action: str, request_: dict[str, str] | None, asks: str | None) -> None:
    class Request:
        pass

    request = Request()
    for name, value in (request_ or {}).items():
        setattr(request, name, value)
    expected = "SignCertificate" if action == "ExtendedTriggerMessage" else asks
    assert asks_for(action, request) == expected


_STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("call"), st.sampled_from(["BootNotification", "Heartbeat"])),
        st.tuples(st.just("answer"), st.sampled_from(["Accepted", "Pending", "Rejected"])),
        st.tuples(st.just("wait"), st.floats(0, 5)),
    ),
    max_size=12,
)


@given(_STEPS, st.booleans())
def test_nothing_goes_out_while_rejected_and_only_b02_fr_01_while_pending(
    steps: list[tuple[str, Any]], strict: bool
) -> None:
    g = gate("2.0.1", strict=strict)
    now = 1000.0
    last_answer = None
    for kind, value in steps:
        if kind == "call":
            g.may_call(value)
            if value == "BootNotification":
                last_answer = None
        elif kind == "answer":
            g.answered(value)
            last_answer = value
        else:
            now += value
        reset, read = g.may_send("Reset", now), g.may_send("GetVariables", now)
        if last_answer == "Rejected":
            assert not reset and not read
        elif last_answer == "Pending":
            assert read and not reset
        elif last_answer == "Accepted":
            assert reset and read
        if strict and last_answer != "Accepted":
            assert not reset


# --- inside the session ------------------------------------------------------------------


def test_a_queued_command_goes_out_right_after_the_accepted_boot() -> None:
    session, _ = make()
    session.call("c1", "GetVariables", GET_VARIABLES, timeout=30)
    assert sent(session) == []
    frames = boot(session, "Accepted")
    assert [frame[0] for frame in frames] == [3, 2]  # the boot's answer first, then the command
    assert frames[1][2] == "GetVariables"


def test_pending_sends_the_read_and_holds_the_reset_in_order() -> None:
    session, _ = make()
    session.call("reset", "Reset", RESET["2.0.1"], timeout=30)
    session.call("read", "GetVariables", GET_VARIABLES, timeout=30)
    assert calls_sent(boot(session, "Pending")) == ["GetVariables"]
    session.receive_text(json.dumps([3, "csms-1", {}]))  # answered (invalid: it ends anyway)
    events(session)
    assert sent(session) == []  # Reset stays held
    assert session.queued_commands == 1
    assert calls_sent(boot(session, "Accepted", "boot-2")) == ["Reset"]


def test_a_call_from_a_pending_station_gets_security_error() -> None:
    session, _ = make()
    boot(session, "Pending")
    session.receive_text(call_frame("hb", "Heartbeat"))
    assert [frame[:3] for frame in sent(session)] == [[4, "hb", "SecurityError"]]
    assert not [e for e in events(session) if isinstance(e, StationCall)]


def test_a_call_before_any_boot_is_taken_and_opens_the_gate() -> None:
    session, _ = make("1.6")
    session.call("c1", "GetConfiguration", GET_CONFIGURATION, timeout=30)
    assert sent(session) == []
    session.receive_text(call_frame("hb", "Heartbeat"))
    assert [type(e) for e in events(session)] == [StationCall]
    assert calls_sent(sent(session)) == ["GetConfiguration"]


def test_the_grace_sends_held_commands_and_is_the_next_deadline() -> None:
    session, clock = make()
    session.call("c1", "GetVariables", GET_VARIABLES, timeout=30)
    assert session.next_deadline() == clock() + GRACE
    clock.advance(GRACE)
    session.tick()
    assert calls_sent(sent(session)) == ["GetVariables"]


def test_a_held_command_expires_with_one_event() -> None:
    session, clock = make()
    boot(session, "Rejected")
    session.call("c1", "GetVariables", GET_VARIABLES, timeout=30, expires_at=clock() + 1)
    assert session.next_deadline() == clock() + 1
    clock.advance(1)
    session.tick()
    assert [type(e) for e in events(session)] == [CommandExpired]
    assert sent(session) == []
    assert session.queued_commands == 0


def test_a_worker_boot_answer_moves_the_gate() -> None:
    session, _ = make("1.6")
    session.call("c1", "Reset", RESET["1.6"], timeout=30)
    session.receive_text(call_frame("boot", "BootNotification", BOOT["1.6"]))
    events(session)
    session.answer("boot", boot_answer("Accepted"), validate=True)
    assert calls_sent(sent(session)) == ["Reset"]


def test_a_trigger_sent_while_pending_lets_its_message_through() -> None:
    session, _ = make("1.6")
    boot(session, "Pending")
    session.call("t", "TriggerMessage", b'{"requestedMessage":"StatusNotification"}', timeout=30)
    assert calls_sent(sent(session)) == ["TriggerMessage"]
    status = b'{"connectorId":0,"errorCode":"NoError","status":"Available"}'
    session.receive_text(call_frame("sn", "StatusNotification", status))
    assert [type(e) for e in events(session)] == [StationCall]
