"""``csms sites`` and ``csms stations add --circuit``, against the session's broker."""

from __future__ import annotations

import argparse
import asyncio
import io
import uuid

import msgspec
import pytest

from contracts.cli import Command
from gateway.stations import command as stations_command
from gateway.stations import read_stations, write_station
from tests.support.kafka import KafkaUnderTest
from tests.support.processes import run_csms
from workers.smart_charging.sites_cli import command as sites_command
from workers.smart_charging.sites_cli import read_sites

pytestmark = pytest.mark.kafka


@pytest.fixture(autouse=True)
def _kafka_env(kafka: KafkaUnderTest, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in kafka.env().items():
        monkeypatch.setenv(name, value)


def _run(command: Command, prog: str, argv: tuple[str, ...]) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog=prog)
    command.configure(parser)
    args = parser.parse_args(list(argv))
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("sys.stdout", out)
        patch.setattr("sys.stderr", err)
        status = command.run(args)
    return status, out.getvalue(), err.getvalue()


def sites(*argv: str) -> tuple[int, str, str]:
    """Run ``csms sites ARGV``; return (exit status, stdout, stderr)."""
    return _run(sites_command, "csms sites", argv)


def stations(*argv: str) -> tuple[int, str, str]:
    return _run(stations_command, "csms stations", argv)


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_a_site_its_circuits_and_stations_make_a_tree(kafka: KafkaUnderTest) -> None:
    s = new_id("site")
    assert sites("set", s, "--max-current", "63", "--max-power", "40000") == (
        0,
        f"added\t{s}\t3\t63 A\t40000 W\t-\n",
        "",
    )
    assert sites("circuit", "set", s, "hall", "--max-current", "40", "--derating", "0.8")[0] == 0
    status, out, err = sites("circuit", "set", s, "wall", "--parent", "hall", "--phases", "1")
    assert (status, err) == (0, "")
    assert out == f"added\t{s}\twall\thall\t1 x - (grid L1), -, 230 V\n"
    status, out, err = sites(
        "circuit", "set", s, "wall", "--max-current", "16", "--grid-phase", "2"
    )
    assert out == f"updated\t{s}\twall\thall\t1 x 16 A (grid L2), -, 230 V\n"  # parent kept

    a, b, c = new_id("CP"), new_id("CP"), new_id("CP")
    status, out, err = stations(
        "add", a, "--profile", "1", "--site", s, "--circuit", "wall", "--rotation", "Sxx",
        "--max-current", "16",
    )  # fmt: skip
    assert status == 0, err
    assert out.splitlines()[-1] == f"placed\t{a}\t{s}\twall\tSxx\t16 A"
    assert stations("add", b, "--profile", "1", "--site", s, "--circuit", "hall")[0] == 0
    assert stations("add", c, "--profile", "1", "--site", s)[0] == 0

    status, out, err = sites("show", s)
    assert (status, err) == (0, "")
    assert out.splitlines() == [
        f"site {s}: 3 x 63 A, 40000 W, 230 V",
        f"  station {c}: RST, - per EVSE",
        "  circuit hall: 3 x 40 A, -, 230 V, derating 0.8",
        f"    station {b}: RST, - per EVSE",
        "    circuit wall: 1 x 16 A (grid L2), -, 230 V",
        f"      station {a}: Sxx, 16 A per EVSE",
    ]
    assert f"{s}\t3\t63 A\t40000 W\thall,wall" in sites("list")[1].splitlines()

    # moving the station to another site takes it off its circuit
    stations("add", b, "--site", new_id("other"))
    assert f"station {b}" not in sites("show", s)[1]

    # a circuit with something on it stays
    status, _, err = sites("circuit", "remove", s, "hall")
    assert (status, err) == (
        2,
        "csms sites circuit remove: circuits hang on hall: wall; move them first\n",
    )
    status, _, err = sites("circuit", "remove", s, "wall")
    assert status == 2
    assert err == (
        f"csms sites circuit remove: stations are on wall: {a}; move them first "
        "(csms stations add ID --circuit OTHER)\n"
    )
    assert stations("add", a, "--circuit", "")[0] == 0  # back on the grid connection
    assert sites("circuit", "remove", s, "wall") == (0, f"removed\t{s}\twall\n", "")
    assert sites("remove", s) == (
        0,
        f"removed\t{s}\n",
        f"csms sites remove: stations still name site {s}: {', '.join(sorted([a, c]))}\n",
    )
    assert s not in asyncio.run(read_sites(kafka.settings))


def test_bad_input_is_refused_with_what_is_wrong(kafka: KafkaUnderTest) -> None:
    s = new_id("site")
    assert sites("set", s, "--max-current", "32")[0] == 0
    assert sites("circuit", "set", s, "one", "--phases", "1", "--grid-phase", "3")[0] == 0
    assert sites("circuit", "set", s, "a")[0] == 0
    assert sites("circuit", "set", s, "b", "--parent", "a")[0] == 0
    before = asyncio.run(read_sites(kafka.settings))[s]
    unknown = new_id("nosite")
    cases = [
        (("show", unknown), f"csms sites show: unknown site {unknown!r}"),
        (("remove", unknown), f"csms sites remove: unknown site {unknown!r}"),
        (("circuit", "set", unknown, "c"), f"csms sites circuit set: unknown site {unknown!r}"),
        (
            ("circuit", "set", s, "c", "--parent", "nowhere"),
            f"csms sites circuit set: site {s} has no circuit 'nowhere' to hang on",
        ),
        (
            ("circuit", "set", s, "a", "--parent", "b"),
            "csms sites circuit set: circuit a: a cycle (a -> b -> a): "
            "a circuit cannot hang on a circuit under it",
        ),
        (
            ("circuit", "set", s, "three", "--parent", "one"),
            "csms sites circuit set: circuit three: carries a phase its parent does not",
        ),
        (
            ("circuit", "set", s, s),
            f"csms sites circuit set: {s!r} is the site's own id, its grid connection: "
            f"change it with csms sites set {s}",
        ),
        (
            ("circuit", "set", s, "a", "--derating", "0"),
            "csms sites circuit set: circuit a: derating must be in (0, 1]",
        ),
        (
            ("circuit", "set", s, "a", "--max-current", "lots"),
            "csms sites circuit set: --max-current 'lots' is not a number",
        ),
        (
            ("circuit", "remove", s, "nowhere"),
            f"csms sites circuit remove: site {s} has no circuit 'nowhere'",
        ),
        (
            ("set", s, "--max-current", ""),
            f"csms sites set: site {s}: no max_current_a or max_power_w, nothing to share",
        ),
        (("set", s, "--voltage", ""), "csms sites set: --voltage cannot be cleared"),
    ]
    for argv, message in cases:
        assert sites(*argv) == (2, "", message + "\n"), argv
    assert asyncio.run(read_sites(kafka.settings))[s] == before  # nothing was written

    cp = new_id("CP")
    for argv, message in [
        (("--circuit", "a"), "--circuit needs a site: give --site"),
        (
            ("--site", unknown, "--circuit", "a"),
            f"unknown site {unknown!r}: define it first (csms sites set {unknown})",
        ),
        (
            ("--site", s, "--circuit", "zz"),
            f"site {s} has no circuit 'zz' (its circuits: a, b, one; csms sites circuit set)",
        ),
        (("--site", s, "--max-current", "0"), "--max-current '0' must be above 0 A"),
    ]:
        assert stations("add", cp, "--profile", "1", *argv) == (
            2, "", f"csms stations add: {message}\n"
        ), argv  # fmt: skip
    assert stations("add", cp, "--profile", "1", "--site", s, "--circuit", "one") == (
        2,
        "",
        "csms stations add: circuit one is single-phase on grid L3, and rotation RST puts "
        "the station's L1 on grid L1: give --rotation Txx (or the rotation it is wired with)\n",
    )
    assert (
        stations("add", cp, "--profile", "1", "--site", s, "--circuit", "one", "--rotation", "TRS")[
            0
        ]
        == 0
    )
    assert stations("add", cp, "--rotation", "RST")[0] == 2  # checked on its circuit too
    # records written by another hand that do not make a tree: show says so, set refuses
    record = asyncio.run(read_stations(kafka.settings))[cp]
    wrong = msgspec.structs.replace(record, phase_rotation="RST")
    asyncio.run(write_station(kafka.settings, cp, wrong))
    status, out, err = sites("show", s)
    assert status == 1
    assert f"station {cp}: RST" in out
    assert err == (
        f"csms sites show: the records do not make a tree: station {cp}: its L1 is on a "
        "phase circuit one does not carry\n"
    )
    # and a change of the site that would keep it so is refused
    status, _, err = sites("set", s, "--max-current", "40")
    assert (status, err) == (
        2,
        f"csms sites set: station {cp}: its L1 is on a phase circuit one does not carry\n",
    )


def test_the_console_script_and_a_bad_rotation() -> None:
    result = run_csms("stations", "add", "CP-X", "--rotation", "RRS", "--bootstrap", "x:1")
    assert result.returncode == 2
    assert "--rotation: invalid choice: 'RRS'" in result.stderr
    result = run_csms("sites", "--help")
    assert result.returncode == 0
    assert "circuit" in result.stdout
