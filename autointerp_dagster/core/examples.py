"""The unit every explainer and scorer works on: one window of text with one latent's activations."""

from __future__ import annotations

from dataclasses import dataclass

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
