"""The status worker's decisions: one event, the station's status, the record to write.

:class:`StatusLogic` is the :class:`~workers.runtime.logic.Logic` the runtime
runs. It reads every call (any call means "heard from"), 2.1 sends and the
connection lifecycle, turns the event into facts (:mod:`workers.status.facts`),
folds them into the station's state (:mod:`workers.status.model`) and, when
what the record shows changed, writes the station's ``csms.station-status.v1``
record. It never replies: the gateway or the sessions worker answers calls.
"""

from __future__ import annotations

from datetime import timedelta

import msgspec

from contracts.envelopes import StationEvent, encode_station_status, record_key
from contracts.headers import station_status_headers
from contracts.ocpp import VERSIONS, actions
from contracts.ocpp.validation import PayloadError, UnknownAction
from contracts.topics import STATION_STATUS
from workers.runtime.logic import Decision, EventsOnly, Output, Position, RecordRejected
from workers.status.facts import facts
from workers.status.model import NoPartitionState, StationState, Steps, fold

__all__ = ["StatusLogic"]

ALL_ACTIONS = frozenset(name for version in VERSIONS for name in actions(version))


class StatusLogic(EventsOnly[StationState, NoPartitionState]):
    """The status record of each station, without I/O.

    Outcomes (``csms_worker_records_total{outcome}``): ``written`` (a record),
    ``unchanged`` (the state moved, the record did not), ``duplicate`` (an
    event already handled: nothing at all).
    """

    kinds = frozenset({"call", "send", "connected", "disconnected"})
    actions = ALL_ACTIONS
    station_type = StationState
    partition_type = NoPartitionState

    def __init__(self, *, source: str, heard_step: float = 600.0, meter_step: float = 60.0):
        self.source = source
        self.steps = Steps(timedelta(seconds=heard_step), timedelta(seconds=meter_step))

    def initial_partition(self) -> NoPartitionState:
        return NoPartitionState()

    def decide(
        self,
        event: StationEvent,
        station: StationState | None,
        partition: NoPartitionState,
        position: Position,
    ) -> Decision[StationState, NoPartitionState]:
        try:
            said = facts(event)
        except (PayloadError, UnknownAction, msgspec.DecodeError) as exc:
            raise RecordRejected(str(exc)) from exc
        state, record = fold(station, event, said, self.steps)
        if state is station:
            return Decision("duplicate", station, partition)
        if record is None:
            return Decision("unchanged", state, partition)
        output = Output(
            STATION_STATUS.name,
            record_key(record.station_id),
            encode_station_status(record) or b"",
            station_status_headers(record, source=self.source),
        )
        return Decision("written", state, partition, outputs=(output,))
