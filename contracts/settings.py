"""Settings: one frozen object per service, read once from flags and ``CSMS_*`` variables.

A settings class is a frozen dataclass whose fields are declared with
:func:`setting`. Each field has an environment variable (``CSMS_`` plus the
field's upper-cased name, unless given), an optional command-line flag, a
default and a help text. Precedence: flag, then environment, then default.

Nested settings (a field whose type is itself a settings class, such as
:class:`KafkaSettings`) are flattened: their variables and flags are read as if
they were declared on the outer class.

``python -m contracts.settings`` prints the table of every setting that the
README documents.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import types
import typing
from collections.abc import Iterator, Mapping
from typing import Any, Literal, TypeAlias, TypeVar, get_args, get_origin

__all__ = [
    "Compression",
    "KafkaSettings",
    "SettingsError",
    "add_arguments",
    "describe",
    "environment",
    "load",
    "setting",
]

T = TypeVar("T")

Compression: TypeAlias = Literal["lz4", "zstd", "snappy", "gzip", "none"]  # Kafka codecs


class SettingsError(ValueError):
    """A setting has a value that cannot be read; the message names the variable or flag."""


def setting(
    default: Any,
    help: str,
    *,
    env: str | None = None,
    flag: str | None = None,
) -> Any:
    """Declare a setting field (use as ``name: type = setting(default, "help")``)."""
    return dataclasses.field(
        default=default, metadata={"help": help, "env": env, "flag": flag, "setting": True}
    )


@dataclasses.dataclass(frozen=True, kw_only=True)
class KafkaSettings:
    """How every csms process talks to Kafka."""

    bootstrap: str = setting(
        "127.0.0.1:9092",
        "Kafka bootstrap servers, comma-separated HOST:PORT",
        env="CSMS_KAFKA_BOOTSTRAP",
        flag="--bootstrap",
    )
    idempotence: bool = setting(
        True,
        "Idempotent producer: retries through a leader change neither duplicate nor reorder",
        env="CSMS_KAFKA_IDEMPOTENCE",
    )
    compression: Compression = setting(
        "lz4",
        "Producer compression codec (lz4 costs a fifth of gzip's CPU at a similar ratio)",
        env="CSMS_KAFKA_COMPRESSION",
    )
    produce_path: Literal["csms", "aiokafka"] = setting(
        "csms",
        "How the gateway and workers write record batches: csms (one request per broker per "
        "round, encoded by csms; about half of aiokafka's CPU per request on Kafka) or aiokafka "
        "(its send_batch). SASL always uses aiokafka",
        env="CSMS_KAFKA_PRODUCE_PATH",
    )
    fetch_max_wait: float = setting(
        0.5,
        "Seconds a fetch of commands, replies or events may wait at the broker while no record "
        "is there. Kafka answers a waiting fetch as soon as a record arrives, so this only sets "
        "how often an idle consumer asks",
        env="CSMS_KAFKA_FETCH_MAX_WAIT",
    )
    table_fetch_max_wait: float = setting(
        0.5,
        "The same for the registries every process follows (stations, presence, id tokens) and "
        "the gateway's offline responder",
        env="CSMS_KAFKA_TABLE_FETCH_MAX_WAIT",
    )
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = setting(
        "PLAINTEXT", "Kafka security protocol", env="CSMS_KAFKA_SECURITY_PROTOCOL"
    )
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = setting(
        "PLAIN", "SASL mechanism when the protocol is SASL_*", env="CSMS_KAFKA_SASL_MECHANISM"
    )
    sasl_username: str = setting("", "SASL username", env="CSMS_KAFKA_SASL_USERNAME")
    sasl_password: str = setting("", "SASL password", env="CSMS_KAFKA_SASL_PASSWORD")
    ssl_cafile: str = setting(
        "", "CA bundle for SSL/SASL_SSL (empty: system CAs)", env="CSMS_KAFKA_SSL_CAFILE"
    )


# --------------------------------------------------------------------------- fields


@dataclasses.dataclass(frozen=True)
class _Field:
    path: tuple[str, ...]  # attribute names from the outer class down to this field
    type: Any
    default: Any
    help: str
    env: str
    flag: str | None

    @property
    def dest(self) -> str:
        """The argparse destination: the flag's name, the same wherever the settings are nested."""
        return (self.flag or "").lstrip("-").replace("-", "_")


def _fields(cls: type[Any], path: tuple[str, ...] = ()) -> Iterator[_Field]:
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        if dataclasses.is_dataclass(hint):
            yield from _fields(hint, (*path, f.name))  # type: ignore[arg-type]
            continue
        if not f.metadata.get("setting"):
            raise TypeError(f"{cls.__name__}.{f.name} is not declared with setting()")
        env = f.metadata["env"] or "CSMS_" + f.name.upper()
        yield _Field((*path, f.name), hint, f.default, f.metadata["help"], env, f.metadata["flag"])


def _parse(field: _Field, raw: str, source: str) -> Any:
    """Turn the text of a variable or flag into the field's type."""
    tp = field.type
    origin = get_origin(tp)
    try:
        if tp is bool:
            low = raw.strip().lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError("expected true/false")
        if tp is int:
            return int(raw)
        if tp is float:
            return float(raw)
        if tp is str:
            return raw
        if origin is Literal:
            choices = get_args(tp)
            if raw not in choices:
                raise ValueError("expected one of " + ", ".join(map(str, choices)))
            return raw
        if origin is tuple:
            return tuple(item.strip() for item in raw.split(",") if item.strip())
        if origin in (types.UnionType, typing.Union):  # Optional[float] and friends
            if raw.strip() == "":
                return None
            inner = next(a for a in get_args(tp) if a is not type(None))
            return _parse(dataclasses.replace(field, type=inner), raw, source)
    except ValueError as exc:
        raise SettingsError(f"{source}={raw!r}: {exc}") from exc
    raise TypeError(f"unsupported setting type {tp!r}")


# --------------------------------------------------------------------------- API


def add_arguments(parser: argparse.ArgumentParser, cls: type[Any]) -> None:
    """Add a flag for every setting of ``cls`` that declares one."""
    for field in _fields(cls):
        if field.flag is None:
            continue
        kwargs: dict[str, Any] = {"dest": field.dest, "default": None}
        if field.type is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["metavar"] = field.flag.lstrip("-").upper().replace("-", "_")
        parser.add_argument(
            field.flag, help=f"{field.help} (env {field.env}, default {field.default!r})", **kwargs
        )


def load(
    cls: type[T],
    args: argparse.Namespace | None = None,
    env: Mapping[str, str] | None = None,
    **overrides: Any,
) -> T:
    """Build the frozen settings object: overrides, then flags, then environment, then defaults."""
    env = os.environ if env is None else env
    values: dict[tuple[str, ...], Any] = {}
    for field in _fields(cls):
        name = field.path[-1] if len(field.path) == 1 else None
        if name is not None and name in overrides:
            values[field.path] = overrides[name]
            continue
        flag_value = getattr(args, field.dest, None) if args is not None and field.flag else None
        if flag_value is not None:
            values[field.path] = (
                flag_value
                if isinstance(flag_value, bool)
                else _parse(field, flag_value, field.flag or "")
            )
        elif field.env in env:
            values[field.path] = _parse(field, env[field.env], field.env)
    return _build(cls, (), values, overrides)


def _build(
    cls: type[T],
    path: tuple[str, ...],
    values: dict[tuple[str, ...], Any],
    overrides: dict[str, Any],
) -> T:
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        hint = hints[f.name]
        if dataclasses.is_dataclass(hint):
            if not path and f.name in overrides:
                kwargs[f.name] = overrides[f.name]
            else:
                kwargs[f.name] = _build(hint, (*path, f.name), values, {})  # type: ignore[arg-type]
        elif (*path, f.name) in values:
            kwargs[f.name] = values[(*path, f.name)]
    return cls(**kwargs)


def describe(cls: type[Any]) -> list[tuple[str, str | None, str, str]]:
    """Rows of (environment variable, flag, default, help) for documentation."""
    return [
        (
            field.env,
            field.flag,
            "(unset)" if field.default is None else _text(field.default),
            field.help,
        )
        for field in _fields(cls)
    ]


def environment(settings: Any, *, complete: bool = False) -> dict[str, str]:
    """The variables that give another process the same settings: those that differ from
    the defaults, or with ``complete`` every one (over whatever the process inherits)."""
    variables = {}
    for field in _fields(type(settings)):
        value = settings
        for name in field.path:
            value = getattr(value, name)
        if complete or value != field.default:
            variables[field.env] = _text(value)
    return variables


def _text(value: Any) -> str:
    """A value as its variable spells it."""
    if isinstance(value, tuple):
        return ",".join(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)
