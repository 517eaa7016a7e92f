"""The Grafana dashboards: well-formed, shipped by the chart as they are, about metrics that
exist.

The dashboards live once, in helm/csms/dashboards/ (Helm reads files inside the chart
only); deploy/grafana/ points there for whoever imports them without Helm. Every panel's
PromQL is parsed with promql-parser after Grafana's variables are put in, and each metric
and label it selects or groups by is looked up in csms's metric definitions
(tests/deploy/promql.py), so renaming a metric or a label breaks this test rather than a
panel.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.deploy.chart import CHART, NAMESPACE, ROOT, Manifest, of_kind, render, template
from tests.deploy.promql import csms_metrics, known_labels, result_labels, selectors

DASHBOARDS = CHART / "dashboards"
DEPLOYED = ROOT / "deploy" / "grafana"
NAMES = ["csms-fleet.json", "csms-gateway.json", "csms-workers.json"]

GRAFANA_VARIABLES = {
    "__rate_interval": "1m",
    "__interval": "30s",
    "__range": "6h",
}
"""Grafana's own variables, with a value each as Grafana would put in."""

VARIABLE = re.compile(r"\$(\w+)|\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]")
LEGEND_LABEL = re.compile(r"\{\{\s*(\w+)\s*\}\}")
LABEL_VALUES = re.compile(r"^label_values\((?:(.+),\s*)?(\w+)\)$")


def load(name: str) -> dict[str, Any]:
    board: dict[str, Any] = json.loads((DASHBOARDS / name).read_text(encoding="utf-8"))
    return board


def panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, those inside collapsed rows included."""
    for panel in board["panels"]:
        yield panel
        yield from panel.get("panels", [])


def substitute(text: str, board: dict[str, Any]) -> str:
    """``text`` with each variable replaced by a value; unknown variables fail the test."""
    defined = {v["name"] for v in board["templating"]["list"]}

    def value(match: re.Match[str]) -> str:
        name = next(g for g in match.groups() if g)
        if name in GRAFANA_VARIABLES:
            return GRAFANA_VARIABLES[name]
        assert name in defined, f"{board['uid']}: ${name} is not a variable of the dashboard"
        return "value"

    return VARIABLE.sub(value, text)


def queries(board: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
    """(panel title, PromQL with the variables put in, legend format) of every target."""
    for panel in panels(board):
        for target in panel.get("targets", []):
            yield panel["title"], substitute(target["expr"], board), target.get("legendFormat", "")


@pytest.fixture(scope="module")
def exported() -> dict[str, set[str]]:
    return csms_metrics()


def test_the_dashboards_are_the_expected_files() -> None:
    assert sorted(p.name for p in DASHBOARDS.iterdir()) == NAMES


def test_deploy_grafana_holds_the_charts_dashboards() -> None:
    # one copy: deploy/grafana is a link to the chart's folder, not a copy that can go stale
    assert sorted(p.name for p in DEPLOYED.iterdir()) == NAMES
    for name in NAMES:
        assert (DEPLOYED / name).read_bytes() == (DASHBOARDS / name).read_bytes(), name


def test_each_dashboard_is_importable() -> None:
    uids = set()
    for name in NAMES:
        board = load(name)
        assert re.fullmatch(r"[a-z0-9-]{1,40}", board["uid"]), name
        assert f"{board['uid']}.json" == name
        uids.add(board["uid"])
        assert board["id"] is None  # an import creates the dashboard, never overwrites one
        assert board["title"].startswith("csms / ")
        ids = [p["id"] for p in panels(board)]
        assert len(ids) == len(set(ids)), f"{name}: panel ids repeat"
        targets = [t for p in panels(board) for t in p.get("targets", [])]
        assert targets, name
        for panel in panels(board):
            assert panel["title"], f"{name}: a panel without a title"
            if panel["type"] != "row":
                assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
                assert panel["description"], f"{name}: {panel['title']} says nothing"
            refs = [t["refId"] for t in panel.get("targets", [])]
            assert len(refs) == len(set(refs)), f"{name}: {panel['title']}"
        for target in targets:
            assert target["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
    assert len(uids) == len(NAMES)


def test_each_dashboard_asks_for_a_data_source_and_a_namespace() -> None:
    for name in NAMES:
        variables = {v["name"]: v for v in load(name)["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource"
        assert variables["datasource"]["query"] == "prometheus"
        assert variables["namespace"]["type"] == "query"
        for variable in variables.values():
            if variable["type"] == "query":
                assert variable["datasource"] == {"type": "prometheus", "uid": "${datasource}"}


def test_every_query_parses_and_names_metrics_and_labels_that_exist(
    exported: dict[str, set[str]],
) -> None:
    checked = 0
    for name in NAMES:
        board = load(name)
        for title, expr, legend in queries(board):
            where = f"{name}: {title}"
            try:
                found = selectors(expr)
            except ValueError as exc:
                pytest.fail(f"{where}: {exc}\n{expr}")
            for metric, labels in found:
                known = known_labels(metric, exported)
                assert known is not None, f"{where}: csms exports no {metric}"
                assert set(labels) <= known, f"{where}: {metric} has no {set(labels) - known}"
                checked += 1
            try:
                result = result_labels(expr, exported)
            except AssertionError as exc:
                pytest.fail(f"{where}: {exc}\n{expr}")
            shown = set(LEGEND_LABEL.findall(legend))
            assert shown <= result, f"{where}: the legend shows {shown - result}, never set"
    assert checked > 50


def test_every_variable_query_names_a_metric_and_label_that_exist(
    exported: dict[str, set[str]],
) -> None:
    for name in NAMES:
        board = load(name)
        for variable in board["templating"]["list"]:
            if variable["type"] != "query":
                continue
            match = LABEL_VALUES.fullmatch(variable["definition"])
            assert match, f"{name}: ${variable['name']} is not a label_values() query"
            assert variable["query"]["query"] == variable["definition"]
            selector, label = match.groups()
            assert selector, f"{name}: ${variable['name']} would read every series"
            ((metric, _),) = selectors(substitute(selector, board))
            known = known_labels(metric, exported)
            assert known is not None, f"{name}: ${variable['name']}: no {metric}"
            assert label in known, f"{name}: ${variable['name']}: {metric} has no {label}"


def test_a_misspelt_metric_or_label_is_found(exported: dict[str, set[str]]) -> None:
    # the checks above, on a panel gone wrong: the counter without _total, a label it lacks
    assert known_labels("csms_gateway_connections_opened", exported) is None
    with pytest.raises(AssertionError, match="reason"):
        result_labels("sum by (reason) (rate(csms_gateway_connections_opened_total[1m]))", exported)


def test_no_station_id_anywhere(exported: dict[str, set[str]]) -> None:
    # what the dashboards can group by is what the metrics carry: never a station
    station = re.compile(r"station|charge_?point|evse|connector|serial", re.I)
    assert not {n: ls for n, ls in exported.items() if any(station.search(label) for label in ls)}
    for name in NAMES:
        board = load(name)
        assert not [v for v in board["templating"]["list"] if station.search(v["name"])]
        for title, _, legend in queries(board):
            assert not station.search(" ".join(LEGEND_LABEL.findall(legend))), title


# --------------------------------------------------------------------------- the chart


def dashboards_configmap(objects: list[Manifest]) -> Manifest:
    (config,) = [
        o for o in of_kind(objects, "ConfigMap") if o["metadata"]["name"].endswith("-dashboards")
    ]
    return config


def test_the_dashboards_configmap_is_off_by_default() -> None:
    for values in ("default", "offload"):
        names = [o["metadata"]["name"] for o in of_kind(render(values), "ConfigMap")]
        assert not [n for n in names if n.endswith("-dashboards")], values


def test_the_chart_ships_every_dashboard_for_the_sidecar() -> None:
    config = dashboards_configmap(render("full"))
    assert config["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert config["metadata"]["annotations"] == {"grafana_folder": "EV charging"}
    assert config["metadata"]["namespace"] == NAMESPACE
    assert sorted(config["data"]) == NAMES
    for name in NAMES:
        assert config["data"][name] == (DASHBOARDS / name).read_text(encoding="utf-8")
    # a ConfigMap holds at most 1 MiB; keep room for more dashboards
    assert sum(len(v.encode()) for v in config["data"].values()) < 512 * 1024


def test_the_sidecar_label_and_the_namespace_come_from_the_values() -> None:
    text = template(
        None,
        "metrics.grafanaDashboards.enabled=true",
        "metrics.grafanaDashboards.labels.grafana_dashboard=null",
        "metrics.grafanaDashboards.labels.dashboards=csms",
        "metrics.grafanaDashboards.namespace=monitoring",
    )
    config = dashboards_configmap([d for d in yaml.safe_load_all(text) if d])
    assert config["metadata"]["labels"]["dashboards"] == "csms"
    assert "grafana_dashboard" not in config["metadata"]["labels"]
    assert "annotations" not in config["metadata"]
    assert config["metadata"]["namespace"] == "monitoring"
