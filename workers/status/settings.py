"""The status worker's settings: the shared worker settings plus its own steps."""

from __future__ import annotations

import dataclasses

from contracts.settings import setting
from workers.runtime.settings import WorkerSettings

__all__ = ["StatusSettings"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class StatusSettings:
    """``csms worker status``.

    Why 600 s for ``heard_step``: ``last_heard_at`` is for people (an online
    station heard 3 or 9 minutes ago is the same news) and for a silent
    *offline* station, whose last record carries the exact time of its
    disconnect anyway. Deciding that a connected station went silent is the
    alerts worker's job, on its own state, so nothing needs it finer. At 600 s
    the heartbeats of 50,000 stations write at most ~83 records/s (1 per 10
    heartbeats at the common 60 s interval), against 833 events/s.

    Why 60 s for ``meter_step``: chargers send readings every 10 to 60 s while
    charging; the sessions' energy is on csms.sessions.v1 at every reading, and
    a status view a minute old at most is what a dashboard needs.
    """

    worker: WorkerSettings = dataclasses.field(default_factory=WorkerSettings)

    heard_step: float = setting(
        600.0,
        "Seconds last_heard_at must move before a record is written for it alone (a "
        "heartbeat); a record written for another reason carries the exact time",
        env="CSMS_STATUS_HEARD_STEP",
    )
    meter_step: float = setting(
        60.0,
        "Seconds an EVSE's meter reading must be newer than the one in the record before a "
        "record is written for it alone",
        env="CSMS_STATUS_METER_STEP",
    )
