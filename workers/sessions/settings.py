"""The sessions worker's settings: the shared worker settings plus its own."""

from __future__ import annotations

import dataclasses

from contracts.settings import setting
from workers.runtime.settings import WorkerSettings

__all__ = ["SessionsSettings"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class SessionsSettings:
    worker: WorkerSettings = dataclasses.field(default_factory=WorkerSettings)

    allow_unknown_id_tokens: bool = setting(
        False,
        "Accept id tokens that are not in csms.id-tokens.v1 (development; csms up sets it); "
        "otherwise they are Invalid",
        env="CSMS_ALLOW_UNKNOWN_ID_TOKENS",
    )
    offline_after: float = setting(
        300.0,
        "Seconds between an OCPP 1.6 transaction message's timestamp and its receipt beyond "
        "which the session is flagged offline (the station queued it)",
        env="CSMS_SESSIONS_OFFLINE_AFTER",
    )
