"""helm/csms: lint, render, validate against the Kubernetes schemas, and check what matters.

Every value set in tests/deploy/chart.py (defaults, every option on, TLS offload) is
linted strictly, rendered, and each object validated with kubernetes-validate against
the Kubernetes 1.30 schemas in strict mode (unknown fields are errors). The Prometheus
Operator's objects have no schema there: tests/deploy/test_alerts.py checks them. Then
the properties an operator relies on are asserted on the rendered objects.
"""

from __future__ import annotations

import copy
import re
import tempfile
from pathlib import Path

import pytest
import yaml

try:
    import kubernetes_validate
except ImportError as exc:  # fail loudly: a missing validator must not pass as "no error"
    raise ImportError(
        "kubernetes-validate is not installed: it is one of csms's dev dependencies "
        "(pyproject.toml [dev]); run `make unit` to reinstall .venv"
    ) from exc

from contracts.settings import load
from tests.deploy.chart import (
    CHART,
    FULLNAME,
    ROOT,
    VALUES_FILES,
    component,
    container_env,
    lint,
    named,
    of_kind,
    pod_spec,
    render,
    render_notes,
    run_helm,
    template,
    workloads,
)
from tests.deploy.settings_schema import process_settings
from workers.alerts.notify.settings import NotifySettings

KUBERNETES_VERSION = "1.30.0"
"""The oldest Kubernetes the rendered manifests are checked against (Chart.yaml allows
1.27+; 1.30 is the oldest release still maintained by the big clouds)."""

CUSTOM_RESOURCES = {"ServiceMonitor", "PrometheusRule"}
"""Kinds without a schema in kubernetes-validate (the Prometheus Operator's CRDs)."""

VALUE_SETS = list(VALUES_FILES)

WORKERS = {"sessions-worker", "status-worker", "alerts-worker"}
"""The components of the workers the chart runs by default."""


def components(values: str) -> set[str]:
    """The long-running components a value set deploys: the notifier only in "full"."""
    notifier = {"alerts-notify"} if values == "full" else set()
    return {"gateway", *WORKERS, *notifier}


def _seconds(text: str) -> float:
    return float(text)


# --------------------------------------------------------------------------- helm lint


@pytest.mark.parametrize("values", VALUE_SETS)
def test_chart_lints_strictly(values: str) -> None:
    done = lint(VALUES_FILES[values])
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 chart(s) failed" in done.stdout


@pytest.mark.parametrize(
    ("setting", "complaint"),
    [
        ("gateway.replica=3", "replica"),  # misspelt key: values.schema.json has no such key
        ("gateway.config.CSMS_PING_INTERVALL=5", "CSMS_PING_INTERVALL"),  # not a csms setting
        ("gateway.config.CSMS_KAFKA_BOOTSTRAP=x:1", "CSMS_KAFKA_BOOTSTRAP"),  # set by kafka.*
        ("kafka.securityProtocol=TLS", "securityProtocol"),
        ("gateway.service.type=ExternalName", "type"),
        # the notifier's setting, which no worker reads
        ("workers.alerts.config.CSMS_ALERTS_RETRY_LIMIT=60", "CSMS_ALERTS_RETRY_LIMIT"),
        # set from alertsNotify.secret, never inline
        ("alertsNotify.config.CSMS_ALERTS_WEBHOOK_SECRETS=x", "CSMS_ALERTS_WEBHOOK_SECRETS"),
        ("alertsNotify.webhooks.Pager=https://pager.example.com", "Pager"),
        ("alertsNotify.alertmanagerUrl=alertmanager:9093", "alertmanagerUrl"),
    ],
)
def test_lint_rejects_a_wrong_value(setting: str, complaint: str) -> None:
    done = lint(None, setting)
    assert done.returncode != 0, f"helm lint accepted --set {setting}"
    assert complaint in done.stdout + done.stderr


@pytest.mark.parametrize(
    ("settings", "complaint"),
    [
        (["gateway.tls.enabled=true"], "certificateSecrets"),
        (["gateway.drain.closePeriodSeconds=30"], "closePeriodSeconds"),
        (["kafka.securityProtocol=SASL_SSL"], "existingSecret"),
        (["gateway.service.exposeWs=false"], "no port"),
        (
            ["alertsNotify.enabled=true"],
            "alertsNotify.enabled needs a receiver: set alertsNotify.alertmanagerUrl, "
            "alertsNotify.webhooks or alertsNotify.secret.webhooksKey",
        ),
        (
            ["alertsNotify.enabled=true", "alertsNotify.secret.webhooksKey=webhooks"],
            "alertsNotify.secret.webhooksKey: set alertsNotify.secret.existingSecret",
        ),
        (
            [
                "alertsNotify.enabled=true",
                "alertsNotify.webhooks.pager=https://pager.example.com",
                "alertsNotify.secret.existingSecret=csms-alerts-notify",
                "alertsNotify.secret.webhooksKey=webhooks",
            ],
            "either in alertsNotify.webhooks or in the Secret",
        ),
    ],
)
def test_template_refuses_an_inconsistent_configuration(
    settings: list[str], complaint: str
) -> None:
    # helm lint reports a template's `fail` as INFO and passes: helm template refuses
    done = run_helm("template", "t", str(CHART), *(f"--set={s}" for s in settings))
    assert done.returncode != 0, f"helm template accepted {settings}"
    assert complaint in done.stderr


# --------------------------------------------------------------------------- Kubernetes schemas


@pytest.mark.parametrize("values", VALUE_SETS)
def test_manifests_are_valid_kubernetes_objects(values: str) -> None:
    errors = []
    checked = 0
    for obj in render(values):
        if obj["kind"] in CUSTOM_RESOURCES:
            continue
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
            checked += 1
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path)
            errors.append(f"{obj['kind']}/{obj['metadata']['name']}: {path}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError as exc:
            errors.append(f"{obj['kind']}/{obj['metadata']['name']}: {exc.message}")
    assert not errors, "\n".join(errors)
    assert checked >= 8


def test_the_validator_rejects_an_unknown_field() -> None:
    deployment = copy.deepcopy(named(render("default"), "Deployment", f"{FULLNAME}-gateway"))
    kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)
    pod_spec(deployment)["containers"][0]["readinessProbe"]["httpGet"]["paht"] = "/readyz"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


# --------------------------------------------------------------------------- probes


@pytest.mark.parametrize("values", VALUE_SETS)
def test_probes_ask_the_status_port(values: str) -> None:
    objects = render(values)
    deployments = of_kind(objects, "Deployment")
    assert {component(d) for d in deployments} == components(values)
    for deployment in deployments:
        (container,) = pod_spec(deployment)["containers"]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        env = container_env(objects, container)
        assert ports["status"] == int(env["CSMS_STATUS_PORT"]), deployment["metadata"]["name"]
        liveness = container["livenessProbe"]["httpGet"]
        readiness = container["readinessProbe"]["httpGet"]
        assert (liveness["path"], liveness["port"]) == ("/healthz", "status")
        assert (readiness["path"], readiness["port"]) == ("/readyz", "status")
        # a GC pause or a burst must not get a pod restarted: at least 30 s of failures
        probe = container["livenessProbe"]
        assert probe["periodSeconds"] * probe["failureThreshold"] >= 30


# --------------------------------------------------------------------------- drain


@pytest.mark.parametrize("values", VALUE_SETS)
def test_grace_period_covers_the_prestop_sleep_and_the_drain(values: str) -> None:
    objects = render(values)
    gateway = named(objects, "Deployment", f"{FULLNAME}-gateway")
    spec = pod_spec(gateway)
    (container,) = spec["containers"]
    env = container_env(objects, container)
    command = container["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    sleep = _seconds(command[1])
    drain = _seconds(env["CSMS_DRAIN_TIMEOUT"])
    assert sleep >= 5, "load balancers need a few seconds to stop sending new stations"
    assert _seconds(env["CSMS_DRAIN_CLOSE_PERIOD"]) < drain
    # after the drain the gateway still flushes its producer (up to 5 s) and stops its clients
    assert spec["terminationGracePeriodSeconds"] >= sleep + drain + 10
    assert gateway["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


# --------------------------------------------------------------------------- settings


@pytest.mark.parametrize("values", VALUE_SETS)
def test_every_environment_variable_is_a_csms_setting(values: str) -> None:
    objects = render(values)
    readers = process_settings()
    expected = {
        "gateway": "gateway",
        "sessions-worker": "worker",
        "status-worker": "worker",
        "alerts-worker": "worker",
        "alerts-notify": "notify",
        "topics": "topics",
    }
    seen = set()
    for workload in workloads(objects):
        kind = expected[component(workload)]
        seen.add(component(workload))
        for container in pod_spec(workload)["containers"]:
            unknown = set(container_env(objects, container)) - readers[kind]
            assert not unknown, (
                f"{workload['metadata']['name']} sets {sorted(unknown)}, which csms "
                f"{kind} does not read (contracts.settings.describe)"
            )
    assert seen == components(values) | {"topics"}


@pytest.mark.parametrize("values", VALUE_SETS)
def test_secrets_never_land_in_configmaps(values: str) -> None:
    objects = render(values)
    secrets = {"CSMS_KAFKA_SASL_PASSWORD", "CSMS_ALERTS_WEBHOOK_SECRETS"}
    for config in of_kind(objects, "ConfigMap"):
        assert not [k for k in config.get("data", {}) if "PASSWORD" in k or "SECRET" in k]
    for workload in workloads(objects):
        env = container_env(objects, pod_spec(workload)["containers"][0])
        for name in secrets & set(env):
            assert "secretKeyRef" in env[name], name


def test_defaults_are_production_defaults() -> None:
    objects = render("default")
    gateway = named(objects, "Deployment", f"{FULLNAME}-gateway")
    assert gateway["spec"]["replicas"] >= 2
    env = container_env(objects, pod_spec(gateway)["containers"][0])
    assert env["CSMS_KAFKA_IDEMPOTENCE"] == "true"
    assert env["CSMS_MAX_CONNECTIONS"] == "19000"
    job = named(objects, "Job", f"{FULLNAME}-topics")
    job_env = container_env(objects, pod_spec(job)["containers"][0])
    assert job_env["CSMS_TOPIC_REPLICATION_FACTOR"] == "3"
    assert job_env["CSMS_KAFKA_IDEMPOTENCE"] == "true"
    assert env["CSMS_KAFKA_COMPRESSION"] == "lz4"  # csms's own codec
    pdbs = {component(p) for p in of_kind(objects, "PodDisruptionBudget")}
    assert pdbs == {"gateway", *WORKERS}
    spread = pod_spec(gateway)["topologySpreadConstraints"]
    assert {c["topologyKey"] for c in spread} == {
        "kubernetes.io/hostname",
        "topology.kubernetes.io/zone",
    }
    assert "podAntiAffinity" in pod_spec(gateway)["affinity"]
    # stations' own addresses reach the gateway (per-address throttling), no affinity needed
    service = named(objects, "Service", f"{FULLNAME}-gateway")
    assert service["spec"]["externalTrafficPolicy"] == "Local"
    assert service["spec"]["sessionAffinity"] == "None"


@pytest.mark.parametrize("values", VALUE_SETS)
def test_service_ports_lead_to_named_container_ports(values: str) -> None:
    objects = render(values)
    gateway = named(objects, "Deployment", f"{FULLNAME}-gateway")
    container_ports = {p["name"] for p in pod_spec(gateway)["containers"][0]["ports"]}
    for service in of_kind(objects, "Service"):
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in container_ports | {"status"}
    service = named(objects, "Service", f"{FULLNAME}-gateway")
    station_ports = {p["targetPort"] for p in service["spec"]["ports"]}
    assert "status" not in station_ports, "the status port must never face the stations"


def test_tls_files_are_mounted_where_the_settings_say() -> None:
    objects = render("full")
    gateway = named(objects, "Deployment", f"{FULLNAME}-gateway")
    spec = pod_spec(gateway)
    (container,) = spec["containers"]
    env = container_env(objects, container)
    volumes = {v["name"]: v for v in spec["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    paths = [
        *env["CSMS_TLS_CERT"].split(","),
        *env["CSMS_TLS_KEY"].split(","),
        env["CSMS_TLS_CLIENT_CA"],
        env["CSMS_KAFKA_SSL_CAFILE"],
    ]
    assert len(paths) == 6
    for path in paths:
        directory, _, filename = path.rpartition("/")
        secret = volumes[mounts[directory]]["secret"]
        assert filename in [item["path"] for item in secret["items"]], path
    assert env["CSMS_TLS_PORT"] == "9443"
    service = named(objects, "Service", f"{FULLNAME}-gateway")
    assert [p["name"] for p in service["spec"]["ports"]] == ["wss"]


def test_offload_trusts_only_the_configured_proxies() -> None:
    objects = render("offload")
    gateway = named(objects, "Deployment", f"{FULLNAME}-gateway")
    env = container_env(objects, pod_spec(gateway)["containers"][0])
    assert env["CSMS_TRUSTED_PROXIES"] == "10.244.0.0/16"
    assert "CSMS_TLS_PORT" not in env
    ingress = named(objects, "Ingress", f"{FULLNAME}-gateway")
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": f"{FULLNAME}-gateway", "port": {"name": "ws"}}
    # and no proxy is trusted unless configured
    default = render("default")
    gateway = named(default, "Deployment", f"{FULLNAME}-gateway")
    assert "CSMS_TRUSTED_PROXIES" not in container_env(default, pod_spec(gateway)["containers"][0])


def test_a_changed_setting_rolls_the_pods() -> None:
    def checksum(*sets: str) -> str:
        docs = [d for d in yaml.safe_load_all(template(None, *sets)) if d]
        gateway = named(docs, "Deployment", f"{FULLNAME}-gateway")
        annotations: dict[str, str] = gateway["spec"]["template"]["metadata"]["annotations"]
        return annotations["checksum/config"]

    assert checksum() != checksum("gateway.config.CSMS_HEARTBEAT_INTERVAL=600")


# --------------------------------------------------------------------------- alerts


def test_the_alerts_worker_runs_by_default() -> None:
    objects = render("default")
    worker = named(objects, "Deployment", f"{FULLNAME}-alerts")
    (container,) = pod_spec(worker)["containers"]
    assert container["args"] == ["worker", "alerts"]
    assert worker["spec"]["replicas"] == 2
    named(objects, "PodDisruptionBudget", f"{FULLNAME}-alerts")
    named(objects, "Service", f"{FULLNAME}-alerts-metrics")
    # the notifier needs a receiver, which only the operator knows
    assert not [o for o in objects if component(o) == "alerts-notify"]


def test_the_notifier_delivers_to_the_receivers_of_the_values() -> None:
    objects = render("full")
    notifier = named(objects, "Deployment", f"{FULLNAME}-alerts-notify")
    assert notifier["spec"]["replicas"] == 1
    (container,) = pod_spec(notifier)["containers"]
    assert container["args"] == ["alerts", "notify"]
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {"status": 9300}
    env = container_env(objects, container)
    assert env["CSMS_STATUS_PORT"] == "9300"
    assert env["CSMS_ALERTS_ALERTMANAGER_URL"] == "http://alertmanager-operated.monitoring:9093"
    assert env["CSMS_ALERTS_WEBHOOK_SECRETS"] == {
        "secretKeyRef": {"name": "csms-alerts-notify", "key": "webhook-secrets"}
    }
    assert env["CSMS_ALERTS_RESEND_INTERVAL"] == "30"
    assert env["CSMS_KAFKA_SASL_PASSWORD"]["secretKeyRef"]["name"] == "csms-kafka-user"
    # what the chart renders is what `csms alerts notify` accepts
    settings = load(NotifySettings, env={k: v for k, v in env.items() if isinstance(v, str)})
    assert settings.webhook_targets() == {
        "chat": "https://chat.example.com/hooks/csms",
        "pager": "https://pager.example.com/csms",
    }
    assert settings.generator_url == "https://csms.example.com/alerts/{alert_id}"
    budget = named(objects, "PodDisruptionBudget", f"{FULLNAME}-alerts-notify")
    assert budget["spec"]["selector"]["matchLabels"].items() <= (
        notifier["spec"]["template"]["metadata"]["labels"].items()
    )
    service = named(objects, "Service", f"{FULLNAME}-alerts-notify-metrics")
    assert service["spec"]["ports"] == [
        {"name": "status", "port": 9300, "targetPort": "status", "protocol": "TCP"}
    ]
    assert service["spec"]["selector"] == notifier["spec"]["selector"]["matchLabels"]
    annotations = notifier["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == "9300"


def test_the_notifier_reads_webhooks_with_tokens_from_the_secret() -> None:
    docs = yaml.safe_load_all(
        template(
            None,
            "alertsNotify.enabled=true",
            "alertsNotify.secret.existingSecret=csms-alerts-notify",
            "alertsNotify.secret.webhooksKey=webhooks",
            "alertsNotify.secret.webhookSecretsKey=",
        )
    )
    objects = [d for d in docs if d]
    notifier = named(objects, "Deployment", f"{FULLNAME}-alerts-notify")
    env = container_env(objects, pod_spec(notifier)["containers"][0])
    assert env["CSMS_ALERTS_WEBHOOKS"] == {
        "secretKeyRef": {"name": "csms-alerts-notify", "key": "webhooks"}
    }
    assert "CSMS_ALERTS_WEBHOOK_SECRETS" not in env  # no key: deliveries unsigned
    assert "CSMS_ALERTS_ALERTMANAGER_URL" not in env


# --------------------------------------------------------------------------- the topics job


@pytest.mark.parametrize("values", VALUE_SETS)
def test_topics_job_runs_before_install_and_upgrade(values: str) -> None:
    job = named(render(values), "Job", f"{FULLNAME}-topics")
    annotations = job["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert "before-hook-creation" in annotations["helm.sh/hook-delete-policy"]
    (container,) = pod_spec(job)["containers"]
    assert container["args"] == ["topics", "create"]
    # a hook runs before the release's ConfigMaps exist: it must not depend on them
    assert not [s for s in container.get("envFrom", []) if "csms-test" in str(s)]


# --------------------------------------------------------------------------- pods


@pytest.mark.parametrize("values", VALUE_SETS)
def test_pods_run_as_non_root_without_privileges(values: str) -> None:
    for workload in workloads(render(values)):
        spec = pod_spec(workload)
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] != 0
        assert spec["automountServiceAccountToken"] is False
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False
            assert context["readOnlyRootFilesystem"] is True
            assert context["capabilities"]["drop"] == ["ALL"]
            assert "/tmp" in [m["mountPath"] for m in container["volumeMounts"]]


def test_the_image_user_is_the_pods_user() -> None:
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text(encoding="utf-8")
    users = re.findall(r"^USER\s+(\S+)", dockerfile, re.MULTILINE)
    assert users, "deploy/Dockerfile sets no USER"
    uid, _, gid = users[-1].partition(":")
    spec = pod_spec(named(render("default"), "Deployment", f"{FULLNAME}-gateway"))
    assert int(uid) == spec["securityContext"]["runAsUser"] != 0
    assert int(gid) == spec["securityContext"]["runAsGroup"]


# --------------------------------------------------------------------------- NOTES.txt


@pytest.mark.parametrize(
    ("values", "endpoints"),
    [
        ("default", ["ws://ADDRESS:80/ocpp/"]),
        ("full", ["wss://HOST:443/ocpp/"]),
        ("offload", ["wss://ocpp.example.com/ocpp/"]),
    ],
)
def test_notes_give_the_endpoint_for_the_stations(values: str, endpoints: list[str]) -> None:
    notes = render_notes(VALUES_FILES[values])
    for endpoint in endpoints:
        assert endpoint in notes
    assert f"deploy/{FULLNAME}-gateway -- csms stations add" in notes
    assert ("WARNING: kafka.bootstrap is the default" in notes) == (values != "full")
    if values == "full":
        assert (
            f"The notifier (deploy/{FULLNAME}-alerts-notify) delivers them to Alertmanager at "
            "http://alertmanager-operated.monitoring:9093; webhooks chat, pager." in notes
        )
    else:
        assert "Nobody is notified of them: set alertsNotify" in notes


def test_notes_warn_of_unsigned_webhooks() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        values = Path(scratch) / "values.yaml"
        values.write_text(
            "alertsNotify: {enabled: true, webhooks: {pager: 'https://pager.example.com'}}\n",
            encoding="utf-8",
        )
        assert "WARNING: webhook deliveries are not signed" in render_notes(values)
    assert "not signed" not in render_notes(VALUES_FILES["full"])
