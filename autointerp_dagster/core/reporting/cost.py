"""What LLM tokens cost in money: the settings' price table (`llm.prices`, US dollars per 1M prompt and
completion tokens, by model name) applied to the tokens each model spent. In-process models (`local:`) and the
no-LLM baseline (`none:`) cost nothing to call; a server model without a price makes the cost unknown, never 0."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ..config import Price

FREE_BACKENDS = ("local", "none")
MILLION = 1_000_000


@dataclass
class Cost:
    dollars: float | None  # None: some model that spent tokens has no price
    unpriced: list[str] = field(default_factory=list)  # those models' labels
    paid: list[str] = field(default_factory=list)  # models called through a priced API

    def per(self, n: int) -> float | None:
        return None if self.dollars is None or n <= 0 else self.dollars / n


def llm_cost(tokens: Mapping[str, tuple[int, int]], prices: Mapping[str, Price]) -> Cost:
    """`tokens`: `backend:model` -> (prompt, completion) tokens spent."""
    dollars, unpriced, paid = 0.0, [], []
    for label, (prompt, completion) in sorted(tokens.items()):
        backend, _, model = label.partition(":")
        if backend in FREE_BACKENDS or not (prompt or completion):
            continue
        price = prices.get(model)
        if price is None:
            unpriced.append(label)
            continue
        dollars += (prompt * price.prompt + completion * price.completion) / MILLION
        paid.append(label)
    return Cost(None if unpriced else dollars, unpriced, paid)


def format_cost(cost: Cost, latents: int) -> str:
    """One line: dollars for the coder, a latent, and 1M latents at that rate."""
    if cost.dollars is None:
        return f"cost: unknown, no price for {', '.join(cost.unpriced)} (set llm.prices)"
    if not cost.paid:
        return "cost: no API fees (in-process models; their cost is machine time)"
    per_latent = cost.per(latents)
    if per_latent is None:
        return f"cost: ${cost.dollars:,.2f}"
    return (f"cost: ${cost.dollars:,.2f} for {latents} latent(s): ${per_latent:,.4f} a latent, "
            f"${per_latent * MILLION:,.0f} for 1M latents")
