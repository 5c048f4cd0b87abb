"""What an output-side explainer is shown: what the latent does to the model's predictions when it is steered.

The intervention scorer stores, per latent, the tokens whose next-token probability rises most when the latent's
decoder direction is added at the KL target, and clean and steered greedy continuations (table `steering`,
control 'none'). An explainer that sees these describes what the latent *promotes* rather than what activates
it (the paper's output-side explanations). `steering_evidence` reads them; `output_side_block` renders them as
a prompt block that an explainer prompt can include in place of (or beside) activating examples.
"""

from __future__ import annotations

from dataclasses import dataclass

from autointerp_dagster.core.store import ResultsStore

OUTPUT_SIDE_INSTRUCTION = (
    "We amplified one feature of a language model and recorded how its predictions changed. Below are the "
    "tokens whose probability rose most, and continuations written without and with the feature amplified. "
    "Describe in one short phrase what the feature makes the model say."
)


@dataclass(frozen=True)
class SteeringEvidence:
    latent: int
    kl: float
    promoted: list[tuple[str, float]]  # (token, mean probability gain), largest first
    continuations: list[tuple[str, str]]  # (clean, steered)


def steering_evidence(store: ResultsStore, sae: str, latents: list[int],
                      scorer_config: str) -> dict[int, SteeringEvidence]:
    """The steering of each latent itself (not its random-latent control) by one intervention configuration."""
    if not latents:
        return {}
    rows = store.query(
        "SELECT * FROM steering WHERE sae = ? AND control = 'none' AND scorer_config = ? AND list_contains(?, latent)",
        [sae, scorer_config, latents]).to_pylist()
    return {r["latent"]: SteeringEvidence(r["latent"], r["kl"], list(zip(r["promoted_tokens"], r["promoted_gains"])),
                                          list(zip(r["clean"], r["steered"]))) for r in rows}


def output_side_block(evidence: SteeringEvidence, max_continuations: int = 3) -> str:
    """The prompt block: promoted tokens with their probability gains, then a few continuation pairs."""
    tokens = ", ".join(f"{token!r} (+{gain:.3f})" for token, gain in evidence.promoted)
    lines = [f"Tokens whose probability rises most when the feature is amplified: {tokens}"]
    for i, (clean, steered) in enumerate(evidence.continuations[:max_continuations], 1):
        lines.append(f"Continuation {i} without the feature: {clean!r}\nContinuation {i} with the feature: {steered!r}")
    return "\n".join(lines)
