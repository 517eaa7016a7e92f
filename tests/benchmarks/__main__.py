"""``python -m tests.benchmarks [NAME ...]``: run benchmarks on demand (``make bench``).

Without names it runs the micro-benchmarks (seconds each); the system benchmarks
(processes, thousands of connections, minutes each) run when named. Each prints
its table; docs/benchmarks.md records the figures and the command behind each.
"""

from __future__ import annotations

import pkgutil
import runpy
import sys
from pathlib import Path

MICRO = ("compression", "decode", "gc_pause")
# servers the benchmarks start and measure; they serve until killed
SERVERS = ("bare_server", "floor_server", "reference_csms")


def main(names: list[str]) -> int:
    available = sorted(
        m.name
        for m in pkgutil.iter_modules([str(Path(__file__).parent)])
        if not m.name.startswith("_") and m.name not in SERVERS
    )
    if names == ["--list"]:
        print("\n".join(available))
        return 0
    unknown = [n for n in names if n not in available]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; available: {', '.join(available)}")
        return 2
    for name in names or MICRO:
        print(f"== tests.benchmarks.{name}", flush=True)
        saved = sys.argv
        sys.argv = [f"tests.benchmarks.{name}"]
        try:
            runpy.run_module(f"tests.benchmarks.{name}", run_name="__main__")
        except SystemExit as exc:
            if exc.code not in (0, None):
                return int(exc.code) if isinstance(exc.code, int) else 1
        finally:
            sys.argv = saved
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
