"""Notifications of csms.alerts.v1: to Prometheus Alertmanager and to signed webhooks.

Pure parts, one idea each: :mod:`.alertmanager` (an alert as Alertmanager's v2
API wants it), :mod:`.webhook` (the signed body of a webhook), :mod:`.backoff`
(how long to wait before the next attempt), :mod:`.recent` (deliveries already
made), :mod:`.firing` (the alerts raised and not cleared). The I/O is in
:mod:`.http` (one POST) and :mod:`.service` (the consumers, the retries, the
re-posts); ``csms alerts notify`` runs it.
"""
