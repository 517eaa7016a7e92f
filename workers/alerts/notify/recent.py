"""The deliveries made lately, to deliver a duplicate record once: a bounded set of ids.

The alerts worker writes the same record again after a crash (the same
``alert_id`` and ``state``, the same ``ce_id``); a notifier remembers the last
``capacity`` delivery ids and skips a record whose id it holds. At start it is
seeded from the records just before the committed offset (what was delivered
last), so a duplicate written after a restart is skipped too.
"""

from __future__ import annotations

from collections import OrderedDict

__all__ = ["RecentIds"]


class RecentIds:
    """At most ``capacity`` ids; the oldest is forgotten first."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self._ids: OrderedDict[str, None] = OrderedDict()

    def __contains__(self, id_: str) -> bool:
        return id_ in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, id_: str) -> None:
        self._ids[id_] = None
        self._ids.move_to_end(id_)
        while len(self._ids) > self.capacity:
            self._ids.popitem(last=False)
