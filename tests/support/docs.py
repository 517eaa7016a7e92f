"""The documentation's configuration tables, rendered from the settings classes.

``python -m tests.support.docs`` rewrites the marked sections
(``<!-- settings:NAME -->`` ... ``<!-- /settings:NAME -->``) of README.md and
docs/*.md; tests/test_docs.py fails when they are stale. Nobody edits those
tables by hand.
"""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path
from typing import Any

from contracts.settings import describe

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"

# section name -> (module, settings class)
SECTIONS: dict[str, tuple[str, str]] = {
    "kafka": ("contracts.settings", "KafkaSettings"),
    "broker": ("contracts.bus.broker", "BrokerSettings"),
    "service": ("contracts.service.runtime", "ServiceSettings"),
    "gateway": ("gateway.settings", "GatewaySettings"),
    "auth": ("gateway.auth", "AuthSettings"),
    "tls": ("gateway.tls", "TlsSettings"),
    "sessions": ("workers.sessions.settings", "SessionsSettings"),
    "alerts": ("workers.alerts.settings", "AlertsSettings"),
    "notify": ("workers.alerts.notify.settings", "NotifySettings"),
    "status": ("workers.status.settings", "StatusSettings"),
    "loadtest": ("loadtest.settings", "LoadtestSettings"),
}

# which file documents which sections
FILES: dict[Path, tuple[str, ...]] = {
    README: ("kafka", "broker", "service", "gateway", "auth", "tls"),
    ROOT / "docs" / "workers.md": ("sessions",),
    ROOT / "docs" / "monitoring.md": ("status", "alerts", "notify"),
    ROOT / "docs" / "loadtest.md": ("loadtest",),
}

# a table leaves out what the sections of nested settings document
NESTED = {
    "gateway": ("kafka", "service", "auth", "tls"),
    "sessions": ("kafka", "service"),
    "alerts": ("kafka", "service"),
    "notify": ("kafka", "service"),
    "status": ("kafka", "service", "sessions"),
}


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


def render(text: str, sections: tuple[str, ...]) -> str:
    for section in sections:
        text = _pattern(section).sub(lambda m, s=section: m[1] + table(s) + "\n" + m[3], text)
    return text


def sections_in(text: str) -> set[str]:
    return {section for section in SECTIONS if _pattern(section).search(text)}


if __name__ == "__main__":
    for path, sections in FILES.items():
        path.write_text(render(path.read_text(), sections))
        print(
            f"{path.relative_to(ROOT)}: {len(sections)} settings tables rendered", file=sys.stderr
        )
