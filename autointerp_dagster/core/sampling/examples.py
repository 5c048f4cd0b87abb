"""The unit every explainer and scorer works on: one window of text with one latent's activations."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

T = TypeVar("T")

ACTIVATING = "activating"
RANDOM_NEGATIVE = "random"
HARD_NEGATIVE = "hard_negative"
NEIGHBOUR_NEGATIVE = "neighbour"


@dataclass(frozen=True)
class Example:
    """A window of `len(tokens)` tokens cut from one corpus row.

    `activations` are the latent's raw values at each token (0 where silent);
    `normalized` are the same scaled to integers 0..10 by the latent's maximum over
    the whole cache, rounded up (delphi's rule): 0 exactly where the latent is silent and
    at least 1 wherever it fires, so prompts show comparable strengths across examples
    and never show a marked token as 0.
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


def order_for_explainer(examples: Sequence[Example], order: str, latent: int) -> list[Example]:
    """`examples` arranged as the explainer is shown them (`ExplainerConfig.order`).

    strongest_first: by maximum activation, descending, as in the paper (delphi lists its
    quantile samples strongest quantile first). quantile_spread: the strongest of each quantile
    in turn, strongest quantile first, then the next of each, so any stretch of the prompt spans
    weak to strong. random: ordered by a hash of (latent, window), the same shuffle on every run.
    """
    strongest = sorted(examples, key=lambda e: -e.max_activation)
    if order == "strongest_first":
        return strongest
    if order == "quantile_spread":
        taken: dict[int | None, int] = {}
        keyed = []
        for e in strongest:
            taken[e.quantile] = taken.get(e.quantile, 0) + 1
            keyed.append(((taken[e.quantile], -(e.quantile or 0)), e))
        return [e for _, e in sorted(keyed, key=lambda k: k[0])]
    if order == "random":
        return sorted(examples, key=lambda e: hashlib.sha256(f"{latent}/{e.row}/{e.start}".encode()).digest())
    raise ValueError(f"unknown example order {order!r}")
