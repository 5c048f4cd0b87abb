"""The unit every explainer and scorer works on: one window of text with one latent's activations."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

T = TypeVar("T")

ACTIVATING = "activating"
RANDOM_NEGATIVE = "random"
HARD_NEGATIVE = "hard_negative"


@dataclass(frozen=True)
class Example:
    """A window of `len(tokens)` tokens cut from one corpus row.

    `activations` are the latent's raw values at each token (0 where silent);
    `normalized` are the same scaled to integers 0..10 by the latent's maximum over
    the whole cache, so prompts show comparable strengths across examples.
    """

    tokens: tuple[str, ...]
    activations: tuple[float, ...]
    normalized: tuple[int, ...]
    kind: str
    row: int
    start: int
    quantile: int | None = None

    @property
    def is_activating(self) -> bool:
        return self.kind == ACTIVATING

    @property
    def max_activation(self) -> float:
        return max(self.activations, default=0.0)

    @property
    def text(self) -> str:
        return "".join(self.tokens)


def evenly_spaced(items: Sequence[T], n: int | None, key: Callable[[T], float] | None = None) -> list[T]:
    """At most `n` items spread evenly over `items` ordered by `key` (e.g. activation quantile), so a
    smaller set still spans weak to strong examples; all of them when `n` is None or not smaller."""
    ordered = sorted(items, key=key) if key else list(items)
    if n is None or len(ordered) <= n:
        return ordered
    return [ordered[int(i)] for i in np.linspace(0, len(ordered) - 1, n).round()]
