"""How long to wait before the next attempt at a delivery: exponential, with a cap."""

from __future__ import annotations

__all__ = ["FIRST_DELAY", "delay"]

FIRST_DELAY = 1.0


def delay(failures: int, *, cap: float, first: float = FIRST_DELAY) -> float:
    """Seconds to wait after ``failures`` failed attempts (1, 2, ...): first, doubling, at most cap.

    ``ValueError`` for ``failures`` below 1.
    """
    if failures < 1:
        raise ValueError(f"failures must be at least 1, not {failures}")
    # 2**failures overflows a float near 1024; the cap is reached long before
    return min(cap, first * 2.0 ** min(failures - 1, 64))
