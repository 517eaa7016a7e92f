"""``csms sites``: set, list, show and remove sites and the circuits under them.

Sites are the compacted topic csms.sites.v1 (key = the site id): a site's
record holds its grid connection's limits and every circuit of its tree.
Stations join a site in the registry (``csms stations add ID --site S
[--circuit C] [--rotation RST] [--max-current 32]``, ADR 0020). Every change
writes the site's whole record, so the command first reads the topic to the
end and keeps what it is not told to change; the new record is checked as
the smart-charging worker will read it (:func:`workers.smart_charging.records.site_model`)
before it is written::

    csms sites set depot --max-current 63 [--max-power 40000] [--phases 3] [--voltage 230]
    csms sites circuit set depot garage --max-current 32 [--parent P] [--phases 1 --grid-phase 2]
    csms sites circuit remove depot garage       # refused while circuits or stations are on it
    csms sites list                              # site, limits, circuits
    csms sites show depot                        # the tree: circuits nested, stations on them
    csms sites remove depot                      # a tombstone

Numbers may be cleared with an empty value (``--max-power ""``). Exit status:
0 done; 1 Kafka cannot be reached (or a topic is missing), or ``show`` of a
site whose records no longer make a tree; 2 a usage error (an unknown site,
circuit or parent, a cycle, a circuit carrying a phase its parent does not,
a number out of range).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, TextIO

import msgspec

from contracts.bus.command import UsageError, run_against_kafka, write_record
from contracts.bus.follower import read_table
from contracts.cli import Command
from contracts.envelopes import (
    Circuit,
    SiteRecord,
    StationRecord,
    decode_site,
    decode_station,
    encode_site,
)
from contracts.headers import site_headers, tombstone_headers
from contracts.settings import KafkaSettings, add_arguments, load
from contracts.topics import SITES, STATIONS
from workers.smart_charging.records import site_model, site_stations
from workers.smart_charging.site import SiteError

__all__ = [
    "SOURCE",
    "LiveAllocation",
    "command",
    "no_live_allocation",
    "read_sites",
    "site_tree",
    "write_site",
]

SOURCE = "/csms/cli/sites"
"""The ``ce_source`` of the records this command writes."""

READ_TIMEOUT = 30.0
CLIENT_ID = "csms-sites-cli"

LiveAllocation = Callable[[str, str], str | None]
"""The hook for the live allocation: (site id, station id) -> a text to print beside the
station, or ``None``. The smart-charging worker will publish its decisions; until then
``csms sites show`` prints the records only (:func:`no_live_allocation`)."""


def no_live_allocation(site_id: str, station_id: str) -> str | None:
    """No live allocation is known yet: ``show`` prints what the records say."""
    return None


async def read_sites(kafka: KafkaSettings) -> dict[str, SiteRecord]:
    """Every site: csms.sites.v1 read from its beginning to its end."""
    return await read_table(
        kafka, SITES.name, decode_site, client_id=CLIENT_ID, within=READ_TIMEOUT
    )


async def _read_registry(kafka: KafkaSettings) -> list[StationRecord]:
    stations = await read_table(
        kafka, STATIONS.name, decode_station, client_id=CLIENT_ID, within=READ_TIMEOUT
    )
    return list(stations.values())


async def write_site(kafka: KafkaSettings, site_id: str, site: SiteRecord | None) -> None:
    """Write a site's record, or its tombstone when ``site`` is ``None``."""
    if site is None:
        headers = tombstone_headers(SITES, site_id, source=SOURCE, at=datetime.now(UTC))
    else:
        headers = site_headers(site, source=SOURCE)
    await write_record(kafka, SITES, site_id, encode_site(site), headers, client_id=CLIENT_ID)


# --- describing --------------------------------------------------------------------------------


def _amps(value: float | None) -> str:
    return "-" if value is None else f"{value:g} A"


def _watts(value: float | None) -> str:
    return "-" if value is None else f"{value:g} W"


def _limits(
    max_current_a: float | None,
    max_power_w: float | None,
    phases: int,
    voltage: float,
    derating: float,
    grid_phase: int | None = None,
) -> str:
    on = f" (grid L{grid_phase})" if phases == 1 and grid_phase else ""
    text = f"{phases} x {_amps(max_current_a)}{on}, {_watts(max_power_w)}, {voltage:g} V"
    return text if derating == 1 else f"{text}, derating {derating:g}"


def _describe(site: SiteRecord) -> str:
    """One line: site, limits, circuits (tab-separated)."""
    circuits = ",".join(c.circuit_id for c in site.circuits) or "-"
    return (
        f"{site.site_id}\t{site.phases}\t{_amps(site.max_current_a)}\t"
        f"{_watts(site.max_power_w)}\t{circuits}"
    )


def site_tree(
    site: SiteRecord,
    registry: Iterable[StationRecord],
    live: LiveAllocation = no_live_allocation,
) -> list[str]:
    """The lines of ``csms sites show``: the grid connection, its circuits nested, stations on
    each (what the records say; ``live`` adds each station's live allocation when known)."""
    stations = site_stations(site, registry)
    listed = {sid: c.circuit_id for c in site.circuits for sid in c.station_ids}
    on: dict[str, list[StationRecord]] = {}
    for station in stations:
        circuit_id = station.circuit_id or listed.get(station.station_id) or site.site_id
        on.setdefault(circuit_id, []).append(station)
    children: dict[str, list[Circuit]] = {}
    for circuit in site.circuits:
        children.setdefault(circuit.parent_id or site.site_id, []).append(circuit)
    lines = [
        f"site {site.site_id}: "
        + _limits(
            site.max_current_a,
            site.max_power_w,
            site.phases,
            site.nominal_voltage_v,
            site.derating,
        )
    ]
    shown: set[str] = set()

    def node(circuit_id: str, depth: int) -> None:
        pad = "  " * depth
        for station in on.get(circuit_id, []):
            rotation = station.phase_rotation
            line = f"{pad}station {station.station_id}: {rotation}, {_amps(station.max_current_a)}"
            extra = live(site.site_id, station.station_id)
            lines.append(f"{line} per EVSE" + (f"; {extra}" if extra else ""))
        for circuit in sorted(children.get(circuit_id, []), key=lambda c: c.circuit_id):
            if circuit.circuit_id in shown:
                continue  # a cycle: reported by the check
            shown.add(circuit.circuit_id)
            limits = _limits(
                circuit.max_current_a,
                circuit.max_power_w,
                circuit.phases,
                circuit.nominal_voltage_v,
                circuit.derating,
                circuit.grid_phase,
            )
            lines.append(f"{pad}circuit {circuit.circuit_id}: {limits}")
            node(circuit.circuit_id, depth + 1)

    node(site.site_id, 1)
    for circuit in site.circuits:
        if circuit.circuit_id not in shown:
            lines.append(f"  circuit {circuit.circuit_id}: not under the grid connection")
    known = {c.circuit_id for c in site.circuits} | {site.site_id}
    for circuit_id in sorted(set(on) - known):
        for station in on[circuit_id]:
            lines.append(f"  station {station.station_id}: on unknown circuit {circuit_id}")
    return lines


# --- parsing -----------------------------------------------------------------------------------


def _number(text: str | None, flag: str, current: float | None) -> float | None:
    """A number option: not given keeps ``current``, an empty value clears it."""
    if text is None:
        return current
    if not text:
        return None
    try:
        return float(text)
    except ValueError as exc:
        raise UsageError(f"{flag} {text!r} is not a number") from exc


def _required(text: str | None, flag: str, current: float) -> float:
    value = _number(text, flag, current)
    if value is None:
        raise UsageError(f"{flag} cannot be cleared")
    return value


def _check(site: SiteRecord, registry: Iterable[StationRecord]) -> None:
    """Refuse (exit 2) a site the smart-charging worker could not read."""
    try:
        site_model(site, registry)
    except SiteError as exc:
        raise UsageError(str(exc)) from exc


async def _site(kafka: KafkaSettings, site_id: str) -> SiteRecord:
    site = (await read_sites(kafka)).get(site_id)
    if site is None:
        raise UsageError(f"unknown site {site_id!r}")
    return site


# --- actions -----------------------------------------------------------------------------------


async def _set(kafka: KafkaSettings, args: argparse.Namespace, out: TextIO) -> None:
    site_id = args.site_id
    if not site_id or site_id != site_id.strip():
        raise UsageError(f"{site_id!r} is not a site id")
    current = (await read_sites(kafka)).get(site_id)
    base = current or SiteRecord(site_id=site_id, updated_at=datetime.now(UTC))
    site = msgspec.structs.replace(
        base,
        max_current_a=_number(args.max_current, "--max-current", base.max_current_a),
        max_power_w=_number(args.max_power, "--max-power", base.max_power_w),
        phases=args.phases or base.phases,
        nominal_voltage_v=_required(args.voltage, "--voltage", base.nominal_voltage_v),
        derating=_required(args.derating, "--derating", base.derating),
        updated_at=datetime.now(UTC),
    )
    _check(site, await _read_registry(kafka))
    await write_site(kafka, site_id, site)
    print(f"{'updated' if current else 'added'}\t{_describe(site)}", file=out)


async def _list(kafka: KafkaSettings, args: argparse.Namespace, out: TextIO) -> None:
    sites = await read_sites(kafka)
    for site_id in sorted(sites):
        print(_describe(sites[site_id]), file=out)


async def _show(kafka: KafkaSettings, args: argparse.Namespace, out: TextIO) -> None:
    site = await _site(kafka, args.site_id)
    registry = await _read_registry(kafka)
    for line in site_tree(site, registry):
        print(line, file=out)
    try:
        site_model(site, registry)
    except SiteError as exc:
        raise _BrokenSite(f"the records do not make a tree: {exc}") from exc


async def _remove(kafka: KafkaSettings, args: argparse.Namespace, out: TextIO) -> None:
    site = await _site(kafka, args.site_id)
    await write_site(kafka, site.site_id, None)
    print(f"removed\t{site.site_id}", file=out)
    left = [s.station_id for s in site_stations(site, await _read_registry(kafka))]
    if left:
        print(
            f"csms sites remove: stations still name site {site.site_id}: {', '.join(left)}",
            file=sys.stderr,
        )


async def _circuit_set(kafka: KafkaSettings, args: argparse.Namespace, out: TextIO) -> None:
    site = await _site(kafka, args.site_id)
    circuit_id = args.circuit_id
    if not circuit_id or circuit_id != circuit_id.strip():
        raise UsageError(f"{circuit_id!r} is not a circuit id")
    if circuit_id == site.site_id:
        raise UsageError(
            f"{circuit_id!r} is the site's own id, its grid connection: "
            f"change it with csms sites set {site.site_id}"
        )
    found = [c for c in site.circuits if c.circuit_id == circuit_id]
    base = found[0] if found else Circuit(circuit_id=circuit_id)
    parent = base.parent_id if args.parent is None else args.parent
    circuit = msgspec.structs.replace(
        base,
        parent_id=None if parent in ("", site.site_id) else parent,
        max_current_a=_number(args.max_current, "--max-current", base.max_current_a),
        max_power_w=_number(args.max_power, "--max-power", base.max_power_w),
        phases=args.phases or base.phases,
        grid_phase=args.grid_phase or base.grid_phase,
        nominal_voltage_v=_required(args.voltage, "--voltage", base.nominal_voltage_v),
        derating=_required(args.derating, "--derating", base.derating),
    )
    if circuit.parent_id is not None and circuit.parent_id not in {
        c.circuit_id for c in site.circuits
    }:
        raise UsageError(f"site {site.site_id} has no circuit {circuit.parent_id!r} to hang on")
    others = tuple(c for c in site.circuits if c.circuit_id != circuit_id)
    _refuse_a_cycle(circuit, others)
    changed = msgspec.structs.replace(
        site, circuits=(*others, circuit), updated_at=datetime.now(UTC)
    )
    _check(changed, await _read_registry(kafka))
    await write_site(kafka, site.site_id, changed)
    limits = _limits(
        circuit.max_current_a,
        circuit.max_power_w,
        circuit.phases,
        circuit.nominal_voltage_v,
        circuit.derating,
        circuit.grid_phase,
    )
    print(
        f"{'updated' if found else 'added'}\t{site.site_id}\t{circuit_id}\t"
        f"{circuit.parent_id or '-'}\t{limits}",
        file=out,
    )


def _refuse_a_cycle(circuit: Circuit, others: Iterable[Circuit]) -> None:
    """Refuse hanging ``circuit`` under one of its own descendants, naming the loop."""
    parents = {c.circuit_id: c.parent_id for c in others}
    chain = [circuit.circuit_id]
    parent = circuit.parent_id
    while parent is not None and len(chain) <= len(parents) + 1:
        chain.append(parent)
        if parent == circuit.circuit_id:
            raise UsageError(
                f"circuit {circuit.circuit_id}: a cycle ({' -> '.join(chain)}): "
                "a circuit cannot hang on a circuit under it"
            )
        parent = parents.get(parent)


async def _circuit_remove(kafka: KafkaSettings, args: argparse.Namespace, out: TextIO) -> None:
    site = await _site(kafka, args.site_id)
    circuit_id = args.circuit_id
    if circuit_id not in {c.circuit_id for c in site.circuits}:
        raise UsageError(f"site {site.site_id} has no circuit {circuit_id!r}")
    below = sorted(c.circuit_id for c in site.circuits if c.parent_id == circuit_id)
    if below:
        raise UsageError(f"circuits hang on {circuit_id}: {', '.join(below)}; move them first")
    listed = {sid for c in site.circuits if c.circuit_id == circuit_id for sid in c.station_ids}
    on = sorted(
        s.station_id
        for s in site_stations(site, await _read_registry(kafka))
        if s.circuit_id == circuit_id or (s.circuit_id is None and s.station_id in listed)
    )
    if on:
        raise UsageError(
            f"stations are on {circuit_id}: {', '.join(on)}; move them first "
            "(csms stations add ID --circuit OTHER)"
        )
    changed = msgspec.structs.replace(
        site,
        circuits=tuple(c for c in site.circuits if c.circuit_id != circuit_id),
        updated_at=datetime.now(UTC),
    )
    await write_site(kafka, site.site_id, changed)
    print(f"removed\t{site.site_id}\t{circuit_id}", file=out)


class _BrokenSite(Exception):
    """``show``: the records print, but do not make a tree the worker can use (exit 1)."""


# --- the command -------------------------------------------------------------------------------


def _limit_options(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--max-current", metavar="A", help=f"{what}'s current limit per phase, A (rating)"
    )
    parser.add_argument("--max-power", metavar="W", help=f"{what}'s power limit, W (optional)")
    parser.add_argument("--phases", type=int, choices=(1, 3), help="phases: 1 or 3 (default 3)")
    parser.add_argument(
        "--voltage", metavar="V", help="nominal voltage, phase to neutral (default 230)"
    )
    parser.add_argument(
        "--derating",
        metavar="F",
        help="the share of the current limit that may be used, in (0, 1] (default 1)",
    )
    add_arguments(parser, KafkaSettings)


def _configure(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    set_ = actions.add_parser(
        "set",
        help="add a site, or change one (fields not given are kept)",
        description="Add a site (its grid connection's limits) or change one: fields not "
        "given are kept; an empty value clears a limit.",
    )
    set_.add_argument("site_id", metavar="SITE", help="the site id")
    _limit_options(set_, "the grid connection")
    listing = actions.add_parser(
        "list", help="list the sites: id, phases, current limit, power limit, circuits"
    )
    add_arguments(listing, KafkaSettings)
    for name, text in (
        ("show", "print a site's tree: circuits nested, stations on them"),
        ("remove", "remove a site (its stations keep naming it)"),
    ):
        action = actions.add_parser(name, help=text)
        action.add_argument("site_id", metavar="SITE", help="the site id")
        add_arguments(action, KafkaSettings)

    circuit = actions.add_parser("circuit", help="add, change or remove a circuit of a site")
    circuit_actions = circuit.add_subparsers(dest="circuit_action", metavar="ACTION", required=True)
    circuit_set = circuit_actions.add_parser(
        "set",
        help="add a circuit to a site, or change one (fields not given are kept)",
        description="Add a circuit to a site or change one: fields not given are kept; an "
        "empty value clears a limit.",
    )
    circuit_set.add_argument("site_id", metavar="SITE", help="the site id")
    circuit_set.add_argument("circuit_id", metavar="CIRCUIT", help="the circuit id")
    circuit_set.add_argument(
        "--parent",
        metavar="CIRCUIT",
        help="the circuit it hangs on; empty: the grid connection (the default)",
    )
    circuit_set.add_argument(
        "--grid-phase",
        type=int,
        choices=(1, 2, 3),
        help="the grid phase a single-phase circuit is on (default 1)",
    )
    _limit_options(circuit_set, "the circuit")
    circuit_remove = circuit_actions.add_parser(
        "remove", help="remove a circuit (refused while circuits or stations are on it)"
    )
    circuit_remove.add_argument("site_id", metavar="SITE", help="the site id")
    circuit_remove.add_argument("circuit_id", metavar="CIRCUIT", help="the circuit id")
    add_arguments(circuit_remove, KafkaSettings)


def _run(args: argparse.Namespace) -> int:
    kafka = load(KafkaSettings, args)
    actions: dict[str, Any] = {
        "set": _set,
        "list": _list,
        "show": _show,
        "remove": _remove,
        "circuit set": _circuit_set,
        "circuit remove": _circuit_remove,
    }
    name = args.action if args.action != "circuit" else f"circuit {args.circuit_action}"
    work = actions[name](kafka, args, sys.stdout)
    try:
        return run_against_kafka(f"csms sites {name}", kafka, work, sys.stderr)
    except _BrokenSite as exc:
        print(f"csms sites {name}: {exc}", file=sys.stderr)
        return 1


command = Command(
    help="set, list, show or remove sites and their circuits (csms.sites.v1)",
    configure=_configure,
    run=_run,
)
