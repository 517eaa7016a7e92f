"""``csms alerts``: list and show alerts, silence them, and run the notifier.

Alerts are read from csms.alerts.v1 (the latest record of each ``alert_id``
wins: raised, then cleared); silences live in the compacted topic
csms.alert-silences.v1, which every notifier follows::

    csms alerts list                                   # every alert: id, state, rule, station, ...
    csms alerts list --state raised --station CP-1     # (--state firing is raised)
    csms alerts list --json                            # the records, one JSON line each
    csms alerts show 'CP-1///station_offline@3:1042'   # one alert's latest record, as JSON
    csms alerts silence --station CP-1 --rule connector_faulted --for 2h --comment "repair"
    csms alerts silences                               # the silences not yet ended
    csms alerts unsilence sil-5e1f0c2a                 # ends one now (a tombstone)
    csms alerts notify                                 # deliver to Alertmanager and webhooks

Exit status: 0 done; 1 Kafka cannot be reached (or a topic is missing);
2 a usage error (an unknown alert or silence, a duration that is not one).
"""

from __future__ import annotations

import argparse
import getpass
import re
import secrets
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

import msgspec

from contracts.bus.command import UsageError, run_against_kafka, write_record
from contracts.bus.follower import read_to_end
from contracts.cli import Command
from contracts.envelopes import Alert, Silence, decode_alert, encode_silence
from contracts.headers import silence_headers, tombstone_headers
from contracts.service.logs import configure_logging
from contracts.service.runtime import run
from contracts.settings import KafkaSettings, add_arguments, load
from contracts.topics import ALERTS, SILENCES
from workers.alerts.notify.settings import NotifySettings
from workers.alerts.silences import SilenceTable

__all__ = ["SOURCE", "command", "parse_duration", "read_alerts", "read_silences"]

SOURCE = "/csms/cli/alerts"
"""The ``ce_source`` of the records this command writes."""

READ_TIMEOUT = 30.0
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)([smhdw]))+")
_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")


def parse_duration(text: str) -> timedelta:
    """``30m``, ``2h``, ``1d``, ``1h30m`` as a timedelta; :class:`UsageError` for anything else."""
    if not _DURATION.fullmatch(text.strip()):
        raise UsageError(f"--for {text!r} is not a duration (e.g. 30m, 2h, 1d, 1h30m)")
    seconds = sum(float(n) * _UNITS[unit] for n, unit in _PART.findall(text))
    if seconds <= 0:
        raise UsageError(f"--for {text!r} is not a positive duration")
    return timedelta(seconds=seconds)


async def _read(kafka: KafkaSettings, topic: str, on_records: Callable[[list[Any]], None]) -> None:
    await read_to_end(kafka, topic, on_records, client_id="csms-alerts-cli", within=READ_TIMEOUT)


async def read_alerts(kafka: KafkaSettings) -> dict[str, Alert]:
    """csms.alerts.v1 folded: the latest record of every alert, by ``alert_id``."""
    latest: dict[str, Alert] = {}

    def fold(records: list[Any]) -> None:
        for record in records:
            try:
                alert = decode_alert(record.value)
            except (msgspec.DecodeError, TypeError):
                continue
            latest[alert.alert_id] = alert

    await _read(kafka, ALERTS.name, fold)
    return latest


async def read_silences(kafka: KafkaSettings) -> SilenceTable:
    """csms.alert-silences.v1 read from its beginning to its end."""
    table = SilenceTable()
    await _read(kafka, SILENCES.name, table.apply)
    return table


async def write_silence(kafka: KafkaSettings, silence_id: str, silence: Silence | None) -> None:
    """Write a silence, or its tombstone when ``silence`` is ``None``."""
    if silence is None:
        headers = tombstone_headers(SILENCES, silence_id, source=SOURCE, at=datetime.now(UTC))
    else:
        headers = silence_headers(silence, source=SOURCE)
    await write_record(
        kafka, SILENCES, silence_id, encode_silence(silence), headers, client_id="csms-alerts-cli"
    )


def _time(at: datetime | None) -> str:
    return "-" if at is None else at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _describe_alert(alert: Alert) -> str:
    """One line: id, state, rule, severity, station, raised, cleared, summary (tab-separated)."""
    return "\t".join(
        (
            alert.alert_id,
            alert.state,
            alert.kind,
            alert.severity,
            alert.station_id,
            _time(alert.raised_at),
            _time(alert.cleared_at),
            alert.summary,
        )
    )


def _describe_silence(silence: Silence) -> str:
    """One line: id, station, rule, starts, ends, by, comment (tab-separated)."""
    return "\t".join(
        (
            silence.silence_id,
            silence.station_id or "*",
            silence.kind or "*",
            _time(silence.starts_at),
            _time(silence.ends_at),
            silence.created_by,
            silence.comment,
        )
    )


async def _list(kafka: KafkaSettings, args: argparse.Namespace, out: TextIO) -> None:
    state = "raised" if args.state == "firing" else args.state
    alerts = sorted((await read_alerts(kafka)).values(), key=lambda a: (a.raised_at, a.alert_id))
    for alert in alerts:
        if (state and alert.state != state) or (args.station and alert.station_id != args.station):
            continue
        print(
            msgspec.json.encode(alert).decode() if args.json else _describe_alert(alert), file=out
        )


async def _show(kafka: KafkaSettings, args: argparse.Namespace, out: TextIO) -> None:
    alert = (await read_alerts(kafka)).get(args.alert_id)
    if alert is None:
        raise UsageError(f"unknown alert {args.alert_id!r} (csms alerts list shows them)")
    print(msgspec.json.format(msgspec.json.encode(alert), indent=2).decode(), file=out)


async def _silence(kafka: KafkaSettings, args: argparse.Namespace, out: TextIO) -> None:
    if not args.station and not args.rule:
        raise UsageError("say what to silence: --station ID, --rule RULE or both")
    length = parse_duration(args.duration)
    now = datetime.now(UTC)
    silence = Silence(
        silence_id=f"sil-{secrets.token_hex(4)}",
        station_id=args.station or None,
        kind=args.rule or None,
        starts_at=now,
        ends_at=now + length,
        created_by=args.by or getpass.getuser(),
        comment=args.comment,
        created_at=now,
    )
    await write_silence(kafka, silence.silence_id, silence)
    print(f"silenced\t{_describe_silence(silence)}", file=out)


async def _silences(kafka: KafkaSettings, args: argparse.Namespace, out: TextIO) -> None:
    now = datetime.now(UTC)
    for silence in sorted(await read_silences(kafka), key=lambda s: (s.ends_at, s.silence_id)):
        if silence.ends_at > now:
            print(_describe_silence(silence), file=out)


async def _unsilence(kafka: KafkaSettings, args: argparse.Namespace, out: TextIO) -> None:
    if (await read_silences(kafka)).get(args.silence_id) is None:
        raise UsageError(f"unknown silence {args.silence_id!r} (csms alerts silences lists them)")
    await write_silence(kafka, args.silence_id, None)
    print(f"unsilenced\t{args.silence_id}", file=out)


def _configure(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser(
        "list", help="list alerts: id, state, rule, severity, station, raised, cleared, summary"
    )
    listing.add_argument("--state", choices=("raised", "firing", "cleared"))
    listing.add_argument("--station", metavar="ID", help="only this station's alerts")
    listing.add_argument("--json", action="store_true", help="the records as JSON lines")
    add_arguments(listing, KafkaSettings)
    show = actions.add_parser("show", help="one alert's latest record, as JSON")
    show.add_argument("alert_id", metavar="ALERT_ID")
    add_arguments(show, KafkaSettings)
    silence = actions.add_parser(
        "silence", help="stop notifying a station's alerts (or a rule's) for a while"
    )
    silence.add_argument("--station", metavar="ID", help="the station (default: every station)")
    silence.add_argument("--rule", metavar="RULE", help="the rule, e.g. connector_faulted")
    silence.add_argument(
        "--for", dest="duration", metavar="DURATION", required=True, help="e.g. 30m, 2h, 1d"
    )
    silence.add_argument("--comment", default="", help="why, for the other operators")
    silence.add_argument("--by", help="who silences (default: the login name)")
    add_arguments(silence, KafkaSettings)
    silences = actions.add_parser("silences", help="the silences that have not ended")
    add_arguments(silences, KafkaSettings)
    unsilence = actions.add_parser("unsilence", help="end a silence now")
    unsilence.add_argument("silence_id", metavar="SILENCE_ID")
    add_arguments(unsilence, KafkaSettings)
    notify = actions.add_parser(
        "notify",
        help="deliver csms.alerts.v1 to Alertmanager and webhooks",
        description="Deliver csms.alerts.v1 to Prometheus Alertmanager and to signed webhooks "
        "(docs/monitoring.md, Notifications).",
    )
    add_arguments(notify, NotifySettings)


def _notify(args: argparse.Namespace) -> int:
    from workers.alerts.notify.service import serve

    settings = load(NotifySettings, args)
    settings.webhook_targets()  # a bad CSMS_ALERTS_WEBHOOKS is a usage error, before anything
    service = settings.service
    configure_logging("alerts-notify", service.instance_name(), service.log_level)
    return run(lambda: serve(settings))


def _run(args: argparse.Namespace) -> int:
    if args.action == "notify":
        return _notify(args)
    kafka = load(KafkaSettings, args)
    actions: dict[str, Any] = {
        "list": _list,
        "show": _show,
        "silence": _silence,
        "silences": _silences,
        "unsilence": _unsilence,
    }
    work = actions[args.action](kafka, args, sys.stdout)
    return run_against_kafka(f"csms alerts {args.action}", kafka, work, sys.stderr)


command = Command(
    help="list, show and silence alerts (csms.alerts.v1), and notify them",
    configure=_configure,
    run=_run,
)
