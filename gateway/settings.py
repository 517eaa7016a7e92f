"""The gateway's settings: one frozen object, read once from flags and ``CSMS_*`` variables."""

from __future__ import annotations

import dataclasses
import os
import socket
from typing import Literal

from contracts.ocpp import VERSIONS
from contracts.service.runtime import ServiceSettings
from contracts.settings import KafkaSettings, SettingsError, setting
from gateway.auth import AuthSettings
from gateway.tls import TlsSettings

__all__ = ["GatewaySettings", "default_instance_id"]


def default_instance_id() -> str:
    """The host (the pod name on Kubernetes) and the process id.

    Presence needs an id per gateway process: several processes may share a host
    (``CSMS_REUSE_PORT``) or a pod.
    """
    return f"{os.environ.get('HOSTNAME') or socket.gethostname()}-{os.getpid()}"


@dataclasses.dataclass(frozen=True, kw_only=True)
class GatewaySettings:
    kafka: KafkaSettings = dataclasses.field(default_factory=KafkaSettings)
    service: ServiceSettings = dataclasses.field(default_factory=ServiceSettings)
    auth: AuthSettings = dataclasses.field(default_factory=AuthSettings)
    tls: TlsSettings = dataclasses.field(default_factory=TlsSettings)

    # ---------------------------------------------------------------- listeners
    host: str = setting("0.0.0.0", "Address the OCPP listeners bind to", flag="--host")
    port: int = setting(
        9000, "OCPP websocket port (ws://, security profile 1)", env="CSMS_PORT", flag="--port"
    )
    tls_port: int | None = setting(
        None,
        "OCPP websocket port over TLS (wss://, profiles 2 and 3); unset: no TLS listener",
        flag="--tls-port",
    )
    ocpp_versions: tuple[str, ...] = setting(
        ("1.6", "2.0.1", "2.1"), "OCPP versions offered, comma-separated"
    )
    reuse_port: bool = setting(
        False, "Bind with SO_REUSEPORT so several gateway processes share the port"
    )

    # ---------------------------------------------------------------- OCPP answers
    heartbeat_interval: int = setting(
        300, "Heartbeat interval (s) given to stations in BootNotification answers"
    )
    boot_policy: Literal["accept", "workers"] = setting(
        "accept",
        "accept: the gateway accepts every BootNotification; workers: a worker decides",
    )
    require_boot: bool = setting(
        False,
        "Strict boot: a connection counts as booted only once a BootNotification on it is "
        "answered Accepted; calls before get SecurityError, commands wait (no grace)",
    )
    boot_grace: float = setting(
        3.0,
        "Seconds a connection that has sent nothing yet gets to send its BootNotification "
        "before queued commands go out (the connection then counts as booted)",
    )
    boot_retry_interval: int = setting(
        60, "Interval (s) in the Pending answer to BootNotifications while overloaded"
    )

    # ---------------------------------------------------------------- timeouts
    kafka_ack_timeout: float = setting(
        10.0,
        "Seconds to wait for Kafka to acknowledge a station's call before answering InternalError",
    )
    reply_timeout: float = setting(
        8.0,
        "Seconds to wait for a worker's reply to a delegated call before the fallback answer",
    )
    command_timeout: float = setting(
        30.0, "Default seconds a station has to answer a command (a command may say otherwise)"
    )
    handshake_timeout: float = setting(
        10.0, "Seconds a client has to complete the websocket handshake"
    )
    ping_interval: float = setting(
        60.0, "Seconds of silence after which the gateway pings a station (0: never)"
    )
    ping_timeout: float = setting(
        30.0, "Seconds to wait for the pong before the connection is dropped as half-open"
    )
    offline_grace: float = setting(
        2.0,
        "Seconds a command waits for its station to appear on some gateway before station_offline",
    )
    gone_after: float = setting(
        30.0,
        "Seconds a gateway instance may be missing from the gateways' consumer group (after "
        "Kafka's session timeout) before its stations count as offline and their presence "
        "records are removed: a crashed gateway (0: never)",
    )

    # ---------------------------------------------------------------- limits
    max_frame_size: int = setting(
        262144, "Largest websocket message accepted (bytes); larger closes with 1009"
    )
    max_connections: int = setting(
        19000, "Connections this process accepts; more get 503 (stay under the open-file limit)"
    )
    max_handshakes_in_progress: int = setting(
        2000, "Concurrent unfinished handshakes; more get 503 (reconnect-storm admission)"
    )
    max_pending_events: int = setting(
        20000,
        "Unacknowledged Kafka records above which the gateway stops reading sockets",
    )
    resume_pending_events: int = setting(
        10000, "Unacknowledged Kafka records below which reading resumes"
    )
    max_bad_frames: int = setting(10, "Bad frames from a station before its socket is closed")
    max_station_calls_in_flight: int = setting(
        4, "Unanswered calls a station may have open (OCPP-J says 1; tolerate a few)"
    )
    max_queued_commands: int = setting(64, "Commands queued per station; more end invalid")
    replay_cache_size: int = setting(
        4, "Answers kept per station to replay to a retried call with the same message id"
    )

    # ---------------------------------------------------------------- shutdown
    drain_timeout: float = setting(
        25.0, "Seconds SIGTERM may take: answer in-flight calls, flush Kafka, close sockets"
    )
    drain_close_period: float = setting(
        10.0, "Seconds over which sockets are closed (1001) on SIGTERM, spread evenly"
    )

    # ---------------------------------------------------------------- Kafka
    linger: float = setting(
        0.005,
        "Seconds records wait to be batched before being sent to Kafka (each produce request "
        "costs the gateway about as much CPU as a few calls; 5 ms, Kafka's own producer default, "
        "cost a quarter less CPU per call than 2 ms at 1,000 calls/s, docs/benchmarks.md)",
    )

    def resolved_instance_id(self) -> str:
        return self.service.instance or default_instance_id()

    def __post_init__(self) -> None:
        unknown = sorted(set(self.ocpp_versions) - set(VERSIONS))
        if unknown or not self.ocpp_versions:
            raise SettingsError(
                f"CSMS_OCPP_VERSIONS={','.join(self.ocpp_versions)!r}: expected some of "
                + ", ".join(VERSIONS)
            )
