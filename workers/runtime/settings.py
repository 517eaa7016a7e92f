"""The settings every worker shares (each worker's own settings embed them as ``worker``)."""

from __future__ import annotations

import dataclasses

from contracts.service.runtime import ServiceSettings
from contracts.settings import KafkaSettings, setting

__all__ = ["WorkerSettings"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class WorkerSettings:
    kafka: KafkaSettings = dataclasses.field(default_factory=KafkaSettings)
    service: ServiceSettings = dataclasses.field(default_factory=ServiceSettings)

    group: str = setting(
        "",
        "Consumer group (empty: csms-<worker>); its state changelog is the topic <group>-changelog",
        env="CSMS_WORKER_GROUP",
        flag="--group",
    )
    checkpoint_interval: float = setting(
        1.0,
        "Seconds between two checkpoints of a partition: its changed state is written to the "
        "changelog once the outputs are acknowledged, then the offset is committed",
        env="CSMS_WORKER_CHECKPOINT_INTERVAL",
    )
    max_batch: int = setting(
        1000, "Records taken from Kafka at most per poll", env="CSMS_WORKER_MAX_BATCH"
    )
    session_timeout: float = setting(
        10.0,
        "Seconds without a heartbeat after which the group gives a member's partitions to others",
        env="CSMS_WORKER_SESSION_TIMEOUT",
    )
    heartbeat_interval: float = setting(
        3.0, "Seconds between two group heartbeats", env="CSMS_WORKER_HEARTBEAT_INTERVAL"
    )
    max_attempts: int = setting(
        3,
        "Attempts at a record whose handling fails before it goes to csms.dead-letter.v1",
        env="CSMS_WORKER_MAX_ATTEMPTS",
    )
    restore_timeout: float = setting(
        120.0,
        "Seconds one attempt at reading assigned partitions' state back from the changelog may "
        "take (attempts go on for CSMS_WORKER_KAFKA_OUTAGE_LIMIT)",
        env="CSMS_WORKER_RESTORE_TIMEOUT",
    )
    linger: float = setting(
        0.0,
        "Seconds outputs wait to be batched (0: until the polled records are handled)",
        env="CSMS_WORKER_LINGER",
    )
    changelog_replication_factor: int = setting(
        0,
        "Replication factor of a changelog topic the worker creates (0: as ocpp.events.v1's); "
        "its min.insync.replicas is one less, at least 1 and at most 2",
        env="CSMS_WORKER_CHANGELOG_REPLICATION_FACTOR",
    )
    changelog_compaction_lag: float = setting(
        3600.0,
        "min.compaction.lag.ms of a changelog topic the worker creates, in seconds",
        env="CSMS_WORKER_CHANGELOG_COMPACTION_LAG",
    )

    kafka_outage_limit: float = setting(
        180.0,
        "Seconds a worker rides out Kafka not storing its outputs or checkpoints, or not "
        "serving its changelog (it retries, and restarts a partition from its last checkpoint "
        "when a write is given up) before it exits with status 1",
        env="CSMS_WORKER_KAFKA_OUTAGE_LIMIT",
    )
    static_membership: bool = setting(
        False,
        "Join the group as a static member (group.instance.id <group>-<instance>; the instance "
        "name must be unique and stable): a worker restarted within the session timeout gets "
        "its partitions back without a rebalance, and a stopped one keeps them that long",
        env="CSMS_WORKER_STATIC_MEMBERSHIP",
    )

    def group_for(self, worker: str) -> str:
        return self.group or f"csms-{worker}"
