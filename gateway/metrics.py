"""Every metric the gateway exports, in one place (Prometheus naming; never a station id as label).

Label values come from closed sets: OCPP versions, actions of the OCPP tables,
outcomes and reasons named below. Counters and histograms are the event loop's
lock-free kind (:mod:`contracts.service.loop_metrics`): the gateway updates
several per OCPP call. Children the hot path touches are resolved once.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Gauge

from contracts.service.loop_metrics import LoopCounter, LoopHistogram

__all__ = ["GatewayMetrics"]

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class GatewayMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.connections = Gauge(
            "csms_gateway_connections",
            "Open station connections, by OCPP version",
            ["ocpp_version"],
            registry=registry,
        )
        self.connections_opened = LoopCounter(
            "csms_gateway_connections_opened_total",
            "Station connections accepted, by OCPP version",
            ["ocpp_version"],
            registry=registry,
        )
        self.connections_closed = LoopCounter(
            "csms_gateway_connections_closed_total",
            "Station connections closed, by reason",
            ["reason"],
            registry=registry,
        )
        self.handshakes_rejected = LoopCounter(
            "csms_gateway_handshakes_rejected_total",
            "Websocket handshakes refused, by reason",
            ["reason"],
            registry=registry,
        )
        self.station_calls = LoopCounter(
            "csms_gateway_station_calls_total",
            "Calls from stations, by version, action and outcome",
            ["ocpp_version", "action", "outcome"],
            registry=registry,
        )
        self.station_call_duration = LoopHistogram(
            "csms_gateway_station_call_duration_seconds",
            "From a station's call to the gateway's answer, by handling (answer or delegate)",
            ["handling"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.protocol_issues = LoopCounter(
            "csms_gateway_protocol_issues_total",
            "OCPP-J protocol issues seen on station connections, by kind",
            ["kind"],
            registry=registry,
        )
        self.commands = LoopCounter(
            "csms_gateway_commands_total",
            "Commands ended by this gateway, by action and status",
            ["action", "status"],
            registry=registry,
        )
        self.command_duration = LoopHistogram(
            "csms_gateway_command_duration_seconds",
            "From a command's arrival at the gateway to its result",
            buckets=(*_LATENCY_BUCKETS, 30.0, 60.0),
            registry=registry,
        )
        self.commands_queued = Gauge(
            "csms_gateway_commands_queued",
            "Commands waiting in station queues on this gateway",
            registry=registry,
        )
        self.replies = LoopCounter(
            "csms_gateway_worker_replies_total",
            "Worker replies to delegated calls, by outcome (relayed, late, fallback)",
            ["outcome"],
            registry=registry,
        )
        self.kafka_batch_ack = LoopHistogram(
            "csms_gateway_kafka_ack_duration_seconds",
            "From a record batch's first record to Kafka's acknowledgement",
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.kafka_records = LoopCounter(
            "csms_gateway_kafka_records_total",
            "Records published to Kafka, by outcome (acked, failed)",
            ["outcome"],
            registry=registry,
        )
        self.kafka_pending = Gauge(
            "csms_gateway_kafka_pending_records",
            "Records handed to Kafka and not yet acknowledged",
            registry=registry,
        )
        self.backpressure = Gauge(
            "csms_gateway_backpressure",
            "1 while the gateway has stopped reading sockets because Kafka is behind",
            registry=registry,
        )
        self.failed_logins = LoopCounter(
            "csms_gateway_failed_logins_total",
            "Failed station logins, by reason",
            ["reason"],
            registry=registry,
        )
        self.command_records_skipped = LoopCounter(
            "csms_gateway_command_records_skipped_total",
            "Records on ocpp.commands.v1 for stations this gateway does not hold",
            registry=registry,
        )
        self.command_records_read = LoopCounter(
            "csms_gateway_command_records_read_total",
            "Records read from ocpp.commands.v1 (all partitions; read amplification)",
            registry=registry,
        )
        # children the hot path touches on every call, resolved once
        self.kafka_acked = self.kafka_records.labels("acked")
        self.kafka_failed = self.kafka_records.labels("failed")
        self.answer_duration = self.station_call_duration.labels("answer")
        self.delegate_duration = self.station_call_duration.labels("delegate")
