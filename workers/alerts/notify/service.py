"""``csms alerts notify``: deliver csms.alerts.v1 to Alertmanager and webhooks.

Each receiver is a consumer group of its own on csms.alerts.v1
(``csms-alerts-notify-alertmanager``, ``csms-alerts-notify-webhook-<name>``),
so a failing webhook holds back nobody else. A receiver takes its records in
partition order and, for each one:

1. skips it when its delivery id (``<alert_id>:<state>``, its ``ce_id``) was
   delivered lately (a duplicate the alerts worker wrote again after a crash)
   or an active silence matches it;
2. delivers it, trying again after 1 s, 2 s, 4 s ... (at most
   ``CSMS_ALERTS_RETRY_MAX_DELAY``) until it is delivered, or for
   ``CSMS_ALERTS_RETRY_LIMIT`` (then it is logged and counted ``failed``);
3. commits the offset after it, so a restart starts at the next record.

What can be sent twice: only the record in flight when the process is killed
(posted, not yet committed). Everything committed is never sent again, and a
duplicate record is recognised also across a restart: the delivery ids are
seeded at start from the records just before the committed offset. A new
group starts at the end of the topic (no flood of history); Alertmanager
still gets every raised alert at the first re-post.

A group-less follower reads csms.alerts.v1 from its beginning into the set of
raised, not cleared alerts, and csms.alert-silences.v1 into the silences;
every ``CSMS_ALERTS_RESEND_INTERVAL`` (and at start) the raised alerts no
silence matches are posted to Alertmanager again, each with a fresh lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Protocol

import msgspec
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from prometheus_client import CollectorRegistry

from contracts.bus.clients import consumer
from contracts.bus.follower import Follower
from contracts.envelopes import Alert, decode_alert
from contracts.service.runtime import ServiceRuntime, Stopping, start_retrying
from contracts.topics import ALERTS, SILENCES
from workers.alerts.notify import alertmanager, webhook
from workers.alerts.notify.backoff import delay
from workers.alerts.notify.firing import FiringAlerts
from workers.alerts.notify.http import DeliveryFailed, post
from workers.alerts.notify.metrics import NotifyMetrics
from workers.alerts.notify.recent import RecentIds
from workers.alerts.notify.settings import NotifySettings
from workers.alerts.silences import SilenceTable

__all__ = [
    "GROUP_PREFIX",
    "RECENT_CAPACITY",
    "AlertmanagerChannel",
    "Channel",
    "Notifier",
    "Receiver",
    "WebhookChannel",
    "serve",
]

log = logging.getLogger("workers.alerts.notify")

GROUP_PREFIX = "csms-alerts-notify-"
RECENT_CAPACITY = 1000
"""Delivery ids remembered per receiver, and records read back per partition at start."""
START_TIMEOUT = 30.0

Clock = Callable[[], float]


class Channel(Protocol):
    """Where a receiver sends: one POST for a list of alerts (one alert for a webhook)."""

    name: str

    async def send(self, alerts: list[Alert]) -> None: ...


class AlertmanagerChannel:
    name = "alertmanager"

    def __init__(self, settings: NotifySettings, clock: Clock) -> None:
        self._url = settings.alertmanager_url.rstrip("/") + "/api/v2/alerts"
        self._lease = timedelta(seconds=settings.resend_interval * alertmanager.LEASE_INTERVALS)
        self._generator_url = settings.generator_url
        self._timeout = settings.request_timeout
        self._clock = clock

    async def send(self, alerts: list[Alert]) -> None:
        now = datetime.fromtimestamp(self._clock(), UTC)
        body = alertmanager.body(alerts, now, lease=self._lease, generator_url=self._generator_url)
        await post(self._url, body, {"Content-Type": "application/json"}, timeout=self._timeout)


class WebhookChannel:
    def __init__(self, name: str, url: str, settings: NotifySettings, clock: Clock) -> None:
        self.name = f"webhook-{name}"
        self._url = url
        self._secrets = settings.webhook_secrets
        self._timeout = settings.request_timeout
        self._clock = clock

    async def send(self, alerts: list[Alert]) -> None:
        for alert in alerts:
            body, headers = webhook.request(alert, self._secrets, self._clock())
            await post(self._url, body, headers, timeout=self._timeout)


class Receiver:
    """One channel's consumer group on csms.alerts.v1: deliver, retry, commit, in order."""

    def __init__(
        self,
        channel: Channel,
        settings: NotifySettings,
        silences: SilenceTable,
        metrics: NotifyMetrics,
        clock: Clock,
    ) -> None:
        self.channel = channel
        self.group = GROUP_PREFIX + channel.name
        self._settings = settings
        self._silences = silences
        self._metrics = metrics
        self._clock = clock
        self._recent = RecentIds(RECENT_CAPACITY)
        self._consumer: AIOKafkaConsumer | None = None

    async def start(self) -> None:
        """Join the group, wait for partitions, seed the delivery ids, resolve the positions."""
        kafka = self._settings.kafka
        client = self._consumer = consumer(
            kafka,
            f"{self.group}-{self._settings.service.instance_name()}",
            ALERTS.name,
            group_id=self.group,
            auto_offset_reset="latest",
            # a delivery retried for up to retry_limit holds the next poll back that long: the
            # group must not count the member dead meanwhile (it would deliver it twice)
            max_poll_interval_ms=int((self._settings.retry_limit + 60) * 1000),
        )
        await client.start()
        async with asyncio.timeout(START_TIMEOUT):
            while not client.assignment():
                await asyncio.sleep(0.05)
        assigned = sorted(client.assignment(), key=lambda tp: tp.partition)
        committed = {tp: await client.committed(tp) for tp in assigned}
        await self._seed({tp: offset for tp, offset in committed.items() if offset})
        for tp in assigned:
            await client.position(tp)

    async def _seed(self, committed: Mapping[TopicPartition, int]) -> None:
        """Remember the delivery ids of the records just before each committed offset."""
        if not committed:
            return
        reader = consumer(self._settings.kafka, f"{self.group}-seed")
        await reader.start()
        try:
            reader.assign(list(committed))
            for tp, offset in committed.items():
                reader.seek(tp, max(0, offset - RECENT_CAPACITY))
            pending = dict(committed)
            async with asyncio.timeout(START_TIMEOUT):
                while pending:
                    batches = await reader.getmany(timeout_ms=500)
                    for tp, records in batches.items():
                        for record in records:
                            if record.offset < committed[tp]:
                                self._remember(record.value)
                    for tp in list(pending):
                        if await reader.position(tp) >= pending[tp]:
                            del pending[tp]
                            reader.pause(tp)
        finally:
            await reader.stop()

    def _remember(self, value: bytes | None) -> None:
        with contextlib.suppress(msgspec.DecodeError, TypeError):
            self._recent.add(webhook.delivery_id(decode_alert(value)))  # type: ignore[arg-type]

    async def run(self) -> None:
        client = self._consumer
        assert client is not None
        while True:
            batches = await client.getmany(timeout_ms=1000, max_records=100)
            for tp in sorted(batches, key=lambda tp: tp.partition):
                for record in batches[tp]:
                    await self._handle(record.value, record.partition, record.offset)
                    await client.commit({tp: record.offset + 1})

    async def _handle(self, value: bytes | None, partition: int, offset: int) -> None:
        name = self.channel.name
        try:
            alert = decode_alert(value)  # type: ignore[arg-type]
        except (msgspec.DecodeError, TypeError) as exc:
            log.warning(
                "notify.undecodable",
                extra={
                    "receiver": name,
                    "partition": partition,
                    "offset": offset,
                    "error": str(exc),
                },
            )
            return
        delivery = webhook.delivery_id(alert)
        if delivery in self._recent:
            self._metrics.count(name, "duplicate")
            return
        if self._silences.silencing(alert, datetime.fromtimestamp(self._clock(), UTC)):
            self._metrics.count(name, "silenced")
            return
        await self._deliver(alert)
        self._recent.add(delivery)

    async def _deliver(self, alert: Alert) -> None:
        """Deliver with retries and back-off; gives up after the retry limit (logged, counted)."""
        name = self.channel.name
        began = time.monotonic()
        failures = 0
        while True:
            attempt = time.monotonic()
            try:
                await self.channel.send([alert])
            except DeliveryFailed as exc:
                self._metrics.duration.labels(name).observe(time.monotonic() - attempt)
                failures += 1
                give_up = exc.permanent or time.monotonic() - began >= self._settings.retry_limit
                wait = 0.0 if give_up else delay(failures, cap=self._settings.retry_max_delay)
                self._metrics.count(name, "failed" if give_up else "retried")
                log.warning(
                    "notify.delivery_failed",
                    extra={
                        "receiver": name,
                        "alert_id": alert.alert_id,
                        "state": alert.state,
                        "attempt": failures,
                        "error": str(exc),
                        "given_up": give_up,
                        "retry_in": wait,
                    },
                )
                if give_up:
                    return
                await asyncio.sleep(wait)
                continue
            self._metrics.duration.labels(name).observe(time.monotonic() - attempt)
            self._metrics.count(name, "delivered")
            return

    async def close(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None


class Notifier:
    """The receivers, the follower of alerts and silences, and the re-posts to Alertmanager."""

    def __init__(
        self, settings: NotifySettings, registry: CollectorRegistry, *, clock: Clock = time.time
    ) -> None:
        self.settings = settings
        self.firing = FiringAlerts()
        self.silences = SilenceTable()
        self._clock = clock
        metrics = self._metrics = NotifyMetrics(registry)
        channels: list[Channel] = []
        self._alertmanager: AlertmanagerChannel | None = None
        if settings.alertmanager_url:
            self._alertmanager = AlertmanagerChannel(settings, clock)
            channels.append(self._alertmanager)
        for name, url in settings.webhook_targets().items():
            channels.append(WebhookChannel(name, url, settings, clock))
        self.receivers = [Receiver(c, settings, self.silences, metrics, clock) for c in channels]
        instance = settings.service.instance_name()
        self._follower = Follower(settings.kafka, client_id=f"csms-alerts-notify-{instance}")
        self._followed = [
            self._follower.follow(ALERTS.name, self.firing.apply),
            self._follower.follow(SILENCES.name, self.silences.apply),
        ]
        self._started = False

    def readiness(self) -> dict[str, bool]:
        return {"kafka": self._started}

    async def start(self) -> None:
        """Read alerts and silences to their end, then join every receiver's group."""
        await self._follower.start()
        for followed in self._followed:
            if not await followed.wait_caught_up(START_TIMEOUT):
                raise TimeoutError(
                    f"{followed.topic} was not read to its end in {START_TIMEOUT:g} s"
                )
        for receiver in self.receivers:
            await receiver.start()
        self._started = True

    async def run(self) -> None:
        """Deliver until cancelled; re-post the raised alerts to Alertmanager meanwhile."""
        async with asyncio.TaskGroup() as tasks:
            for receiver in self.receivers:
                tasks.create_task(receiver.run(), name=f"notify {receiver.channel.name}")
            if self._alertmanager is not None:
                tasks.create_task(self._repost(self._alertmanager), name="notify re-posts")

    async def _repost(self, channel: AlertmanagerChannel) -> None:
        while True:
            now = datetime.fromtimestamp(self._clock(), UTC)
            alerts = [a for a in self.firing if self.silences.silencing(a, now) is None]
            if alerts:
                try:
                    await channel.send(alerts)
                    self._metrics.reposts.labels("posted").inc()
                except DeliveryFailed as exc:
                    self._metrics.reposts.labels("failed").inc()
                    log.warning(
                        "notify.repost_failed",
                        extra={"receiver": channel.name, "alerts": len(alerts), "error": str(exc)},
                    )
            await asyncio.sleep(self.settings.resend_interval)

    async def close(self) -> None:
        for receiver in self.receivers:
            await receiver.close()
        await self._follower.stop()


async def serve(settings: NotifySettings, *, stopping: Stopping | None = None) -> int:
    """Run the notifier until SIGTERM/SIGINT (or ``stopping``); the process's exit status."""
    registry = CollectorRegistry()
    notifier = Notifier(settings, registry)
    async with ServiceRuntime(
        settings.service, registry=registry, readiness=notifier.readiness, stopping=stopping
    ) as runtime:
        if not await start_retrying(
            notifier.start,
            notifier.close,
            runtime.stopping,
            retry_on=(KafkaError, OSError, TimeoutError),
            logger=log,
            event="notify.kafka_unavailable",
        ):
            return 0
        names = ", ".join(r.channel.name for r in notifier.receivers) or "no receivers"
        if not notifier.receivers:
            log.warning("notify.no_receivers", extra={})
        print(
            f"csms alerts notify: {names} on {ALERTS.name}; status on port {runtime.status.port}",
            flush=True,
        )
        running = asyncio.create_task(notifier.run(), name="notifier")
        stop = asyncio.create_task(runtime.stopping.wait())
        await asyncio.wait({running, stop}, return_when=asyncio.FIRST_COMPLETED)
        status = 0
        if running.done() and running.exception() is not None:
            log.error("notify.failed", exc_info=running.exception())
            status = 1
        running.cancel()
        stop.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await running
        await notifier.close()
    return status
