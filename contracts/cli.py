"""The ``csms`` command: a dispatcher over subcommands that packages register.

Each package declares its subcommands as entry points in the ``csms.commands``
group (see pyproject.toml); the value is a :class:`Command`. Only the invoked
subcommand's module is imported, so ``csms tail`` does not load the gateway, and
this module, like the rest of contracts, imports nothing else in the repository.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import EntryPoint, entry_points

from contracts.settings import SettingsError

__all__ = ["Command", "main"]

GROUP = "csms.commands"


@dataclasses.dataclass(frozen=True)
class Command:
    """A ``csms`` subcommand: a one-line help, a parser configurator and a runner."""

    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


def _registered() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def _load(ep: EntryPoint) -> Command:
    command = ep.load()
    if not isinstance(command, Command):
        raise TypeError(f"entry point {ep.value} is not a contracts.cli.Command")
    return command


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    registered = _registered()
    parser = argparse.ArgumentParser(
        prog="csms", description="OCPP gateway and charge-point management on Kafka."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    # Load only the subcommand asked for; load them all to print the overview.
    wanted = [argv[0]] if argv and argv[0] in registered else sorted(registered)
    for name in wanted:
        try:
            command = _load(registered[name])
        except ImportError as exc:
            if len(wanted) == 1:
                raise
            # the overview still lists the rest when one package is broken or missing
            sub.add_parser(name, help=f"(unavailable: {exc})")
            continue
        sub_parser = sub.add_parser(name, help=command.help, description=command.help)
        command.configure(sub_parser)
        sub_parser.set_defaults(_run=command.run)
    args = parser.parse_args(argv)
    try:
        return int(args._run(args))
    except SettingsError as exc:
        print(f"csms {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
