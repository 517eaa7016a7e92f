"""A real ``csms gateway`` process on free ports, pointed at the session's broker."""

from __future__ import annotations

import uuid
from collections.abc import Mapping

from tests.support.kafka import KafkaUnderTest
from tests.support.processes import CsmsProcess


class GatewayProcess(CsmsProcess):
    """``csms gateway`` on port 0; :attr:`port` and :attr:`status_port` once started."""

    def __init__(
        self,
        kafka: KafkaUnderTest,
        *args: str,
        env: Mapping[str, str] | None = None,
        allow_unknown: bool = True,
        instance: str | None = None,
    ) -> None:
        self.instance = instance or f"gw-{uuid.uuid4().hex[:6]}"
        environment = kafka.env() | {
            "CSMS_ALLOW_UNKNOWN_STATIONS": "true" if allow_unknown else "false",
            "CSMS_INSTANCE": self.instance,
            "CSMS_LOG_LEVEL": "INFO",
        }
        environment.update(env or {})
        super().__init__("gateway", "--port", "0", "--status-port", "0", *args, env=environment)
        self.port = 0
        self.tls_port: int | None = None

    def start(self) -> GatewayProcess:
        super().start()
        match = self.wait_for(
            r"OCPP on ws://\S+?:(\d+)/ocpp/<station id>; status on port (\d+)"
            r"(?:; wss on port (\d+))?",
            60,
        )
        self.port, self.status_port = int(match[1]), int(match[2])
        self.tls_port = int(match[3]) if match[3] else None
        return self

    def url(self, station_id: str, path: str = "/ocpp/") -> str:
        return f"ws://127.0.0.1:{self.port}{path}{station_id}"
