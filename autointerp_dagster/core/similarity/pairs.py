"""Similarity of two coders of one model, and the controls that make it readable.

Latents are matched one-to-one by decoder cosine (`matching`); each matched pair then also gets the
correlation of its activations over the shared cached tokens and the similarity of its explanations. The
controls: a coder against a copy of itself (the ceiling, 1) and against a random Gaussian decoder of its
shape (chance) for the decoder cosine, and the same latents paired at random (not matched) for activations
and explanations.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
from scipy.sparse import csc_matrix

from ..cache import ActivationCache
from ..reporting.metrics import mean_ci
from ..store.tables import LATENT_MATCHES
from .activations import matched_correlations
from .explanations import explanation_cosines
from .matching import DENSE_LIMIT, LatentMatching, match_latents, random_decoder

SHARE_THRESHOLD = 0.7  # "highly similar" pairs: the share of matched latents above it is reported
METHODS = ("decoder_cosine", "activation_correlation", "explanation_similarity")


@dataclass
class CoderData:
    """What one coder brings to a comparison: unit decoder rows, and optionally its cache (as a sparse matrix,
    with the number of cached tokens) and its explanations."""

    key: str
    decoder: np.ndarray
    activations: csc_matrix | None = None
    n_tokens: int = 0
    explanations: dict[int, str] = field(default_factory=dict)
    cache: ActivationCache | None = None


@dataclass
class SimilarityResult:
    """Values per pair of latents, by (method, control); `matching` is None for single-coder controls."""

    sae_a: str
    sae_b: str
    n_latents_a: int
    n_latents_b: int
    matching: LatentMatching | None
    values: dict[tuple[str, str], np.ndarray]
    matching_method: str = ""
    seconds: float = 0.0


def compare_coders(a: CoderData, b: CoderData, seed: int = 0) -> SimilarityResult:
    """The pair (ordered so sae_a < sae_b): matching, the three similarities and the random-pairing controls."""
    if b.key < a.key:
        a, b = b, a
    matching = match_latents(a.decoder, b.decoder)
    values = {("decoder_cosine", "none"): matching.cosine}
    rng = np.random.default_rng(seed)
    if a.activations is not None and b.activations is not None:
        values[("activation_correlation", "none")] = matched_correlations(
            a.activations, b.activations, matching.latent_a, matching.latent_b, a.n_tokens)
        shuffled = rng.permutation(matching.latent_b)
        values[("activation_correlation", "random_pairs")] = matched_correlations(
            a.activations, b.activations, matching.latent_a, shuffled, a.n_tokens)
    values[("explanation_similarity", "none")] = explanation_cosines(
        a.explanations, b.explanations, matching.latent_a, matching.latent_b)
    explained_a, explained_b = sorted(a.explanations), sorted(b.explanations)
    n = min(len(explained_a), len(explained_b))
    if n:
        values[("explanation_similarity", "random_pairs")] = explanation_cosines(
            a.explanations, b.explanations, rng.permutation(explained_a)[:n], rng.permutation(explained_b)[:n])
    return SimilarityResult(a.key, b.key, len(a.decoder), len(b.decoder), matching, values, matching.method,
                            matching.seconds)


def decoder_controls(coder: CoderData, seed: int = 0) -> SimilarityResult:
    """The coder matched with a copy of itself (about 1) and with a random decoder of its shape (chance).

    Controls stay cheap: above `DENSE_LIMIT` latents they use a seeded subset of that many latents (and a random
    decoder of the subset's shape), so chance is that of the subset's size, slightly below the full coder's.
    """
    decoder = coder.decoder
    if len(decoder) > DENSE_LIMIT:
        decoder = decoder[np.sort(np.random.default_rng(seed).choice(len(decoder), DENSE_LIMIT, replace=False))]
    self_copy = match_latents(decoder, decoder.copy())
    random = match_latents(decoder, random_decoder(*decoder.shape, seed=seed))
    return SimilarityResult(coder.key, coder.key, len(decoder), len(decoder), None,
                            {("decoder_cosine", "self"): self_copy.cosine,
                             ("decoder_cosine", "random"): random.cosine},
                            self_copy.method, self_copy.seconds + random.seconds)


def match_rows(result: SimilarityResult) -> pa.Table:
    """`latent_matches` rows: one per matched pair with every similarity (null where not measured)."""
    m = result.matching
    n = len(m.latent_a)

    def column(method: str) -> np.ndarray:
        found = result.values.get((method, "none"))
        return np.full(n, np.nan) if found is None else found

    return pa.table({
        "sae_a": [result.sae_a] * n, "latent_a": m.latent_a.astype(np.int32),
        "sae_b": [result.sae_b] * n, "latent_b": m.latent_b.astype(np.int32),
        "method": [m.method] * n,
        **{method: pa.array(column(method).astype(np.float32), from_pandas=True) for method in METHODS},
    }, schema=LATENT_MATCHES)


def summary_rows(result: SimilarityResult, threshold: float = SHARE_THRESHOLD) -> list[dict]:
    """`sae_similarity` rows: per (method, control), the mean over pairs with a value (95% bootstrap-t interval
    over pairs) and the share of pairs above `threshold`."""
    rows = []
    for (method, control), values in result.values.items():
        present = values[~np.isnan(values)]
        mean, low, high = mean_ci(present)
        rows.append({
            "sae_a": result.sae_a, "sae_b": result.sae_b, "method": method, "control": control,
            "matching": result.matching_method, "n_latents_a": result.n_latents_a,
            "n_latents_b": result.n_latents_b, "n_pairs": int(present.size), "mean": mean, "ci_low": low,
            "ci_high": high, "threshold": threshold,
            "share_above": float((present > threshold).mean()) if present.size else None,
            "seconds": result.seconds,
        })
    return rows
