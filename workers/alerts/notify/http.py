"""One HTTP POST of a notification, off the event loop (urllib in a thread; no HTTP library).

Notifications are few (alerts, not events), so a thread per request is cheap,
and csms depends on no HTTP client. A 2xx answer is a delivery; anything else
raises :class:`DeliveryFailed`, which says whether trying again can help.
"""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
from collections.abc import Mapping

__all__ = ["DeliveryFailed", "post"]

# answers that will not change by sending the same request again
_PERMANENT = frozenset({400, 401, 403, 404, 405, 410, 413, 422})


class DeliveryFailed(Exception):
    """The POST did not deliver; ``permanent`` when sending it again cannot succeed."""

    def __init__(self, reason: str, *, permanent: bool = False) -> None:
        super().__init__(reason)
        self.permanent = permanent


def _post(url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> None:
    request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            answer.read()
    except urllib.error.HTTPError as exc:
        exc.close()
        raise DeliveryFailed(f"HTTP {exc.code}", permanent=exc.code in _PERMANENT) from None
    except (OSError, ValueError) as exc:  # refused, reset, timed out, a bad URL
        raise DeliveryFailed(f"{type(exc).__name__}: {exc}") from None


async def post(url: str, body: bytes, headers: Mapping[str, str], *, timeout: float) -> None:
    """POST ``body`` to ``url``; returns on a 2xx answer, else raises :class:`DeliveryFailed`."""
    await asyncio.to_thread(_post, url, body, headers, timeout)
