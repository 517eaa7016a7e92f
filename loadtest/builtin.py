"""The built-in scenarios, in the same TOML a user writes (``csms loadtest scenarios --show NAME``).

Kept as text rather than as data so that printing one gives a user a file to
start from. ``tests/loadtest/test_scenario.py`` parses every one of them.
"""

from __future__ import annotations

from typing import Final

__all__ = ["BUILTIN"]

STEADY = """\
name = "steady"
description = "Booted stations heartbeating, with a steady open-loop mix of routine calls"
duration = "60s"

[stations]
count = 100
ocpp = { "1.6" = 3, "2.0.1" = 1 }
connect_rate = 500

[heartbeat]
interval = "60s"

[calls]
interval = "10s"          # each station makes a routine call every 10 s on average
arrival = "poisson"
mix = { MeterValues = 4, Heartbeat = 4, StatusNotification = 2 }
sampled_values = 4
"""

BOOT_STORM = """\
name = "boot-storm"
description = "Every station connects and boots at the same moment (a fleet power-up)"
duration = "30s"

[stations]
count = 1000
ocpp = { "1.6" = 3, "2.0.1" = 1 }
connect_rate = 0          # all at once
boot = true

[heartbeat]
interval = "300s"
"""

RECONNECT_STORM = """\
name = "reconnect-storm"
description = "A connected fleet loses its connections at once and comes back (a network outage)"
duration = "60s"

[stations]
count = 1000
ocpp = { "1.6" = 3, "2.0.1" = 1 }
connect_rate = 1000

[heartbeat]
interval = "60s"

[reconnect]
at = ["20s"]
spread = "0s"             # every station reconnects at the same moment
"""

TRANSACTIONS = """\
name = "transactions"
description = "Charging sessions: authorize, start, periodic meter values, stop"
duration = "3m"

[stations]
count = 100
ocpp = { "1.6" = 3, "2.0.1" = 1 }
connect_rate = 200

[heartbeat]
interval = "60s"

[transactions]
every = "2m"              # a station starts a session on average every 2 minutes
duration = "1m"
meter_interval = "15s"
authorize = true
sampled_values = 4
"""

ALIGNED_BURST = """\
name = "aligned-burst"
description = "Clock-aligned meter readings: every station reports at the same boundary"
duration = "95s"

[stations]
count = 1000
ocpp = { "1.6" = 3, "2.0.1" = 1 }
connect_rate = 500

[heartbeat]
interval = "300s"

[aligned]
interval = "30s"          # real fleets align to 900 s (quarter hours); 30 s shows the burst sooner
spread = "1s"
sampled_values = 4
"""

BUILTIN: Final[dict[str, str]] = {
    "steady": STEADY,
    "boot-storm": BOOT_STORM,
    "reconnect-storm": RECONNECT_STORM,
    "transactions": TRANSACTIONS,
    "aligned-burst": ALIGNED_BURST,
}
