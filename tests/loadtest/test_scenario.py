"""Scenario files: the built-ins parse, durations read, and every mistake is named precisely."""

from __future__ import annotations

import pytest

from loadtest.builtin import BUILTIN
from loadtest.scenario import ScenarioError, load, parse, parse_duration


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_every_builtin_scenario_parses_and_has_a_description(name: str) -> None:
    scenario = load(name)
    assert scenario.name == name
    assert scenario.description


def test_the_builtins_do_what_their_names_say() -> None:
    assert load("boot-storm").stations.connect_rate == 0
    storm = load("reconnect-storm").reconnect
    assert storm is not None and storm.at == (20.0,) and storm.spread == 0
    assert load("transactions").transactions is not None
    assert load("aligned-burst").aligned is not None
    calls = load("steady").calls
    assert calls is not None and calls.fleet_rate(100) == 10.0


@pytest.mark.parametrize(
    ("text", "seconds"),
    [(30, 30.0), (1.5, 1.5), ("500ms", 0.5), ("30s", 30.0), ("5m", 300.0), ("1h", 3600.0),
     ("2", 2.0), (" 7 s ", 7.0)],
)  # fmt: skip
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["fast", "5 minutes", -1, True, "", "1d"])
def test_bad_durations(text: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_a_full_scenario() -> None:
    scenario = parse(
        """
        name = "mine"
        duration = "2m"
        call_timeout = 5
        [stations]
        count = 10
        ocpp = { "1.6" = 1, "2.0.1" = 1 }
        connectors = 3
        connect_rate = 50
        boot = false
        [heartbeat]
        interval = "30s"
        [calls]
        rate = 12.5
        arrival = "uniform"
        mix = { MeterValues = 1, Authorize = 1 }
        sampled_values = 6
        [transactions]
        every = "10m"
        duration = "1m"
        id_tag = "TAG{n}"
        [aligned]
        interval = "15m"
        [reconnect]
        at = ["1m", 90]
        spread = "5s"
        """
    )
    assert scenario.duration == 120 and scenario.call_timeout == 5
    assert scenario.stations.ocpp == {"1.6": 1.0, "2.0.1": 1.0}
    assert scenario.stations.connectors == 3 and not scenario.stations.boot
    assert scenario.calls is not None and scenario.calls.fleet_rate(1000) == 12.5
    assert scenario.calls.arrival == "uniform" and scenario.calls.sampled_values == 6
    assert scenario.transactions is not None and scenario.transactions.id_tag == "TAG{n}"
    assert scenario.aligned is not None and scenario.aligned.interval == 900
    assert scenario.reconnect is not None and scenario.reconnect.at == (60.0, 90.0)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("duration = 'soon'", "x.toml: duration: expected a duration"),
        ("[calls]\nrate = 'fast'", "x.toml: calls.rate: expected a number >= 0, got 'fast'"),
        ("[calls]\nrate = 1\ninterval = 2", "x.toml: calls: give exactly one of rate"),
        ("[calls]\nrate = 1\nmix = { Reset = 1 }", "calls.mix: 'Reset' is not one of Authorize"),
        ("[calls]\nrate = 1\nmix = { Heartbeat = 0 }", "calls.mix: at least one weight"),
        ("[calls]\nrate = 1\narrival = 'bursty'", 'calls.arrival: expected "poisson" or'),
        ("[stations]\nocpp = { '1.5' = 1 }", "stations.ocpp: '1.5' is not one of 1.6"),
        ("[stations]\ncount = 0", "stations.count: expected an integer >= 1, got 0"),
        ("[stations]\ncount = 2.5", "stations.count: expected an integer >= 1, got 2.5"),
        ("[stations]\nboot = 'yes'", "stations.boot: expected true or false"),
        ("[stations]\ncout = 5", "x.toml: stations.cout: unknown key; expected one of boot, "
                                 "connect_rate, connectors, count, ocpp"),
        ("colour = 'red'", "x.toml: colour: unknown key"),
        ("[heartbeat]\ninterval = 0", "heartbeat.interval: expected a duration > 0"),
        ("[reconnect]\nspread = 1", "reconnect.at: required"),
        ("[transactions]\nid_tag = '{station}'", "transactions.id_tag: '{station}' is not a "
                                                 "template with only {n}"),
        ("stations = 5", "x.toml: stations: expected a table, got 5"),
        ("[stations]\nboot = false", "x.toml: the stations have nothing to do"),
        ("name = ", "x.toml: not valid TOML"),
    ],
)  # fmt: skip
def test_mistakes_are_named_with_the_file_and_the_key(text: str, message: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        parse(text, "x.toml")
    assert message in str(caught.value)


def test_an_unknown_name_that_is_not_a_file() -> None:
    with pytest.raises(ScenarioError, match=r"neither a built-in scenario .* nor a readable file"):
        load("no-such-scenario")


def test_a_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "mine.toml"
    path.write_text("[heartbeat]\ninterval = 10\n")
    scenario = load(str(path))
    assert scenario.name == "mine"
    assert scenario.heartbeat is not None and scenario.heartbeat.interval == 10
