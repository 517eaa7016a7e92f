"""Which ``CSMS_*`` settings the chart sets, and which it lets the operator set in ``config``.

csms ignores an environment variable it does not know, so a misspelt
``gateway.config.CSMS_PING_INTERVALL`` would be silently lost.
helm/csms/values.schema.json therefore lists, under ``$defs``, the setting names
each ``config`` map accepts: the settings the processes read (from
:func:`contracts.settings.describe` on their settings classes) less the ones
the chart sets from dedicated values (:data:`CHART_MANAGED`), so every setting
has exactly one place in the values. ``helm lint`` and ``helm install`` then
reject a typo.

``python -m tests.deploy.settings_schema`` rewrites those enums after a
setting was added or removed; tests/deploy/test_chart_values.py fails while
they are stale.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import pkgutil
import sys
from pathlib import Path
from typing import Any

from contracts.bus.admin import TopicSettings
from contracts.service.runtime import ServiceSettings
from contracts.settings import KafkaSettings, describe
from gateway.settings import GatewaySettings
from workers.alerts.notify.settings import NotifySettings

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "helm" / "csms" / "values.schema.json"

CHART_MANAGED = frozenset(
    {
        # kafka.*
        "CSMS_KAFKA_BOOTSTRAP",
        "CSMS_KAFKA_IDEMPOTENCE",
        "CSMS_KAFKA_COMPRESSION",
        "CSMS_KAFKA_SECURITY_PROTOCOL",
        "CSMS_KAFKA_SASL_MECHANISM",
        "CSMS_KAFKA_SASL_USERNAME",
        "CSMS_KAFKA_SASL_PASSWORD",
        "CSMS_KAFKA_SSL_CAFILE",
        # logLevel, the status ports (the probes point at them)
        "CSMS_LOG_LEVEL",
        "CSMS_STATUS_PORT",
        # gateway.ports, .tls, .trustedProxies, .maxConnections, .pingInterval, .drain
        "CSMS_PORT",
        "CSMS_TLS_PORT",
        "CSMS_TLS_CERT",
        "CSMS_TLS_KEY",
        "CSMS_TLS_CLIENT_CA",
        "CSMS_TLS_ORGANIZATION",
        "CSMS_TRUSTED_PROXIES",
        "CSMS_MAX_CONNECTIONS",
        "CSMS_PING_INTERVAL",
        "CSMS_DRAIN_TIMEOUT",
        "CSMS_DRAIN_CLOSE_PERIOD",
        # topics.*
        "CSMS_TOPIC_PARTITIONS",
        "CSMS_TOPIC_REPLICATION_FACTOR",
        # alertsNotify.alertmanagerUrl, .webhooks, .secret
        "CSMS_ALERTS_ALERTMANAGER_URL",
        "CSMS_ALERTS_WEBHOOKS",
        "CSMS_ALERTS_WEBHOOK_SECRETS",
    }
)
"""Settings the chart sets from values of their own (see values.yaml)."""

PER_POD = frozenset({"CSMS_INSTANCE"})
"""Settings that must differ between pods, so a ConfigMap cannot hold them: every gateway's
instance id names it in ocpp.presence.v1 (the default, the pod name, is right)."""


NOTIFIER = "workers.alerts.notify"
"""The package of ``csms alerts notify``, whose settings only the notifier reads."""


def names(cls: type[Any]) -> set[str]:
    """The environment variables a settings class reads."""
    return {row[0] for row in describe(cls)}


def _is_settings_class(obj: Any) -> bool:
    if not (isinstance(obj, type) and dataclasses.is_dataclass(obj)):
        return False
    try:
        describe(obj)
    except TypeError:  # a dataclass with a field not declared with setting()
        return False
    return True


def worker_settings_classes() -> list[type[Any]]:
    """Every settings class defined in the ``workers`` package (the workers' own settings),
    but the notifier's: ``csms alerts notify`` is a process of its own (:data:`NOTIFIER`)."""
    import workers

    found: dict[str, type[Any]] = {}
    for module_info in pkgutil.walk_packages(workers.__path__, "workers."):
        if module_info.name.startswith(NOTIFIER):
            continue
        module = importlib.import_module(module_info.name)
        for obj in vars(module).values():
            if _is_settings_class(obj) and obj.__module__ == module.__name__:
                found[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return [found[key] for key in sorted(found)]


def process_settings() -> dict[str, set[str]]:
    """The settings each kind of process reads: every process, the gateway, workers, the
    alerts notifier, topics."""
    common = names(ServiceSettings) | names(KafkaSettings)
    worker = set(common)
    for cls in worker_settings_classes():
        worker |= names(cls)
    return {
        "common": common,
        "gateway": names(GatewaySettings),
        "worker": worker,
        "notify": common | names(NotifySettings),
        "topics": names(TopicSettings),
    }


def expected_enums() -> dict[str, list[str]]:
    """The ``$defs`` enums of values.schema.json, as they should be."""
    settings = process_settings()
    return {
        "commonSettingName": sorted(settings["common"] - CHART_MANAGED - PER_POD),
        "gatewaySettingName": sorted(settings["gateway"] - CHART_MANAGED - PER_POD),
        "workerSettingName": sorted(settings["worker"] - CHART_MANAGED - PER_POD),
        "notifySettingName": sorted(settings["notify"] - CHART_MANAGED - PER_POD),
    }


def rewrite(path: Path = SCHEMA) -> bool:
    """Put the expected enums into the schema file; True if it changed."""
    text = path.read_text(encoding="utf-8")
    schema = json.loads(text)
    for name, enum in expected_enums().items():
        schema["$defs"][name] = {"enum": enum}
    new = json.dumps(schema, indent=2) + "\n"
    if new == text:
        return False
    path.write_text(new, encoding="utf-8")
    return True


if __name__ == "__main__":
    changed = rewrite()
    print(f"{SCHEMA.relative_to(ROOT)}: {'updated' if changed else 'up to date'}")
    sys.exit(0)
