"""The notifier's metrics (Prometheus naming; the receiver label is a configured name).

=================================================  =========  ==================================
name                                               type       meaning
=================================================  =========  ==================================
``csms_alerts_notifications_total``                counter    alert records handled, by receiver
                                                              and outcome: ``delivered``,
                                                              ``retried`` (an attempt failed and
                                                              another follows), ``failed`` (given
                                                              up), ``duplicate``, ``silenced``
``csms_alerts_notification_duration_seconds``      histogram  one delivery attempt (the POST), by
                                                              receiver
``csms_alerts_reposts_total``                      counter    re-posts of the raised alerts to
                                                              Alertmanager, by outcome: ``posted``,
                                                              ``failed``
=================================================  =========  ==================================
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

__all__ = ["NotifyMetrics"]

_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class NotifyMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.notifications = Counter(
            "csms_alerts_notifications",
            "Alert records handled by a receiver, by outcome",
            ["receiver", "outcome"],
            registry=registry,
        )
        self.reposts = Counter(
            "csms_alerts_reposts",
            "Re-posts of every raised alert to Alertmanager, by outcome (posted, failed)",
            ["outcome"],
            registry=registry,
        )
        self.duration = Histogram(
            "csms_alerts_notification_duration_seconds",
            "One delivery attempt (an HTTP POST), by receiver",
            ["receiver"],
            buckets=_BUCKETS,
            registry=registry,
        )

    def count(self, receiver: str, outcome: str) -> None:
        self.notifications.labels(receiver, outcome).inc()
