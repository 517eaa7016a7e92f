"""``csms worker NAME``: run one worker (the ``csms.workers`` entry points say which exist)."""

from __future__ import annotations

import argparse
import sys
from importlib.metadata import entry_points

from contracts.cli import Command
from contracts.service.logs import configure_logging
from contracts.service.runtime import run
from contracts.settings import add_arguments, load
from workers.runtime.service import WorkerDefinition

__all__ = ["WORKERS_GROUP", "definitions", "worker_command"]

WORKERS_GROUP = "csms.workers"


def definitions() -> dict[str, WorkerDefinition]:
    """Every registered worker, by name."""
    found: dict[str, WorkerDefinition] = {}
    for ep in entry_points(group=WORKERS_GROUP):
        definition = ep.load()
        if not isinstance(definition, WorkerDefinition):
            raise TypeError(f"entry point {ep.value} is not a WorkerDefinition")
        found[ep.name] = definition
    return found


def _configure(parser: argparse.ArgumentParser) -> None:
    workers = parser.add_subparsers(dest="worker", metavar="NAME", required=True)
    for name, definition in sorted(definitions().items()):
        sub = workers.add_parser(name, help=definition.help, description=definition.help)
        add_arguments(sub, definition.settings)


def _run(args: argparse.Namespace) -> int:
    definition = definitions()[args.worker]
    settings = load(definition.settings, args)
    service = settings.worker.service
    configure_logging(f"worker-{definition.name}", service.instance_name(), service.log_level)
    try:
        return run(lambda: definition.serve(settings))
    except KeyboardInterrupt:  # pragma: no cover - signals are handled by the runtime
        print(f"csms worker {definition.name}: interrupted", file=sys.stderr)
        return 130


worker_command = Command(
    help="run a worker (consumer group member of ocpp.events.v1), e.g. sessions",
    configure=_configure,
    run=_run,
)
