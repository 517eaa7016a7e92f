"""Documentation that follows the code: the settings tables of the README and docs/."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.docs import FILES, SECTIONS, render, sections_in


def test_every_settings_section_is_documented_once() -> None:
    documented = [section for sections in FILES.values() for section in sections]
    assert sorted(documented) == sorted(SECTIONS)


@pytest.mark.parametrize("path", list(FILES), ids=lambda p: p.name)
def test_settings_tables_are_current(path: Path) -> None:
    current = path.read_text()
    assert sections_in(current) == set(FILES[path])
    assert render(current, FILES[path]) == current, "run: .venv/bin/python -m tests.support.docs"
