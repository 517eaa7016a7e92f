"""The README's configuration tables, rendered from the settings classes.

``python -m tests.support.docs`` rewrites the marked sections of README.md
(``<!-- settings:NAME -->`` ... ``<!-- /settings:NAME -->``);
tests/test_docs.py fails when they are stale. Nobody edits those tables by hand.
"""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path
from typing import Any

from contracts.settings import describe

README = Path(__file__).resolve().parents[2] / "README.md"

# section name -> (module, settings class, fields of it that other sections document)
SECTIONS: dict[str, tuple[str, str]] = {
    "kafka": ("contracts.settings", "KafkaSettings"),
    "service": ("contracts.service.runtime", "ServiceSettings"),
    "gateway": ("gateway.settings", "GatewaySettings"),
    "auth": ("gateway.auth", "AuthSettings"),
    "tls": ("gateway.tls", "TlsSettings"),
}

# the gateway's table leaves out what the nested sections document
NESTED = {"gateway": ("kafka", "service", "auth", "tls")}


def _settings_class(section: str) -> Any:
    module, name = SECTIONS[section]
    return getattr(importlib.import_module(module), name)


def table(section: str) -> str:
    rows = describe(_settings_class(section))
    nested = set()
    for other in NESTED.get(section, ()):
        nested |= {env for env, *_ in describe(_settings_class(other))}
    lines = ["| variable | flag | default | meaning |", "|---|---|---|---|"]
    for env, flag, default, help_text in rows:
        if env in nested:
            continue
        flag_text = f"`{flag}`" if flag else ""
        lines.append(f"| `{env}` | {flag_text} | `{default}` | {help_text} |")
    return "\n".join(lines)


def _pattern(section: str) -> re.Pattern[str]:
    return re.compile(
        rf"(<!-- settings:{section} -->\n)(.*?)(<!-- /settings:{section} -->)", re.DOTALL
    )


def render(text: str) -> str:
    for section in SECTIONS:
        text = _pattern(section).sub(lambda m, s=section: m[1] + table(s) + "\n" + m[3], text)
    return text


def sections_in(text: str) -> set[str]:
    return {section for section in SECTIONS if _pattern(section).search(text)}


if __name__ == "__main__":
    current = README.read_text()
    README.write_text(render(current))
    print(f"README.md: {len(sections_in(current))} settings tables rendered", file=sys.stderr)
