"""Every metric a worker exports, in one place (Prometheus naming; never a station id as label).

Label values come from closed sets: the OCPP actions a worker handles, the
outcomes and anomalies its logic names, the dead-letter reasons below, and the
partition numbers of ``ocpp.events.v1``. Children the hot path touches are
resolved once and cached (``labels(...)`` costs about a microsecond).

==========================================  =========  =======================================
name                                        type       meaning
==========================================  =========  =======================================
``csms_worker_records_total``               counter    events handled, by action and outcome
``csms_worker_records_skipped_total``       counter    events skipped on their header, unread
``csms_worker_processing_seconds``          histogram  deciding and publishing one event
``csms_worker_replies_total``               counter    replies to station calls, by outcome
``csms_worker_reply_delay_seconds``         histogram  from the gateway's receipt to the reply
``csms_worker_dead_letters_total``          counter    records given up on, by reason
``csms_worker_anomalies_total``             counter    irregularities found, by anomaly
``csms_worker_consumer_lag_records``        gauge      records not yet handled, by partition
``csms_worker_partitions``                  gauge      partitions this instance owns
``csms_worker_states``                      gauge      keys (stations) with state held here
``csms_worker_rebalances_total``            counter    partition assignments received
``csms_worker_restore_seconds``             histogram  reading assigned partitions' state back
``csms_worker_checkpoints_total``           counter    checkpoints written and committed
``csms_worker_checkpoint_seconds``          histogram  from closing a checkpoint to its commit
``csms_worker_changelog_records_total``     counter    state records written to the changelog
``csms_worker_rewinds_total``               counter    partitions restored after a write given up
==========================================  =========  =======================================
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["WorkerMetrics"]

_PROCESSING_BUCKETS = (0.00002, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05)
_DELAY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_SLOW_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class WorkerMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self._records = Counter(
            "csms_worker_records",
            "Events handled, by OCPP action and outcome",
            ["action", "outcome"],
            registry=registry,
        )
        self.records_skipped = Counter(
            "csms_worker_records_skipped",
            "Events skipped on their ocpp-action header, without being decoded",
            registry=registry,
        )
        self._processing = Histogram(
            "csms_worker_processing_seconds",
            "Deciding about one event and handing its outputs to the producer, by action",
            ["action"],
            buckets=_PROCESSING_BUCKETS,
            registry=registry,
        )
        replies = Counter(
            "csms_worker_replies",
            "Replies to station calls: sent, or late (past reply_by, not sent)",
            ["outcome"],
            registry=registry,
        )
        self.replies_sent = replies.labels("sent")
        self.replies_late = replies.labels("late")
        self.reply_delay = Histogram(
            "csms_worker_reply_delay_seconds",
            "From the gateway receiving a call to the worker handing its reply to the producer",
            buckets=_DELAY_BUCKETS,
            registry=registry,
        )
        self.dead_letters = Counter(
            "csms_worker_dead_letters",
            "Records written to csms.dead-letter.v1, by reason (undecodable, rejected, failed)",
            ["reason"],
            registry=registry,
        )
        self.anomalies = Counter(
            "csms_worker_anomalies",
            "Irregularities in what stations reported, by anomaly (docs/workers.md)",
            ["anomaly"],
            registry=registry,
        )
        self.lag = Gauge(
            "csms_worker_consumer_lag_records",
            "Records of ocpp.events.v1 not yet handled, by partition (owned partitions only)",
            ["partition"],
            registry=registry,
        )
        self.partitions = Gauge(
            "csms_worker_partitions",
            "Partitions of ocpp.events.v1 this instance owns",
            registry=registry,
        )
        self.states = Gauge(
            "csms_worker_states",
            "Keys (stations) whose state this instance holds",
            registry=registry,
        )
        self.rebalances = Counter(
            "csms_worker_rebalances",
            "Partition assignments received from the consumer group",
            registry=registry,
        )
        self.restore_seconds = Histogram(
            "csms_worker_restore_seconds",
            "Reading the state of newly assigned partitions back from the changelog",
            buckets=_SLOW_BUCKETS,
            registry=registry,
        )
        self.checkpoints = Counter(
            "csms_worker_checkpoints",
            "Checkpoints written to the changelog and committed",
            registry=registry,
        )
        self.checkpoint_seconds = Histogram(
            "csms_worker_checkpoint_seconds",
            "From closing a checkpoint to committing its offset (outputs and state acknowledged)",
            buckets=_SLOW_BUCKETS,
            registry=registry,
        )
        self.rewinds = Counter(
            "csms_worker_rewinds",
            "Partitions restored from their last checkpoint because Kafka gave up a write",
            registry=registry,
        )
        self.changelog_records = Counter(
            "csms_worker_changelog_records",
            "State records (and checkpoints) written to the changelog",
            registry=registry,
        )
        self._record_children: dict[tuple[str, str], Counter] = {}
        self._processing_children: dict[str, Histogram] = {}

    def record(self, action: str, outcome: str, seconds: float) -> None:
        key = (action, outcome)
        counter = self._record_children.get(key)
        if counter is None:
            counter = self._record_children[key] = self._records.labels(action, outcome)
        counter.inc()
        histogram = self._processing_children.get(action)
        if histogram is None:
            histogram = self._processing_children[action] = self._processing.labels(action)
        histogram.observe(seconds)
