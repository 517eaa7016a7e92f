"""``csms id-tokens``: add, list and remove id tokens in the authorization list.

The list is the compacted topic csms.id-tokens.v1 (key = the id token); every
sessions worker follows it, so a change applies to the next authorization on
every instance. ``add`` writes the token's whole record, so it first reads the
topic to the end to keep what it is not told to change::

    csms id-tokens add 04E91C5A123456                          # Accepted, no expiry, no group
    csms id-tokens add 04E91C5A123456 --status Blocked         # keeps expiry and group
    csms id-tokens add 04E91C5A123456 --expires 2026-12-31T23:59:59Z --group FLEET-ACME
    csms id-tokens add 04E91C5A123456 --expires ""             # no expiry any more
    csms id-tokens list                                        # token, status, expires, group
    csms id-tokens remove 04E91C5A123456                       # a tombstone

Exit status: 0 done; 1 Kafka cannot be reached (or the topic is missing);
2 a usage error (an unknown token, a date that is not ISO 8601).
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from typing import Any, TextIO, get_args

from contracts.bus.command import UsageError, run_against_kafka, write_record
from contracts.bus.follower import read_to_end
from contracts.cli import Command
from contracts.envelopes import IdTokenRecord, IdTokenStatus, encode_id_token
from contracts.headers import id_token_headers, tombstone_headers
from contracts.settings import KafkaSettings, add_arguments, load
from contracts.topics import ID_TOKENS
from workers.sessions.id_tokens import IdTokenTable

__all__ = ["SOURCE", "command", "read_id_tokens", "write_id_token"]

SOURCE = "/csms/cli/id-tokens"
"""The ``ce_source`` of the records this command writes."""

MAX_LENGTH = 255  # OCPP 2.1 IdTokenType.idToken; 2.0.1 takes 36 and 1.6 20 of them
READ_TIMEOUT = 30.0


async def read_id_tokens(kafka: KafkaSettings, *, within: float = READ_TIMEOUT) -> IdTokenTable:
    """The authorization list: csms.id-tokens.v1 read from its beginning to its end."""
    table = IdTokenTable()
    await read_to_end(
        kafka, ID_TOKENS.name, table.apply, client_id="csms-id-tokens-cli", within=within
    )
    return table


async def write_id_token(kafka: KafkaSettings, id_token: str, record: IdTokenRecord | None) -> None:
    """Write an id token's record, or its tombstone when ``record`` is ``None``."""
    if record is None:
        headers = tombstone_headers(ID_TOKENS, id_token, source=SOURCE, at=datetime.now(UTC))
    else:
        headers = id_token_headers(record, source=SOURCE)
    await write_record(
        kafka, ID_TOKENS, id_token, encode_id_token(record), headers, client_id="csms-id-tokens-cli"
    )


def _expiry(text: str) -> datetime | None:
    if not text:
        return None
    try:
        at = datetime.fromisoformat(text)
    except ValueError as exc:
        raise UsageError(f"--expires {text!r} is not an ISO 8601 date and time") from exc
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _describe(record: IdTokenRecord) -> str:
    """One line: token, status, expiry, group (tab-separated)."""
    expires = record.expires_at.isoformat().replace("+00:00", "Z") if record.expires_at else "-"
    return f"{record.id_token}\t{record.status}\t{expires}\t{record.group_id or '-'}"


async def _add(kafka: KafkaSettings, args: argparse.Namespace, out: TextIO) -> None:
    id_token = args.id_token
    if not id_token or len(id_token) > MAX_LENGTH or id_token != id_token.strip():
        raise UsageError(f"{id_token!r} is not an id token (1 to {MAX_LENGTH} characters)")
    given_expiry = None if args.expires is None else _expiry(args.expires)
    current = (await read_id_tokens(kafka)).get(id_token)
    expires = current.expires_at if current else None
    if args.expires is not None:
        expires = given_expiry
    group = current.group_id if current else None
    if args.group is not None:
        group = args.group or None
    record = IdTokenRecord(
        id_token=current.id_token if current else id_token,
        status=args.status or (current.status if current else "Accepted"),
        expires_at=expires,
        group_id=group,
        updated_at=datetime.now(UTC),
    )
    await write_id_token(kafka, record.id_token, record)
    print(f"{'updated' if current else 'added'}\t{_describe(record)}", file=out)


async def _list(kafka: KafkaSettings, args: argparse.Namespace, out: TextIO) -> None:
    for record in sorted(await read_id_tokens(kafka), key=lambda r: r.id_token):
        print(_describe(record), file=out)


async def _remove(kafka: KafkaSettings, args: argparse.Namespace, out: TextIO) -> None:
    current = (await read_id_tokens(kafka)).get(args.id_token)
    if current is None:
        raise UsageError(f"unknown id token {args.id_token!r}")
    await write_id_token(kafka, current.id_token, None)
    print(f"removed\t{current.id_token}", file=out)


def _configure(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = actions.add_parser(
        "add",
        help="add an id token, or change one (fields not given are kept)",
        description="Add an id token to the authorization list, or change one: fields not "
        "given are kept.",
    )
    add.add_argument("id_token", metavar="TOKEN", help="the id token (RFID UID, eMAID, ...)")
    add.add_argument(
        "--status",
        choices=get_args(IdTokenStatus),
        help="authorization status (default for a new token: Accepted)",
    )
    add.add_argument(
        "--expires",
        metavar="ISO",
        help="expiry, ISO 8601 (UTC when no offset is given); an empty value clears it",
    )
    add.add_argument("--group", help="group / parent id token; an empty value clears it")
    add_arguments(add, KafkaSettings)
    listing = actions.add_parser("list", help="list the id tokens: token, status, expires, group")
    add_arguments(listing, KafkaSettings)
    remove = actions.add_parser("remove", help="remove an id token from the list")
    remove.add_argument("id_token", metavar="TOKEN", help="the id token")
    add_arguments(remove, KafkaSettings)


def _run(args: argparse.Namespace) -> int:
    kafka = load(KafkaSettings, args)
    actions: dict[str, Any] = {"add": _add, "list": _list, "remove": _remove}
    work = actions[args.action](kafka, args, sys.stdout)
    return run_against_kafka(f"csms id-tokens {args.action}", kafka, work, sys.stderr)


command = Command(
    help="add, list or remove id tokens in the authorization list (csms.id-tokens.v1)",
    configure=_configure,
    run=_run,
)
