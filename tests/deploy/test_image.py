"""deploy/: the Dockerfile, its entrypoint and the compose file, checked without Docker.

No Docker engine runs here or on CI, so the image is never built by the tests: its
Dockerfile is read for the properties that matter (multi-stage, pinned dependencies, no
compiler and a numeric non-root user in the final stage, every file it copies exists and
is let through the ignore file), the entrypoint script is run for real with a stand-in
``csms``, and compose.yaml is checked for structure and for settings csms reads.
"""

from __future__ import annotations

import fnmatch
import os
import re
import resource
import stat
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from tests.deploy.settings_schema import process_settings
from tests.support.alertmanager import FOLDER as ALERTMANAGER_FOLDER
from tests.support.install_alertmanager import VERSION as ALERTMANAGER_VERSION

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DOCKERFILE = DEPLOY / "Dockerfile"
ENTRYPOINT = DEPLOY / "docker-entrypoint.sh"
COMPOSE = DEPLOY / "compose.yaml"


def stages() -> list[list[str]]:
    """The Dockerfile's instructions (continuation lines joined), split by stage."""
    text = DOCKERFILE.read_text(encoding="utf-8")
    instructions = []
    for raw in re.sub(r"\\\n", " ", text).splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            instructions.append(line)
    result: list[list[str]] = []
    for line in instructions:
        if line.upper().startswith("FROM "):
            result.append([])
        if result:
            result[-1].append(line)
    return result


def test_dockerfile_is_multi_stage_on_slim_python_311() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim", text, re.MULTILINE)
    build, final = stages()
    assert build[0] == "FROM ${PYTHON_IMAGE} AS build"
    assert final[0] == "FROM ${PYTHON_IMAGE}"
    assert any("COPY --from=build /opt/csms /opt/csms" in line for line in final)


def test_dependencies_are_pinned_by_the_constraints() -> None:
    build, _ = stages()
    installs = [line for line in build if "pip install" in line]
    assert installs
    assert all("--constraint constraints.txt" in line for line in installs)
    assert any("COPY pyproject.toml constraints.txt README.md" in line for line in build)


def test_final_stage_has_no_build_tools_and_a_numeric_non_root_user() -> None:
    _, final = stages()
    text = "\n".join(final)
    assert "apt-get install" not in text and "pip install" not in text
    users = [line.split()[1] for line in final if line.startswith("USER ")]
    assert users, "the final stage sets no USER"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) != 0 and gid.isdigit(), users[-1]
    entrypoint = [line for line in final if line.startswith("ENTRYPOINT ")]
    assert entrypoint == ['ENTRYPOINT ["/usr/local/bin/csms-entrypoint"]']


def _ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last matching pattern wins, ``!`` re-includes."""
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        body = pattern.lstrip("!").rstrip("/")
        if fnmatch.fnmatch(path, body) or path.startswith(body + "/"):
            ignored = not negate
    return ignored


def test_every_copied_file_exists_and_passes_the_ignore_file() -> None:
    lines = (DEPLOY / "Dockerfile.dockerignore").read_text(encoding="utf-8").splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    sources = []
    for stage in stages():
        for line in stage:
            if line.startswith("COPY ") and "--from=" not in line:
                parts = [p for p in line.split()[1:] if not p.startswith("--")]
                sources += parts[:-1]
    assert "contracts" in sources and "deploy/docker-entrypoint.sh" in sources
    for source in sources:
        assert (ROOT / source).exists(), source
        assert not _ignored(source, patterns), f"{source} is excluded by the ignore file"
    for heavy in [".venv", ".git", ".tools", "tests", "helm"]:
        assert _ignored(heavy, patterns), f"{heavy} would be sent to the Docker daemon"


def test_entrypoint_raises_the_open_file_limit_and_runs_csms(tmp_path: Path) -> None:
    stand_in = tmp_path / "csms"
    stand_in.write_text('#!/bin/sh\necho "limit=$(ulimit -Sn) args=$*"\n', encoding="utf-8")
    stand_in.chmod(stand_in.stat().st_mode | stat.S_IXUSR)
    assert os.access(ENTRYPOINT, os.X_OK), "deploy/docker-entrypoint.sh must be executable"
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    soft = min(256, hard)

    def low_soft_limit() -> None:  # what a container runtime may hand the process
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    done = subprocess.run(
        [str(ENTRYPOINT), "worker", "sessions"],
        env={"PATH": f"{tmp_path}:/usr/bin:/bin"},
        preexec_fn=low_soft_limit,
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    )
    expected = "unlimited" if hard == resource.RLIM_INFINITY else str(hard)
    assert done.stdout.strip() == f"limit={expected} args=worker sessions"


# --------------------------------------------------------------------------- compose


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    return loaded


def test_compose_runs_kafka_in_kraft_mode_topics_gateway_and_worker() -> None:
    services = compose()["services"]
    assert {"kafka", "topics", "gateway", "sessions"} <= set(services)
    kafka = services["kafka"]["environment"]
    assert set(kafka["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert "zookeeper" not in str(services).lower()
    assert services["topics"]["command"][:2] == ["topics", "create"]
    assert services["topics"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    for name, command in [("gateway", ["gateway"]), ("sessions", ["worker", "sessions"])]:
        service = services[name]
        assert service["command"] == command
        assert service["depends_on"]["topics"]["condition"] == "service_completed_successfully"
        assert service["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}
        assert (
            COMPOSE.parent / service["build"]["context"] / service["build"]["dockerfile"]
        ).is_file()


def test_compose_sets_only_settings_csms_reads() -> None:
    readers = process_settings()
    services = compose()["services"]
    for name, reader in [
        ("gateway", "gateway"),
        ("sessions", "worker"),
        ("status", "worker"),
        ("alerts", "worker"),
        ("alerts-notify", "notify"),
        ("topics", "topics"),
    ]:
        unknown = set(services[name]["environment"]) - readers[reader] - {"CSMS_LOG_LEVEL"}
        assert not unknown, f"compose service {name} sets {sorted(unknown)}"
    gateway = services["gateway"]
    assert gateway["environment"]["CSMS_KAFKA_IDEMPOTENCE"] == "true"
    assert gateway["ulimits"]["nofile"]["soft"] > 19_000
    # SIGTERM drains for CSMS_DRAIN_TIMEOUT (25 s by default) before the flush
    assert int(gateway["stop_grace_period"].removesuffix("s")) > 25
    ports = {p.split(":")[1].strip('"') for p in gateway["ports"]}
    assert ports == {"9000", "9100"}


def test_compose_runs_every_worker_and_the_notifier() -> None:
    services = compose()["services"]
    for name, command in [
        ("status", ["worker", "status"]),
        ("alerts", ["worker", "alerts"]),
        ("alerts-notify", ["alerts", "notify"]),
    ]:
        service = services[name]
        assert service["command"] == command
        assert service["depends_on"]["topics"]["condition"] == "service_completed_successfully"
        port = service["environment"]["CSMS_STATUS_PORT"]
        assert f"{port}:{port}" in service["ports"], name
    published = [p.split(":")[0] for s in services.values() for p in s.get("ports", [])]
    assert len(published) == len(set(published)), f"a host port twice: {sorted(published)}"


def test_compose_notifier_posts_to_the_alertmanager_of_the_tests() -> None:
    services = compose()["services"]
    notifier = services["alerts-notify"]
    url = urlsplit(notifier["environment"]["CSMS_ALERTS_ALERTMANAGER_URL"])
    assert url.hostname in services
    assert "alertmanager" in notifier["depends_on"]
    alertmanager = services[url.hostname]
    assert f"{url.port}:{url.port}" in alertmanager["ports"]
    upstream = ALERTMANAGER_VERSION.partition("-")[0]  # Debian's 0.25.0-1+b4
    assert alertmanager["image"] == f"prom/alertmanager:v{upstream}"
    (volume,) = alertmanager["volumes"]
    source, target, _ = volume.split(":")
    assert target == "/etc/alertmanager/alertmanager.yml"  # the image's --config.file
    config = COMPOSE.parent / source
    amtool = ALERTMANAGER_FOLDER / "usr" / "bin" / "amtool"
    if not amtool.is_file():
        pytest.fail(f"amtool is not installed at {amtool.relative_to(ROOT)}: run `make unit`")
    done = subprocess.run(
        [str(amtool), "check-config", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
