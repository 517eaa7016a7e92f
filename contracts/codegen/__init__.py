"""The generator of the OCPP payload types: ``python -m contracts.codegen`` (``make generate``).

It reads the official OCA JSON schemas that the pinned ``ocpp`` package ships
and writes ``contracts/ocpp/v16.py``, ``v201.py`` and ``v21.py``: a frozen
``msgspec.Struct`` per request and response, the types they share, and a table
of the version's actions. ``tests/contracts/test_codegen_fresh.py`` fails when
the checked-in modules differ from a fresh run.

- ``schemas``: finding the schema files of each action;
- ``initiators``, ``names``: the hand-written inputs (who sends each request,
  names for the types the 1.6 schemas leave anonymous);
- ``build``: schema to a model of enums, structs and fields;
- ``render``: that model to formatted Python source.

The output depends only on the schemas, the inputs, and the ruff version that
formats it: generating twice gives identical bytes.
"""

from __future__ import annotations

from pathlib import Path

from contracts.codegen import build, render, schemas

__all__ = ["OUTPUT_DIR", "generate", "sources"]

OUTPUT_DIR = render.REPOSITORY / "contracts" / "ocpp"


def sources() -> dict[str, str]:
    """The generated modules, file name to source, without writing anything."""
    return {
        f"{schemas.MODULES[version]}.py": render.source(
            build.translate(version, schemas.load(version))
        )
        for version in schemas.VERSIONS
    }


def generate(output_dir: Path = OUTPUT_DIR) -> list[Path]:
    """Write the generated modules into ``output_dir``; return the paths written."""
    written = []
    for name, text in sources().items():
        path = output_dir / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
