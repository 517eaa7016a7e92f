"""Every metric the alerts worker exports, in one place (Prometheus naming; never a station
id as label).

Label values come from closed sets: the rule names, the severities and the states of
an alert's life. The worker sets the gauges from its open alerts
and counts each change of state (the notifier's metrics:
:mod:`workers.alerts.notify.metrics`); the runtime's ``csms_worker_*`` metrics
(:mod:`workers.runtime.metrics`) describe its consuming as for any worker.

==============================================  =========  ==================================
name                                            type       meaning
==============================================  =========  ==================================
``csms_alerts_firing``                          gauge      alerts firing now, by rule, severity
``csms_alerts_pending``                         gauge      alerts waiting for their duration
``csms_alerts_transitions_total``               counter    changes of state, by rule and state
``csms_alerts_flapping``                        gauge      alerts held because they flap
==============================================  =========  ==================================
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

__all__ = ["TRANSITIONS", "AlertsMetrics", "OpenAlerts"]

TRANSITIONS = ("pending", "firing", "resolved")
"""The ``to`` label values: the states an alert enters."""


class AlertsMetrics:
    """The alerts worker's metrics, registered on ``registry``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.open = OpenAlerts()
        registry.register(self.open)
        self.transitions = Counter(
            "csms_alerts_transitions",
            "Changes of an alert's state, by rule and the state entered "
            "(pending, firing, resolved)",
            ["rule", "to"],
            registry=registry,
        )


OpenAlert = tuple[str, str, bool, bool]
"""(rule, severity, firing, flapping) of one open alert."""


class OpenAlerts(Collector):
    """The gauges of open alerts, counted at each scrape from the worker's states.

    ``source`` (set by the worker once it runs) yields every alert the
    instance holds open; the counts are of the stations it owns.
    """

    labelnames = ("rule", "severity")

    def __init__(self) -> None:
        self.source: Callable[[], Iterable[OpenAlert]] = lambda: ()
        self.rules: dict[str, str] = {}  # rule -> severity: every rule has its series, 0 or not

    def collect(self) -> Iterator[GaugeMetricFamily]:
        firing: Tally[tuple[str, str]] = Tally()
        pending: Tally[tuple[str, str]] = Tally()
        flapping: Tally[tuple[str, str]] = Tally()
        for rule, severity, is_firing, is_flapping in self.source():
            (firing if is_firing else pending)[rule, severity] += 1
            flapping[rule, severity] += is_flapping
        families = (
            ("csms_alerts_firing", "Alerts raised and not cleared, by rule and severity", firing),
            (
                "csms_alerts_pending",
                "Alerts whose condition holds but not yet for its "
                "minimum duration, by rule and severity",
                pending,
            ),
            (
                "csms_alerts_flapping",
                "Firing alerts held because they flap (neither raised "
                "again nor cleared), by rule and severity",
                flapping,
            ),
        )
        for name, text, counts in families:
            family = GaugeMetricFamily(name, text, labels=list(self.labelnames))
            for rule, severity in sorted(self.rules.items()):
                family.add_metric([rule, severity], counts[rule, severity])
            yield family
