"""Correlation of matched latents' activations over the tokens two caches share, from the sparse records.

Each cache becomes a sparse [token, latent] matrix (records only; the zeros stay implicit), and the
Pearson correlation of latents a and b over all N cached tokens follows from sums the sparse matrices
give directly: sum x, sum x^2 and sum xy (the element-wise product of two sparse columns).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from scipy.sparse import csc_matrix

from ..cache import ActivationCache


class CacheMismatchError(ValueError):
    """Two caches that were not built over the same tokens, so their activations cannot be paired."""


def sparse_activations(records: pa.Table, n_latents: int, ctx_len: int, n_rows: int) -> csc_matrix:
    """[n_rows * ctx_len, n_latents] sparse matrix of (row, pos, latent, activation) records."""
    token = records.column("row").to_numpy().astype(np.int64) * ctx_len + records.column("pos").to_numpy()
    values = records.column("activation").to_numpy().astype(np.float64)
    latent = records.column("latent").to_numpy().astype(np.int64)
    return csc_matrix((values, (token, latent)), shape=(n_rows * ctx_len, n_latents))


def matched_correlations(acts_a: csc_matrix, acts_b: csc_matrix, latent_a: np.ndarray, latent_b: np.ndarray,
                         n_tokens: int) -> np.ndarray:
    """Pearson correlation of each pair (acts_a[:, latent_a[i]], acts_b[:, latent_b[i]]) over `n_tokens`
    tokens (the cached ones; positions never cached are absent from both and excluded by `n_tokens`).
    NaN where a latent never varies (dead)."""
    if acts_a.shape[0] != acts_b.shape[0]:
        raise CacheMismatchError(f"token spaces differ: {acts_a.shape[0]} vs {acts_b.shape[0]}")
    a, b = acts_a[:, latent_a], acts_b[:, latent_b]
    sum_a, sum_b = np.asarray(a.sum(axis=0)).ravel(), np.asarray(b.sum(axis=0)).ravel()
    sq_a, sq_b = np.asarray(a.multiply(a).sum(axis=0)).ravel(), np.asarray(b.multiply(b).sum(axis=0)).ravel()
    cross = np.asarray(a.multiply(b).sum(axis=0)).ravel()
    covariance = n_tokens * cross - sum_a * sum_b
    spread = (n_tokens * sq_a - sum_a**2) * (n_tokens * sq_b - sum_b**2)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(spread > 0, covariance / np.sqrt(np.where(spread > 0, spread, 1.0)), np.nan)


def cache_activations_matrix(cache: ActivationCache) -> csc_matrix:
    """The whole cache as a sparse matrix over its corpus's (row, pos) grid."""
    manifest = cache.manifest
    records = cache.records(0, cache.n_latents)
    return sparse_activations(records, cache.n_latents, manifest["ctx_len"], cache.summary.n_rows)


def check_same_tokens(cache_a: ActivationCache, cache_b: ActivationCache) -> None:
    if cache_a.summary.corpus_id != cache_b.summary.corpus_id:
        raise CacheMismatchError(f"{cache_a.summary.key} and {cache_b.summary.key} were cached over different "
                                 f"corpora ({cache_a.summary.corpus_id} vs {cache_b.summary.corpus_id})")
