"""The boot gate of one connection: which commands may go out, which calls may come in.

A station that has not booted refuses commands (a 2.0.1 station in an
"undefined state" answers none), and a station whose boot was not accepted may
only talk about its boot. Per connection, by what happened on it:

- ``waiting``: connected, has said nothing yet. Commands wait; once the grace is
  over the connection counts as booted (``assumed``). Its first call decides:
  a BootNotification makes it ``booting``, any other call ``assumed``.
- ``booting``: sent a BootNotification that is not answered yet. Commands wait;
  calls are let through (refused in strict mode).
- ``pending``: the BootNotification was answered Pending. Only B02.FR.01's
  commands go out (the version's reads, writes and triggers); the station may
  call BootNotification and what a command sent asked for (B02.FR.09).
- ``rejected``: answered Rejected. No command goes out (B03.FR.03); the station
  may call BootNotification only (B03.FR.07).
- ``accepted``: answered Accepted. Everything goes.
- ``assumed``: the first call was not a BootNotification (a 1.6 station that
  reconnects without rebooting), or the grace passed in silence. Everything goes.

"What a command asked for": a TriggerMessage (or 1.6 ExtendedTriggerMessage)
asks for its requested message, GetBaseReport and GetReport for NotifyReport
(B01.FR.10, B02.FR.09). In strict mode (``CSMS_REQUIRE_BOOT``) nothing is
assumed: only an Accepted BootNotification lets calls and commands through.

Nothing here does I/O or reads a clock: times are the caller's monotonic
seconds. :class:`gateway.session.Session` asks :meth:`BootGate.may_call` for each
station CALL, tells :meth:`BootGate.answered` each BootNotification answer and
:meth:`BootGate.sent` each command it sends, and sends a queued command only
when :meth:`BootGate.may_send` says so, looking again at :meth:`next_deadline`.
"""

from __future__ import annotations

from typing import Any, Final, Literal, TypeAlias

import msgspec

__all__ = ["PENDING_COMMANDS", "BootGate", "BootState", "asks_for"]

BootState: TypeAlias = Literal["waiting", "booting", "pending", "rejected", "accepted", "assumed"]

_READ_WRITE_TRIGGER_201: Final = frozenset(
    {"GetVariables", "SetVariables", "GetBaseReport", "GetReport", "TriggerMessage"}
)

PENDING_COMMANDS: Final[dict[str, frozenset[str]]] = {
    "1.6": frozenset({"GetConfiguration", "ChangeConfiguration", "TriggerMessage"}),
    "2.0.1": _READ_WRITE_TRIGGER_201,
    "2.1": _READ_WRITE_TRIGGER_201,
}
"""The commands a CSMS may send while a station's boot is Pending [B02.FR.01]."""

# TriggerMessage's requestedMessage values that name another action than themselves
_TRIGGERED_ACTION: Final = {
    "SignChargingStationCertificate": "SignCertificate",
    "SignV2GCertificate": "SignCertificate",
    "SignV2G20Certificate": "SignCertificate",
    "SignCombinedCertificate": "SignCertificate",
    "SignChargePointCertificate": "SignCertificate",  # 1.6 ExtendedTriggerMessage
}

_OPEN: Final = frozenset({"accepted", "assumed"})


def asks_for(action: str, request: Any) -> str | None:
    """The station call that command ``action`` (its decoded ``request``) asks the station
    to make, which a Pending station may then make; None for other commands."""
    if action in ("GetBaseReport", "GetReport"):
        return "NotifyReport"
    if action in ("TriggerMessage", "ExtendedTriggerMessage"):
        requested = getattr(request, "requested_message", None)
        if isinstance(requested, str):
            return _TRIGGERED_ACTION.get(requested, requested)
    return None


class BootGate(msgspec.Struct, kw_only=True, gc=False):
    """The boot state of one connection (see the module docstring).

    Make one per connection with :meth:`opened`. Not tracked by the garbage
    collector: it holds strings, a float and a tuple of strings only.
    """

    version: str
    state: BootState = "waiting"
    grace_ends: float | None = None
    """When a silent connection counts as booted; None in strict mode."""
    asked: tuple[str, ...] = ()
    """The calls the commands sent since the last boot answer asked for."""

    @classmethod
    def opened(cls, version: str, now: float, *, grace: float, strict: bool) -> BootGate:
        """The gate of a connection that opened at ``now``."""
        return cls(version=version, grace_ends=None if strict else now + grace)

    @property
    def strict(self) -> bool:
        return self.grace_ends is None

    def state_at(self, now: float) -> BootState:
        """The state at ``now``: a silent connection is ``assumed`` once its grace is over."""
        if self.state == "waiting" and self.grace_ends is not None and now >= self.grace_ends:
            self.state = "assumed"
        return self.state

    def may_call(self, action: str) -> bool:
        """May the station make this CALL? False: answer it CALLERROR SecurityError.

        A BootNotification always may (it moves the gate to ``booting``, also on a
        connection accepted before: commands wait for its answer); the first
        other call of a connection that has said nothing makes it ``assumed``,
        except in strict mode.
        """
        if action == "BootNotification":
            self.state = "booting"
            return True
        state = self.state
        if state in _OPEN:
            return True
        if state == "waiting":
            if self.strict:
                return False
            self.state = "assumed"
            return True
        if state == "booting":
            return not self.strict
        return action in self.asked  # pending, rejected

    def answered(self, status: str) -> None:
        """The station's BootNotification was answered with ``status``."""
        if status == "Accepted":
            self.state = "accepted"
        elif status == "Pending":
            self.state = "pending"
        elif status == "Rejected":
            self.state = "rejected"
        else:
            return
        self.asked = ()

    def may_send(self, action: str, now: float) -> bool:
        """May command ``action`` be sent now? False: keep it queued."""
        state = self.state_at(now)
        if state in _OPEN:
            return True
        if state == "pending":
            return action in PENDING_COMMANDS[self.version]
        return False

    def sent(self, asks: str | None) -> None:
        """A command was sent that asks the station for the call ``asks`` (see :func:`asks_for`)."""
        if asks is not None and asks not in self.asked:
            self.asked = (*self.asked, asks)

    def next_deadline(self) -> float | None:
        """When held commands may go out without anything else happening: the end of the
        grace while waiting; None otherwise."""
        return self.grace_ends if self.state == "waiting" else None
