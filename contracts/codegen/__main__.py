"""``python -m contracts.codegen [--output-dir DIR] [--check]``: generate the OCPP payload types."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from contracts.codegen import OUTPUT_DIR, generate, sources


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m contracts.codegen",
        description="Generate contracts/ocpp/v16.py, v201.py and v21.py from the OCA JSON schemas.",
    )
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=OUTPUT_DIR,
        help="where to write the modules (default: %(default)s)",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if a module in the output directory is stale",
    )
    args = parser.parse_args(argv)
    if args.check:
        stale = [
            name
            for name, text in sources().items()
            if not (args.output_dir / name).is_file()
            or (args.output_dir / name).read_text(encoding="utf-8") != text
        ]
        for name in stale:
            print(f"stale: {args.output_dir / name}", file=sys.stderr)
        return 1 if stale else 0
    for path in generate(args.output_dir):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
