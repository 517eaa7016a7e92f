"""The chart's PrometheusRule and ServiceMonitor: well-formed, and about metrics that exist.

promtool is a Debian package that CI does not install, so the rules are checked here
with other means: a JSON schema for the part of the Prometheus Operator's CRDs the
chart uses (unknown fields are errors, as the CRD's structural schema makes them),
the PromQL of every alert parsed by promql-parser (a port of Prometheus's own parser:
syntax, function names, argument types), and every metric and label an alert selects or
groups by looked up in csms's metric definitions (gateway/metrics.py,
contracts/service/metrics.py, workers/*/metrics.py; tests/deploy/promql.py), so
renaming a metric breaks this test rather than the alert. (docs/deployment.md says how
to check the rendered rules with promtool too.)
"""

from __future__ import annotations

import re
from typing import Any

import jsonschema
import promql_parser
import pytest
import yaml

from tests.deploy.chart import (
    FULLNAME,
    NAMESPACE,
    VALUES_FILES,
    named,
    of_kind,
    render,
    template,
)
from tests.deploy.promql import csms_metrics, known_labels, result_labels, selectors

DURATION = "^([0-9]+(ms|s|m|h|d|w|y))+$"
LABELS = {"type": "object", "additionalProperties": {"type": "string"}}

PROMETHEUS_RULE = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "PrometheusRule"},
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "required": ["groups"],
            "properties": {
                "groups": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["name", "rules"],
                        "properties": {
                            "name": {"type": "string", "minLength": 1},
                            "interval": {"type": "string", "pattern": DURATION},
                            "rules": {
                                "type": "array",
                                "minItems": 1,
                                "items": {
                                    "type": "object",
                                    "additionalProperties": False,
                                    "required": ["alert", "expr", "labels", "annotations"],
                                    "properties": {
                                        "alert": {
                                            "type": "string",
                                            "pattern": "^Csms[A-Z][A-Za-z]+$",
                                        },
                                        "expr": {"type": "string", "minLength": 1},
                                        "for": {"type": "string", "pattern": DURATION},
                                        "keep_firing_for": {"type": "string", "pattern": DURATION},
                                        "labels": {
                                            **LABELS,
                                            "required": ["severity"],
                                            "properties": {
                                                "severity": {
                                                    "enum": ["info", "warning", "critical"]
                                                }
                                            },
                                        },
                                        "annotations": {
                                            **LABELS,
                                            "required": ["summary", "description"],
                                        },
                                    },
                                },
                            },
                        },
                    },
                }
            },
        },
    },
}
"""The part of the PrometheusRule CRD (monitoring.coreos.com/v1) the chart uses."""

SERVICE_MONITOR = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "ServiceMonitor"},
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "required": ["selector", "endpoints"],
            "properties": {
                "jobLabel": {"type": "string"},
                "selector": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"matchLabels": LABELS},
                },
                "endpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["port"],
                        "properties": {
                            "port": {"type": "string"},
                            "path": {"type": "string", "pattern": "^/"},
                            "interval": {"type": "string", "pattern": DURATION},
                            "scrapeTimeout": {"type": "string", "pattern": DURATION},
                        },
                    },
                },
            },
        },
    },
}
"""The part of the ServiceMonitor CRD (monitoring.coreos.com/v1) the chart uses."""


def rules(values: str) -> list[dict[str, Any]]:
    (rule,) = of_kind(render(values), "PrometheusRule")
    return [r for group in rule["spec"]["groups"] for r in group["rules"]]


MONITORED = ["full", "offload"]
"""The value sets that turn the ServiceMonitor and the PrometheusRule on."""


def test_monitoring_is_off_by_default() -> None:
    kinds = {o["kind"] for o in render("default")}
    assert not kinds & {"ServiceMonitor", "PrometheusRule"}


@pytest.mark.parametrize("values", MONITORED)
def test_prometheus_rule_is_well_formed(values: str) -> None:
    (rule,) = of_kind(render(values), "PrometheusRule")
    jsonschema.validate(rule, PROMETHEUS_RULE)
    names = [r["alert"] for r in rules(values)]
    assert len(names) == len(set(names))
    assert set(names) == {
        "CsmsGatewayNotReady",
        "CsmsGatewayBackpressure",
        "CsmsKafkaPublishErrors",
        "CsmsEventLoopLag",
        "CsmsFailedLoginsSpike",
        "CsmsOpenFilesNearLimit",
        "CsmsConsumerLag",
        "CsmsWorkerLag",
        "CsmsWorkerDeadLetters",
        "CsmsWorkerLateReplies",
        "CsmsAlertNotificationsFailing",
    }


def test_the_rule_schema_rejects_a_misspelt_field() -> None:
    (rule,) = of_kind(render("full"), "PrometheusRule")
    rule["spec"]["groups"][0]["rules"][0]["for_"] = rule["spec"]["groups"][0]["rules"][0]["for"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(rule, PROMETHEUS_RULE)


@pytest.mark.parametrize("values", MONITORED)
def test_alert_expressions_parse_as_promql(values: str) -> None:
    for rule in rules(values):
        try:
            promql_parser.parse(rule["expr"])
        except ValueError as exc:
            pytest.fail(f"{rule['alert']}: {exc}\n{rule['expr']}")
        promql_parser.parse_duration(rule["for"])


def test_the_parser_rejects_broken_promql() -> None:
    for broken in [
        "rate(csms_gateway_kafka_records_total[5m]",  # unbalanced
        "rat(csms_gateway_kafka_records_total[5m])",  # no such function
        "rate(csms_gateway_kafka_records_total)",  # rate needs a range vector
    ]:
        with pytest.raises(ValueError):  # noqa: PT011 - the parser raises bare ValueErrors
            promql_parser.parse(broken)


def test_the_metric_definitions_include_every_worker() -> None:
    exported = csms_metrics()
    assert exported["csms_worker_dead_letters_total"] == {"reason"}  # workers/runtime
    assert exported["csms_alerts_firing"] == {"rule", "severity"}  # workers/alerts
    assert exported["csms_alerts_notification_duration_seconds_bucket"] == {"receiver", "le"}
    assert "csms_alerts_notification_duration_seconds" not in exported


@pytest.mark.parametrize("values", MONITORED)
def test_alerts_select_metrics_and_labels_that_exist(values: str) -> None:
    exported = csms_metrics()
    for rule in rules(values):
        for name, labels in selectors(rule["expr"]):
            known = known_labels(name, exported)
            assert known is not None, (
                f"{rule['alert']} selects {name}, which csms does not export "
                "(gateway/metrics.py, contracts/service/metrics.py, workers/*/metrics.py)"
            )
            assert set(labels) <= known, (
                f"{rule['alert']}: {name} has no label {set(labels) - known}"
            )
        result_labels(rule["expr"], exported)  # groups by labels that exist


def test_a_grouping_label_the_metric_lacks_is_found() -> None:
    exported = csms_metrics()
    assert result_labels(
        "sum by (pod, reason) (rate(csms_worker_dead_letters_total[5m]))", exported
    ) == {"pod", "reason"}
    with pytest.raises(AssertionError, match="no \\['reason'\\]"):
        result_labels("sum by (reason) (csms_worker_consumer_lag_records) > 1", exported)


@pytest.mark.parametrize("values", MONITORED)
def test_csms_alerts_are_scoped_to_the_release(values: str) -> None:
    for rule in rules(values):
        for name, labels in selectors(rule["expr"]):
            if name == "kafka_consumergroup_lag":
                continue  # the exporter runs beside Kafka, in Kafka's namespace
            assert labels.get("namespace") == f'namespace="{NAMESPACE}"', rule["alert"]
            scope = labels.get("service", labels.get("pod", ""))
            assert FULLNAME in scope, f"{rule['alert']}: {name} is not limited to the release"


def test_alert_thresholds_come_from_the_values() -> None:
    defaults = {r["alert"]: r for r in rules("offload")}
    tuned = {r["alert"]: r for r in rules("full")}
    assert defaults["CsmsEventLoopLag"]["expr"].endswith("> 0.25")
    assert tuned["CsmsEventLoopLag"]["expr"].endswith("> 0.5")
    assert tuned["CsmsEventLoopLag"]["labels"]["severity"] == "critical"
    assert defaults["CsmsConsumerLag"]["expr"].endswith("> 50000")
    assert defaults["CsmsWorkerLag"]["expr"].endswith("> 10000")


def test_an_alert_can_be_turned_off() -> None:
    text = template(
        VALUES_FILES["full"], "metrics.prometheusRule.alerts.failedLogins.enabled=false"
    )
    (rule,) = [d for d in yaml.safe_load_all(text) if d and d["kind"] == "PrometheusRule"]
    names = {r["alert"] for g in rule["spec"]["groups"] for r in g["rules"]}
    assert "CsmsFailedLoginsSpike" not in names
    assert "CsmsEventLoopLag" in names


def test_the_notifications_alert_watches_the_notifiers_pods() -> None:
    # csms_alerts_notifications_total is the notifier's, not a worker's: the alert's
    # service matcher must take in the notifier's metrics Service, which leads to its pods
    objects = render("full")
    (rule,) = [r for r in rules("full") if r["alert"] == "CsmsAlertNotificationsFailing"]
    ((metric, labels),) = selectors(rule["expr"])
    assert metric == "csms_alerts_notifications_total"
    matcher = re.fullmatch(r'service=~"(.+)"', labels["service"])
    assert matcher is not None, labels["service"]
    service = named(objects, "Service", f"{FULLNAME}-alerts-notify-metrics")
    assert re.fullmatch(matcher[1], service["metadata"]["name"])
    notifier = named(objects, "Deployment", f"{FULLNAME}-alerts-notify")
    pod_labels = notifier["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()


@pytest.mark.parametrize("values", MONITORED)
def test_service_monitor_finds_every_status_port(values: str) -> None:
    objects = render(values)
    (monitor,) = of_kind(objects, "ServiceMonitor")
    jsonschema.validate(monitor, SERVICE_MONITOR)
    wanted = monitor["spec"]["selector"]["matchLabels"]
    selected = [
        s for s in of_kind(objects, "Service") if wanted.items() <= s["metadata"]["labels"].items()
    ]
    notifier = {f"{FULLNAME}-alerts-notify-metrics"} if values == "full" else set()
    assert {s["metadata"]["name"] for s in selected} == {
        f"{FULLNAME}-gateway-metrics",
        f"{FULLNAME}-sessions-metrics",
        f"{FULLNAME}-status-metrics",
        f"{FULLNAME}-alerts-metrics",
        *notifier,
    }
    for service in selected:
        assert service["spec"]["clusterIP"] == "None"
        ports = {p["name"] for p in service["spec"]["ports"]}
        assert {e["port"] for e in monitor["spec"]["endpoints"]} <= ports
