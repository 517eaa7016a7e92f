"""Documentation that follows the code: the README's settings tables."""

from __future__ import annotations

from tests.support.docs import README, SECTIONS, render, sections_in


def test_readme_documents_every_settings_section() -> None:
    assert sections_in(README.read_text()) == set(SECTIONS)


def test_readme_settings_tables_are_current() -> None:
    current = README.read_text()
    assert render(current) == current, "run: .venv/bin/python -m tests.support.docs"
