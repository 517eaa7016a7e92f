"""contracts.service as a package: its exports, its dependencies, its metric names."""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys

from prometheus_client import CollectorRegistry

import contracts.service
from contracts.service.metrics import ProcessMetrics

MODULES = ["gc_policy", "logs", "loop_lag", "metrics", "runtime", "status"]


def test_every_exported_name_exists_and_is_the_modules_own() -> None:
    exported = {}
    for name in MODULES:
        module = importlib.import_module(f"contracts.service.{name}")
        for symbol in module.__all__:
            assert hasattr(module, symbol), f"{name}.__all__ names a missing {symbol}"
            exported[symbol] = getattr(module, symbol)
    assert sorted(contracts.service.__all__) == contracts.service.__all__
    for symbol in contracts.service.__all__:
        assert getattr(contracts.service, symbol) is exported[symbol]


def test_importing_it_loads_nothing_heavy_and_nothing_outside_contracts() -> None:
    code = (
        "import json, sys, contracts.service; "
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    loaded = set(json.loads(result.stdout))
    assert {"orjson", "prometheus_client", "uvloop"} <= loaded
    assert not loaded & {"gateway", "workers", "loadtest", "aiokafka", "websockets", "msgspec"}


def test_metric_names_follow_prometheus_conventions() -> None:
    registry = CollectorRegistry()
    ProcessMetrics(registry)
    families = {family.name: family for family in registry.collect()}
    ours = {name: f for name, f in families.items() if name.startswith("csms_")}
    assert set(ours) == {
        "csms_event_loop_lag_seconds",
        "csms_event_loop_lag_max_seconds",
        "csms_gc_collection_seconds",
        "csms_gc_collections",
        "csms_gc_objects_collected",
        "csms_gc_freezes",
        "csms_gc_frozen_objects",
    }
    for name, family in ours.items():
        assert re.fullmatch(r"csms_[a-z0-9_]+", name)
        assert family.documentation
        if family.type == "counter":
            assert all(s.name.endswith(("_total", "_created")) for s in family.samples)
        if family.type == "histogram":
            assert name.endswith("_seconds")
        for sample in family.samples:
            assert set(sample.labels) <= {"generation", "le"}  # never a station id
    assert {"process_open_fds", "process_max_fds", "process_resident_memory_bytes"} <= set(families)
    assert "python_info" in families


def test_each_registry_gets_its_own_metrics() -> None:
    first, second = CollectorRegistry(), CollectorRegistry()
    a, b = ProcessMetrics(first), ProcessMetrics(second)
    a.gc_freezes_total.inc()
    assert first.get_sample_value("csms_gc_freezes_total") == 1
    assert second.get_sample_value("csms_gc_freezes_total") == 0
    assert b.gc_freezes_total is not a.gc_freezes_total
