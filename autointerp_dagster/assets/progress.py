"""Progress of long steps in the run's log."""

from __future__ import annotations

import time
from collections.abc import Callable

from dagster import AssetExecutionContext


def throttled_log(context: AssetExecutionContext, what: str, every_s: float = 15.0) -> Callable[..., None]:
    """A progress callback `(done, total, *rest)` that logs at most every `every_s` and at the end, so long
    work shows it is moving without flooding the run's log."""
    last = [time.monotonic()]

    def report(done: int, total: int, *rest) -> None:
        if time.monotonic() - last[0] > every_s or done == total:
            last[0] = time.monotonic()
            extra = f", {rest[0]:,.0f} tokens/s" if rest else ""
            context.log.info(f"{what}: {done}/{total} ({done / max(total, 1):.0%}){extra}")

    return report
