"""The settings of ``csms loadtest run``: one frozen object, from flags and ``CSMS_LOADTEST_*``."""

from __future__ import annotations

import dataclasses

from contracts.settings import setting

__all__ = ["LoadtestSettings"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class LoadtestSettings:
    scenario: str = setting(
        "steady",
        "Built-in scenario name or path of a TOML scenario file",
        env="CSMS_LOADTEST_SCENARIO",
        flag="--scenario",
    )
    stations: int | None = setting(
        None,
        "Stations in the whole run, all parts together (unset: the scenario's count)",
        env="CSMS_LOADTEST_STATIONS",
        flag="--stations",
    )
    duration: str = setting(
        "",
        "How long to run, e.g. 90s or 10m (empty: the scenario's duration)",
        env="CSMS_LOADTEST_DURATION",
        flag="--duration",
    )
    rate: float | None = setting(
        None,
        "Routine calls per second for the whole run, overriding the scenario's [calls] rate",
        env="CSMS_LOADTEST_RATE",
        flag="--rate",
    )
    station_id: str = setting(
        "LT-{n:06d}",
        "Station id template; {n} is the station's number, 0 .. stations-1",
        env="CSMS_LOADTEST_STATION_ID",
        flag="--station-id",
    )
    password: str = setting(
        "",
        "Basic-auth password template ({station}: the id, {n}: the number); empty: no auth",
        env="CSMS_LOADTEST_PASSWORD",
        flag="--password",
    )
    password_file: str = setting(
        "",
        "File of 'station-id password' lines (or 'id,password'); overrides --password per station",
        env="CSMS_LOADTEST_PASSWORD_FILE",
        flag="--password-file",
    )
    processes: int = setting(
        0,
        "Load-generator processes on this machine (0: as many as --stations-per-process needs)",
        env="CSMS_LOADTEST_PROCESSES",
        flag="--processes",
    )
    stations_per_process: int = setting(
        15000,
        "Most stations one process simulates (one socket each; the open-file limit is 20,000)",
        env="CSMS_LOADTEST_STATIONS_PER_PROCESS",
        flag="--stations-per-process",
    )
    part: int | None = setting(
        None,
        "This part's index, 0 .. parts-1, in a run split over machines or a Kubernetes Job",
        env="JOB_COMPLETION_INDEX",
        flag="--part",
    )
    parts: int = setting(
        1,
        "Parts the run is split into (each simulates its share of the stations)",
        env="CSMS_LOADTEST_PARTS",
        flag="--parts",
    )
    start_at: float | None = setting(
        None,
        "Unix time at which to start, so that parts start together (unset: in 1 s)",
        env="CSMS_LOADTEST_START_AT",
        flag="--start-at",
    )
    connect_timeout: float = setting(
        10.0,
        "Seconds from the start of a connection attempt to the handshake's answer before it "
        "counts as failed",
        env="CSMS_LOADTEST_CONNECT_TIMEOUT",
        flag="--connect-timeout",
    )
    reconnect_backoff: float = setting(
        1.0,
        "Seconds before a station retries a failed connection; doubles per failure (jittered)",
        env="CSMS_LOADTEST_RECONNECT_BACKOFF",
        flag="--reconnect-backoff",
    )
    reconnect_backoff_max: float = setting(
        30.0,
        "Longest wait between two connection attempts (a Retry-After header overrides both)",
        env="CSMS_LOADTEST_RECONNECT_BACKOFF_MAX",
        flag="--reconnect-backoff-max",
    )
    local_addresses: tuple[str, ...] = setting(
        (),
        "Source addresses to spread connections over, comma-separated (e.g. 127.0.0.2,127.0.0.3:"
        " one address has about 28,000 ports to one target)",
        env="CSMS_LOADTEST_LOCAL_ADDRESSES",
        flag="--local-addresses",
    )
    ca_file: str = setting(
        "",
        "CA bundle to verify a wss:// target with (empty: the system's)",
        env="CSMS_LOADTEST_CA_FILE",
        flag="--ca-file",
    )
    timeline_interval: float = setting(
        1.0,
        "Seconds per point of the report's timeline",
        env="CSMS_LOADTEST_TIMELINE_INTERVAL",
        flag="--timeline-interval",
    )
    report: str = setting(
        "loadtest-report.json",
        "Where to write the JSON report ({part} is replaced by the part's index)",
        env="CSMS_LOADTEST_REPORT",
        flag="--report",
    )
    html: str = setting(
        "loadtest-report.html",
        "Where to write the HTML report with charts ({part} as above; empty: none)",
        env="CSMS_LOADTEST_HTML",
        flag="--html",
    )
    progress: bool = setting(
        True,
        "Print a live progress line on stderr once a second",
        env="CSMS_LOADTEST_PROGRESS",
        flag="--progress",
    )
    seed: int = setting(
        0,
        "Seed of the random choices (arrivals, transactions, jitter), for repeatable runs",
        env="CSMS_LOADTEST_SEED",
        flag="--seed",
    )
