"""Settings: flags over environment over defaults, precise errors, documented fields."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Literal

import pytest

from contracts.settings import (
    KafkaSettings,
    SettingsError,
    add_arguments,
    describe,
    environment,
    load,
    setting,
)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Example:
    kafka: KafkaSettings = dataclasses.field(default_factory=KafkaSettings)
    port: int = setting(9000, "port", flag="--port")
    ratio: float = setting(0.5, "ratio", env="CSMS_EXAMPLE_RATIO")
    verbose: bool = setting(False, "verbose", flag="--verbose")
    mode: Literal["a", "b"] = setting("a", "mode")
    proxies: tuple[str, ...] = setting((), "trusted proxies")
    limit: float | None = setting(None, "optional limit")


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser, Example)
    return parser.parse_args(argv)


def test_defaults_when_nothing_is_given() -> None:
    settings = load(Example, _parse(), env={})
    assert settings == Example()
    assert settings.kafka.bootstrap == "127.0.0.1:9092"
    assert settings.kafka.idempotence is True


def test_environment_overrides_defaults_and_flags_override_environment() -> None:
    env = {"CSMS_PORT": "9001", "CSMS_KAFKA_BOOTSTRAP": "kafka:9092", "CSMS_VERBOSE": "yes"}
    assert load(Example, _parse(), env=env).port == 9001
    assert load(Example, _parse(), env=env).verbose is True
    settings = load(
        Example, _parse("--port", "9002", "--bootstrap", "b:1", "--no-verbose"), env=env
    )
    assert (settings.port, settings.kafka.bootstrap, settings.verbose) == (9002, "b:1", False)


def test_types_are_read_from_text() -> None:
    env = {
        "CSMS_EXAMPLE_RATIO": "0.25",
        "CSMS_MODE": "b",
        "CSMS_PROXIES": "10.0.0.1, 10.0.0.2,,",
        "CSMS_LIMIT": "3.5",
        "CSMS_KAFKA_IDEMPOTENCE": "false",
    }
    settings = load(Example, None, env=env)
    assert settings.ratio == 0.25
    assert settings.mode == "b"
    assert settings.proxies == ("10.0.0.1", "10.0.0.2")
    assert settings.limit == 3.5
    assert settings.kafka.idempotence is False
    assert load(Example, None, env={"CSMS_LIMIT": ""}).limit is None


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CSMS_PORT": "nine"}, "CSMS_PORT='nine'"),
        ({"CSMS_MODE": "c"}, "expected one of a, b"),
        ({"CSMS_VERBOSE": "maybe"}, "expected true/false"),
        ({"CSMS_KAFKA_COMPRESSION": "brotli"}, "CSMS_KAFKA_COMPRESSION='brotli'"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load(Example, None, env=env)


def test_overrides_win_over_everything() -> None:
    settings = load(Example, _parse("--port", "1"), env={"CSMS_PORT": "2"}, port=3)
    assert settings.port == 3


def test_settings_are_frozen() -> None:
    settings = load(Example, None, env={})
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.port = 1  # type: ignore[misc]


def test_describe_lists_every_setting_with_its_default() -> None:
    rows = {env: (flag, default) for env, flag, default, _help in describe(Example)}
    assert rows["CSMS_KAFKA_BOOTSTRAP"] == ("--bootstrap", "127.0.0.1:9092")
    assert rows["CSMS_PORT"] == ("--port", "9000")
    assert rows["CSMS_EXAMPLE_RATIO"] == (None, "0.5")
    assert rows["CSMS_LIMIT"] == (None, "(unset)")
    assert rows["CSMS_VERBOSE"] == ("--verbose", "false")


def test_environment_reproduces_the_settings_in_another_process() -> None:
    settings = Example(
        kafka=KafkaSettings(bootstrap="k:1", idempotence=False, fetch_max_wait=0.02),
        ratio=0.25,
        verbose=True,
        mode="b",
        proxies=("10.0.0.1", "10.0.0.2"),
        limit=3.5,
    )
    variables = environment(settings)
    assert variables == {
        "CSMS_KAFKA_BOOTSTRAP": "k:1",
        "CSMS_KAFKA_IDEMPOTENCE": "false",
        "CSMS_KAFKA_FETCH_MAX_WAIT": "0.02",
        "CSMS_EXAMPLE_RATIO": "0.25",
        "CSMS_VERBOSE": "true",
        "CSMS_MODE": "b",
        "CSMS_PROXIES": "10.0.0.1,10.0.0.2",
        "CSMS_LIMIT": "3.5",
    }
    assert load(Example, None, env=variables) == settings
    assert environment(Example()) == {}
    complete = environment(settings, complete=True)
    assert complete.keys() == {env for env, *_ in describe(Example)}
    assert complete["CSMS_PORT"] == "9000" and complete["CSMS_LIMIT"] == "3.5"
    assert load(Example, None, env=complete) == settings


def test_a_field_without_setting_metadata_is_refused() -> None:
    @dataclasses.dataclass(frozen=True)
    class Broken:
        port: int = 1

    with pytest.raises(TypeError, match="not declared with setting"):
        load(Broken, None, env={})
