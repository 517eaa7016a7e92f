"""``csms stations``: add, list, disable, enable and remove stations in the registry.

The registry is the compacted topic csms.stations.v1 (key = station id); every
gateway follows it, so a change takes effect on the next handshake on every
pod. A change writes the station's whole record, so the command first reads the
topic to the end to keep the fields it does not change (last writer wins when
two operators change one station at the same time).

::

    csms stations add CP-1 --profile 2 --site depot-7   # prints a generated password once
    csms stations add CP-2 --profile 1 --password-stdin < password.txt
    csms stations add CP-1 --site depot-8               # update: keeps password, profile, enabled
    csms stations add CP-1 --site depot-8 --circuit garage --rotation STR --max-current 32
    csms stations list                                  # CP-1  2  enabled  depot-8
    csms stations disable CP-1
    csms stations enable CP-1
    csms stations remove CP-1                           # a tombstone
    csms stations status [CP-1] [--json]                # what the status worker knows

Exit status: 0 done; 1 Kafka cannot be reached (or the topic is missing), or
``status`` of a station without a status record; 2 a usage error (bad
identity, profile or password, unknown station, a circuit its site does not
have or whose single phase is not the one the station's L1 is on).

Smart charging (ADR 0020): ``--site`` places the station on its site's grid
connection, ``--circuit`` on a circuit of that site (which must exist in
csms.sites.v1); ``--rotation`` is the OCPP PhaseRotation of its wiring and
``--max-current`` the hardware maximum of each EVSE (A per phase). Moving a
station to another site takes it off its circuit unless ``--circuit`` says.
Passwords and their hashes are never printed, except a generated password,
once, when it is made.
"""

from __future__ import annotations

import argparse
import dataclasses
import getpass
import sys
from datetime import UTC, datetime
from typing import Any, Literal, TextIO, cast
from urllib.parse import quote

import msgspec

from contracts.bus.command import UsageError, run_against_kafka, write_record
from contracts.bus.follower import read_table, read_to_end
from contracts.cli import Command
from contracts.envelopes import (
    PHASE_ROTATIONS,
    StationRecord,
    decode_site,
    encode_station,
)
from contracts.headers import station_headers, tombstone_headers
from contracts.settings import KafkaSettings, add_arguments, load
from contracts.topics import SITES, STATIONS
from gateway.credentials import (
    PasswordRejected,
    check_password,
    generate_password,
    hash_password,
)
from gateway.handshake import InvalidIdentity, station_identity
from gateway.registry import apply_station_records
from gateway.station_status import UnknownStation, read_statuses, status_lines

__all__ = ["SOURCE", "command", "read_stations", "write_station"]

SOURCE = "/csms/cli/stations"
"""The ``ce_source`` of the records this command writes."""

DEFAULT_PROFILE: Literal[1, 2, 3] = 2
READ_TIMEOUT = 30.0
CLIENT_ID = "csms-stations-cli"


async def read_stations(
    kafka: KafkaSettings, *, within: float = READ_TIMEOUT
) -> dict[str, StationRecord]:
    """Every station in the registry: csms.stations.v1 read from the beginning to the end."""
    stations: dict[str, StationRecord] = {}

    def apply(records: list[Any]) -> None:
        apply_station_records(stations, records)

    await read_to_end(kafka, STATIONS.name, apply, client_id=CLIENT_ID, within=within)
    return stations


async def write_station(
    kafka: KafkaSettings, station_id: str, station: StationRecord | None
) -> None:
    """Write a station's record, or its tombstone when ``station`` is ``None``."""
    if station is None:
        headers = tombstone_headers(STATIONS, station_id, source=SOURCE, at=datetime.now(UTC))
    else:
        headers = station_headers(station, source=SOURCE)
    await write_record(
        kafka, STATIONS, station_id, encode_station(station), headers, client_id=CLIENT_ID
    )


def _identity(text: str) -> str:
    """The station id as a station will present it in its URL (gateway.handshake's rules)."""
    try:
        identity = station_identity("/" + quote(text, safe=""))
    except InvalidIdentity as exc:
        raise UsageError(f"{text!r} is not a valid station identity: {exc}") from exc
    if identity != text:
        raise UsageError(f"{text!r} is not a valid station identity")
    return identity


def _describe(station: StationRecord) -> str:
    """One line for a station: id, profile, enabled, site (tab-separated). Never the hash."""
    state = "enabled" if station.enabled else "disabled"
    return f"{station.station_id}\t{station.security_profile}\t{state}\t{station.site_id or '-'}"


def _placement(station: StationRecord) -> str:
    """Where the station hangs: site, circuit, rotation, EVSE maximum (tab-separated)."""
    amps = "-" if station.max_current_a is None else f"{station.max_current_a:g} A"
    return (
        f"{station.station_id}\t{station.site_id or '-'}\t{station.circuit_id or '-'}\t"
        f"{station.phase_rotation}\t{amps}"
    )


def _max_current(text: str) -> float | None:
    """``--max-current``: A per phase, > 0; an empty value clears it."""
    if not text:
        return None
    try:
        value = float(text)
    except ValueError as exc:
        raise UsageError(f"--max-current {text!r} is not a number") from exc
    if not 0 < value < float("inf"):
        raise UsageError(f"--max-current {text!r} must be above 0 A")
    return value


async def _circuit_of(
    kafka: KafkaSettings, site_id: str | None, circuit_id: str, rotation: str
) -> str | None:
    """The circuit id to record for ``--circuit``; the site's own id is its grid connection.

    Refuses a circuit the site does not have, and one that does not carry the
    grid phase the station's L1 is on (``rotation``'s first letter).
    """
    if site_id is None:
        raise UsageError("--circuit needs a site: give --site")
    sites = await read_table(
        kafka, SITES.name, decode_site, client_id=CLIENT_ID, within=READ_TIMEOUT
    )
    site = sites.get(site_id)
    if site is None:
        raise UsageError(f"unknown site {site_id!r}: define it first (csms sites set {site_id})")
    if circuit_id == site_id:
        return None
    by_id = {c.circuit_id: c for c in site.circuits}
    circuit = by_id.get(circuit_id)
    if circuit is None:
        raise UsageError(
            f"site {site_id} has no circuit {circuit_id!r} "
            f"(its circuits: {', '.join(sorted(by_id)) or 'none'}; csms sites circuit set)"
        )
    l1 = "RST".index(rotation[0]) + 1
    if circuit.phases == 1 and circuit.grid_phase != l1:
        raise UsageError(
            f"circuit {circuit_id} is single-phase on grid L{circuit.grid_phase}, and rotation "
            f"{rotation} puts the station's L1 on grid L{l1}: give --rotation "
            f"{'RST'[circuit.grid_phase - 1]}xx (or the rotation it is wired with)"
        )
    return circuit_id


@dataclasses.dataclass
class _Output:
    out: TextIO
    err: TextIO


async def _add(kafka: KafkaSettings, args: argparse.Namespace, io: _Output) -> None:
    station_id = _identity(args.station_id)
    password: str | None = args.password
    if args.password_stdin:
        if sys.stdin.isatty():
            password = getpass.getpass(f"password for {station_id}: ")
        else:
            password = sys.stdin.readline().rstrip("\r\n")
    if password is not None:
        try:
            check_password(password)
        except PasswordRejected as exc:
            raise UsageError(str(exc)) from exc
    if password is not None and args.profile == 3:
        raise UsageError("security profile 3 authenticates with a certificate, not a password")
    current = (await read_stations(kafka)).get(station_id)
    profile = cast(
        Literal[1, 2, 3],
        args.profile or (current.security_profile if current else DEFAULT_PROFILE),
    )
    if password is not None and profile == 3:
        raise UsageError(
            f"{station_id} is on security profile 3: it authenticates with a certificate"
        )
    generated: str | None = None
    password_hash: str | None
    if profile == 3:
        password_hash = None
    elif password is not None:
        password_hash = hash_password(password)
    elif current is not None and current.password_hash is not None:
        password_hash = current.password_hash
    else:
        generated = generate_password()
        password_hash = hash_password(generated)
    site_id = current.site_id if current else None
    if args.site is not None:
        site_id = args.site or None
    rotation = args.rotation or (current.phase_rotation if current else "RST")
    circuit_id = current.circuit_id if current and current.site_id == site_id else None
    if args.circuit:
        circuit_id = await _circuit_of(kafka, site_id, args.circuit, rotation)
    elif args.circuit is not None:
        circuit_id = None
    elif args.rotation and circuit_id is not None:
        await _circuit_of(kafka, site_id, circuit_id, rotation)
    max_current = current.max_current_a if current else None
    if args.max_current is not None:
        max_current = _max_current(args.max_current)
    station = StationRecord(
        station_id=station_id,
        security_profile=profile,
        password_hash=password_hash,
        site_id=site_id,
        enabled=current.enabled if current else True,
        updated_at=datetime.now(UTC),
        circuit_id=circuit_id,
        phase_rotation=rotation,
        max_current_a=max_current,
    )
    await write_station(kafka, station_id, station)
    print(f"{'updated' if current else 'added'}\t{_describe(station)}", file=io.out)
    if generated is not None:
        print(f"password\t{generated}", file=io.out)
        print(
            f"csms stations: the password of {station_id} is shown only now; set it on the "
            "station (OCPP 2.0.1 BasicAuthPassword, 1.6 AuthorizationKey)",
            file=io.err,
        )
    if args.circuit is not None or args.rotation or args.max_current is not None:
        print(f"placed\t{_placement(station)}", file=io.out)


async def _list(kafka: KafkaSettings, args: argparse.Namespace, io: _Output) -> None:
    stations = await read_stations(kafka)
    for station_id in sorted(stations):
        print(_describe(stations[station_id]), file=io.out)


async def _status(kafka: KafkaSettings, args: argparse.Namespace, io: _Output) -> None:
    lines = status_lines(await read_statuses(kafka), args.station_id, as_json=args.json)
    for line in lines:
        print(line, file=io.out)


async def _set_enabled(
    kafka: KafkaSettings, args: argparse.Namespace, io: _Output, enabled: bool
) -> None:
    station_id = args.station_id
    current = (await read_stations(kafka)).get(station_id)
    if current is None:
        raise UsageError(f"unknown station {station_id!r}")
    word = "enabled" if enabled else "disabled"
    if current.enabled == enabled:
        print(f"unchanged\t{_describe(current)}", file=io.out)
        return
    station = msgspec.structs.replace(current, enabled=enabled, updated_at=datetime.now(UTC))
    await write_station(kafka, station_id, station)
    print(f"{word}\t{_describe(station)}", file=io.out)


async def _remove(kafka: KafkaSettings, args: argparse.Namespace, io: _Output) -> None:
    station_id = args.station_id
    if station_id not in await read_stations(kafka):
        raise UsageError(f"unknown station {station_id!r}")
    await write_station(kafka, station_id, None)
    print(f"removed\t{station_id}", file=io.out)


def _configure(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    add = actions.add_parser(
        "add",
        help="add a station, or change one (fields not given are kept)",
        description="Add a station to the registry, or change one: fields not given are kept. "
        "Profiles 1 and 2 without a password get a generated one, printed once.",
    )
    add.add_argument("station_id", metavar="ID", help="the station identity (its URL's last part)")
    secret = add.add_mutually_exclusive_group()
    secret.add_argument(
        "--password", help="the station's Basic auth password (16 to 40 characters)"
    )
    secret.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    add.add_argument(
        "--profile",
        type=int,
        choices=(1, 2, 3),
        help=f"security profile (default for a new station: {DEFAULT_PROFILE})",
    )
    add.add_argument("--site", help="the station's site id (an empty value clears it)")
    add.add_argument(
        "--circuit",
        help="the circuit of its site the station hangs on (default: the grid connection; "
        "an empty value moves it there)",
    )
    add.add_argument(
        "--rotation",
        choices=sorted(PHASE_ROTATIONS),
        metavar="RST",
        help="which grid phases feed its L1, L2, L3 (OCPP PhaseRotation: RST, STR, TRS, ..., "
        "x: not connected, e.g. Rxx; default RST)",
    )
    add.add_argument(
        "--max-current",
        metavar="A",
        help="the hardware maximum of each EVSE, A per phase (an empty value clears it)",
    )
    add_arguments(add, KafkaSettings)

    listing = actions.add_parser("list", help="list the stations: id, profile, enabled, site")
    add_arguments(listing, KafkaSettings)

    status = actions.add_parser(
        "status",
        help="the stations' status: the fleet at a glance, or one station in detail",
        description="Read csms.station-status.v1 (kept by the status worker): counts of "
        "stations online, offline, charging and faulted and a line per station, or one "
        "station in detail.",
    )
    status.add_argument("station_id", metavar="ID", nargs="?", help="one station in detail")
    status.add_argument("--json", action="store_true", help="print the records as JSON lines")
    add_arguments(status, KafkaSettings)

    for name, text in (
        ("disable", "refuse the station's connections"),
        ("enable", "accept the station's connections again"),
        ("remove", "remove the station from the registry"),
    ):
        action = actions.add_parser(name, help=text)
        action.add_argument("station_id", metavar="ID", help="the station identity")
        add_arguments(action, KafkaSettings)


def _run(args: argparse.Namespace) -> int:
    kafka = load(KafkaSettings, args)
    io = _Output(sys.stdout, sys.stderr)
    action = args.action
    if action == "add":
        coroutine = _add(kafka, args, io)
    elif action == "list":
        coroutine = _list(kafka, args, io)
    elif action == "status":
        coroutine = _status(kafka, args, io)
    elif action in ("disable", "enable"):
        coroutine = _set_enabled(kafka, args, io, enabled=action == "enable")
    else:
        coroutine = _remove(kafka, args, io)
    try:
        return run_against_kafka(f"csms stations {action}", kafka, coroutine, io.err)
    except UnknownStation as exc:
        print(f"csms stations {action}: {exc}", file=io.err)
        return 1


command = Command(
    help="add, list, disable, enable or remove stations in the registry; their status",
    configure=_configure,
    run=_run,
)
