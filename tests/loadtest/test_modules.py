"""The package's surface: every module's ``__all__`` is true; ``csms loadtest`` is registered."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import loadtest
from tests.support.processes import run_csms

MODULES = sorted(m.name for m in pkgutil.iter_modules(loadtest.__path__))


@pytest.mark.parametrize("name", MODULES)
def test_all_names_what_the_module_defines(name: str) -> None:
    module = importlib.import_module(f"loadtest.{name}")
    exported = set(getattr(module, "__all__", ()))
    assert exported, f"loadtest.{name} has no __all__"
    assert all(hasattr(module, n) for n in exported)
    defined = {
        n
        for n, value in vars(module).items()
        if not n.startswith("_")
        and callable(value)
        and getattr(value, "__module__", None) == module.__name__
    }
    assert defined <= exported, f"public but not in __all__: {sorted(defined - exported)}"


def test_the_csms_command_lists_the_builtin_scenarios() -> None:
    result = run_csms("loadtest", "scenarios")
    assert result.returncode == 0, result.stderr
    names = [line.split()[0] for line in result.stdout.splitlines()]
    assert names == ["steady", "boot-storm", "reconnect-storm", "transactions", "aligned-burst"]


def test_show_prints_a_scenario_that_check_accepts(tmp_path) -> None:  # type: ignore[no-untyped-def]
    shown = run_csms("loadtest", "scenarios", "--show", "transactions")
    assert shown.returncode == 0
    path = tmp_path / "t.toml"
    path.write_text(shown.stdout)
    checked = run_csms("loadtest", "scenarios", "--check", str(path))
    assert checked.returncode == 0, checked.stderr
    assert "scenario 'transactions' is valid" in checked.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text(shown.stdout.replace("every =", "evry ="))
    refused = run_csms("loadtest", "scenarios", "--check", str(bad))
    assert refused.returncode == 2
    assert "bad.toml: transactions.evry: unknown key" in refused.stderr
