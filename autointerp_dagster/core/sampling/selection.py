"""Which latents of a range get examples: a seeded order over its live latents, the first that sample cleanly,
and a recorded reason for every latent that gets none (dead, too few activations, too few windows)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..config import SamplingConfig
from .build import LatentExamples, build_examples, stable_key_hash


@dataclass
class RangeSample:
    """`kept`: latents with examples; `status_rows`: one `latent_sampling` row for every latent of the range."""

    kept: list[LatentExamples] = field(default_factory=list)
    status_rows: list[dict] = field(default_factory=list)
    tried: int = 0


def sample_latent_range(cache, tokens, decode, sae: str, start: int, counts: np.ndarray, config: SamplingConfig,
                        wanted: int | None, pool=None, decoder=None) -> RangeSample:
    """Examples for up to `wanted` latents of the range starting at `start` (None: every live latent);
    `counts`: each latent's activations in the cache, in latent order."""
    enough = max(config.min_activating, 1)
    live = np.flatnonzero(counts >= enough) + start
    order = np.random.default_rng([config.seed, stable_key_hash(sae), start]).permutation(live).tolist()
    wanted = len(order) if wanted is None else wanted
    result, skipped = RangeSample(), []
    while order and len(result.kept) < wanted:
        size = max(2 * (wanted - len(result.kept)), 16)
        batch, order = order[:size], order[size:]
        for latent_examples in build_examples(cache, tokens, decode, batch, sae, config, pool, decoder):
            result.tried += 1
            if latent_examples.status != "ok":
                skipped.append(latent_examples)
            elif len(result.kept) < wanted:
                result.kept.append(latent_examples)
    result.status_rows = [
        {"sae": sae, "latent": le.latent, "status": le.status, "reason": le.reason,
         "n_activating_windows": le.n_activating_windows, "max_activation": le.max_activation}
        for le in result.kept + skipped
    ] + [
        {"sae": sae, "latent": int(latent), "status": "skipped",
         "reason": (f"{int(n)} activations in the cache, fewer than min_activating={config.min_activating}"
                    if n else "dead latent: never fires in the cache"),
         "n_activating_windows": 0, "max_activation": 0.0}
        for latent, n in zip(range(start, start + len(counts)), counts.tolist()) if n < enough
    ]
    return result
