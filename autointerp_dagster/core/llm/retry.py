"""How long to wait before retrying a failed LLM call.

Exponential back-off with full jitter (a uniform draw below the capped exponential)
spreads out many workers that hit the same rate limit at once; a server's Retry-After
takes precedence because it knows when capacity returns.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

MAX_RETRY_AFTER_S = 300.0  # beyond this a Retry-After is treated as "give up soon", not obeyed


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 5
    backoff_base_s: float = 1.0
    backoff_max_s: float = 30.0

    def delay(self, retry_index: int, retry_after_s: float | None = None) -> float:
        """Seconds to wait before retry number `retry_index` (0-based)."""
        if retry_after_s is not None:
            return min(max(retry_after_s, 0.0), MAX_RETRY_AFTER_S)
        ceiling = min(self.backoff_max_s, self.backoff_base_s * 2**retry_index)
        return random.uniform(0.0, ceiling)


def parse_retry_after(headers) -> float | None:
    """Seconds from `retry-after-ms` or `retry-after` (seconds or an HTTP date), if any."""
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            return float(millis) / 1000.0
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return parsedate_to_datetime(value).timestamp() - time.time()
    except (TypeError, ValueError):
        return None
