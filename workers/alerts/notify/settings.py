"""The notifier's settings (``csms alerts notify``)."""

from __future__ import annotations

import dataclasses
import re

from contracts.service.runtime import ServiceSettings
from contracts.settings import KafkaSettings, SettingsError, setting

__all__ = ["NotifySettings"]

_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,39}")


@dataclasses.dataclass(frozen=True, kw_only=True)
class NotifySettings:
    kafka: KafkaSettings = dataclasses.field(default_factory=KafkaSettings)
    service: ServiceSettings = dataclasses.field(default_factory=ServiceSettings)

    alertmanager_url: str = setting(
        "",
        "Prometheus Alertmanager's base URL, e.g. http://alertmanager:9093 (empty: not notified)",
        env="CSMS_ALERTS_ALERTMANAGER_URL",
        flag="--alertmanager-url",
    )
    webhooks: tuple[str, ...] = setting(
        (),
        "Webhooks to POST every alert record to, comma-separated NAME=URL (NAME: lower-case "
        "letters, digits and -; each has its consumer group csms-alerts-notify-webhook-NAME)",
        env="CSMS_ALERTS_WEBHOOKS",
    )
    webhook_secrets: tuple[str, ...] = setting(
        (),
        "Secrets webhook deliveries are signed with (HMAC-SHA256, one v1= signature each; list "
        "the new and the old while rotating); empty: unsigned",
        env="CSMS_ALERTS_WEBHOOK_SECRETS",
    )
    resend_interval: float = setting(
        60.0,
        "Seconds between two posts of every raised, not silenced alert to Alertmanager, which "
        "resolves an alert not posted again within 4 of them",
        env="CSMS_ALERTS_RESEND_INTERVAL",
    )
    retry_max_delay: float = setting(
        60.0,
        "Longest wait between two attempts at a delivery (the waits start at 1 s and double)",
        env="CSMS_ALERTS_RETRY_MAX_DELAY",
    )
    retry_limit: float = setting(
        3600.0,
        "Seconds a receiver keeps trying one delivery before giving it up (logged, counted "
        "failed) and going on with the next; an answer 400, 401, 403, 404, 405, 410, 413 or 422 "
        "gives up at once",
        env="CSMS_ALERTS_RETRY_LIMIT",
    )
    request_timeout: float = setting(
        10.0, "Seconds one delivery attempt may take", env="CSMS_ALERTS_REQUEST_TIMEOUT"
    )
    generator_url: str = setting(
        "",
        "generatorURL of the alerts posted to Alertmanager; may name {alert_id} and {station_id} "
        "(empty: none)",
        env="CSMS_ALERTS_GENERATOR_URL",
    )

    def webhook_targets(self) -> dict[str, str]:
        """The webhooks by name; :class:`SettingsError` for an item that is not NAME=URL."""
        targets: dict[str, str] = {}
        for item in self.webhooks:
            name, _, url = item.partition("=")
            if not _NAME.fullmatch(name) or not url.startswith(("http://", "https://")):
                raise SettingsError(
                    f"CSMS_ALERTS_WEBHOOKS item {item!r} is not NAME=URL (NAME: lower-case "
                    "letters, digits and -, URL: http:// or https://)"
                )
            if name in targets:
                raise SettingsError(f"CSMS_ALERTS_WEBHOOKS names {name!r} twice")
            targets[name] = url
        return targets
