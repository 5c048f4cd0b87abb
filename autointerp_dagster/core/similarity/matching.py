"""One-to-one matching of two coders' latents by the cosine of their decoder directions.

Small coders get the exact Hungarian assignment on the dense cosine matrix (`linear_sum_assignment`).
Its cost and memory grow as n^2 (memory) and up to n^3 (time), so beyond `DENSE_LIMIT` latents a side the
matching keeps only each latent's top-k candidates on both sides (computed chunk by chunk, memory bounded)
and solves the sparse assignment exactly over those edges (`min_weight_full_bipartite_matching`). With
different widths every latent of the smaller coder is matched.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import min_weight_full_bipartite_matching

DENSE_LIMIT = 8192  # latents on the larger side; above it the dense cosine matrix passes ~0.5 GB
TOP_K = 8
MAX_TOP_K = 128
CHUNK_ROWS = 1024


class MatchingError(ValueError):
    """Two coders that cannot be matched (different model widths, or no full matching among the candidates)."""


@dataclass(frozen=True)
class LatentMatching:
    """Matched latent pairs (`latent_a[i]` with `latent_b[i]`) and their decoder cosines."""

    latent_a: np.ndarray
    latent_b: np.ndarray
    cosine: np.ndarray
    method: str  # 'hungarian' (dense, exact) or 'sparse_topk' (exact over top-k candidates)
    seconds: float
    top_k: int | None = None


def match_latents(dec_a: np.ndarray, dec_b: np.ndarray, dense_limit: int = DENSE_LIMIT,
                  top_k: int = TOP_K) -> LatentMatching:
    """Maximum-total-cosine one-to-one matching of unit decoder rows `dec_a` [n_a, d] and `dec_b` [n_b, d]."""
    if dec_a.shape[1] != dec_b.shape[1]:
        raise MatchingError(f"decoder widths differ ({dec_a.shape[1]} vs {dec_b.shape[1]}): coders of different "
                            "models or sites cannot be matched")
    if max(len(dec_a), len(dec_b)) <= dense_limit:
        return hungarian_matching(dec_a, dec_b)
    return sparse_topk_matching(dec_a, dec_b, top_k)


def hungarian_matching(dec_a: np.ndarray, dec_b: np.ndarray) -> LatentMatching:
    started = time.perf_counter()
    cosine = torch.from_numpy(dec_a) @ torch.from_numpy(dec_b).T
    rows, cols = linear_sum_assignment(cosine.numpy(), maximize=True)
    return LatentMatching(rows, cols, cosine.numpy()[rows, cols], "hungarian", time.perf_counter() - started)


def sparse_topk_matching(dec_a: np.ndarray, dec_b: np.ndarray, top_k: int = TOP_K) -> LatentMatching:
    """Exact assignment over the union of each latent's top-k partners on both sides; k doubles (up to
    `MAX_TOP_K`) while that graph has no matching of every latent of the smaller side."""
    started = time.perf_counter()
    k = top_k
    while True:
        rows, cols, values = topk_candidates(dec_a, dec_b, k)
        # Costs 2 - cos are positive, so no edge is read as absent; a constant shift keeps the optimum.
        graph = csr_matrix((2.0 - values, (rows, cols)), shape=(len(dec_a), len(dec_b)))
        try:
            latent_a, latent_b = min_weight_full_bipartite_matching(graph)
            break
        except ValueError:
            if k >= MAX_TOP_K:
                raise MatchingError(f"no full matching among the top-{k} candidates of every latent") from None
            k *= 2
    latent_a, latent_b = latent_a.astype(np.int64), latent_b.astype(np.int64)
    cosine = np.einsum("ij,ij->i", dec_a[latent_a], dec_b[latent_b])
    return LatentMatching(latent_a, latent_b, cosine, "sparse_topk", time.perf_counter() - started, k)


def topk_candidates(dec_a: np.ndarray, dec_b: np.ndarray, k: int,
                    chunk_rows: int = CHUNK_ROWS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Edges (row, col, cosine): each row's k best columns and each column's k best rows, in one pass over
    chunks of rows, so at most `chunk_rows` x n_b cosines are held at once."""
    a, b = torch.from_numpy(dec_a), torch.from_numpy(dec_b)
    k_row, k_col = min(k, len(b)), min(k, len(a))
    best_col_values = torch.full((k_col, len(b)), -torch.inf)
    best_col_rows = torch.zeros((k_col, len(b)), dtype=torch.long)
    edges_rows, edges_cols, edges_values = [], [], []
    for start in range(0, len(a), chunk_rows):
        cosine = a[start:start + chunk_rows] @ b.T
        values, cols = cosine.topk(k_row, dim=1)
        edges_rows.append(torch.arange(start, start + len(cosine)).repeat_interleave(k_row))
        edges_cols.append(cols.reshape(-1))
        edges_values.append(values.reshape(-1))
        chunk_values, chunk_rows_idx = cosine.topk(min(k_col, len(cosine)), dim=0)
        merged_values = torch.cat([best_col_values, chunk_values])
        merged_rows = torch.cat([best_col_rows, chunk_rows_idx + start])
        best_col_values, keep = merged_values.topk(k_col, dim=0)
        best_col_rows = merged_rows.gather(0, keep)
    edges_rows.append(best_col_rows.reshape(-1))
    edges_cols.append(torch.arange(len(b)).repeat(k_col))
    edges_values.append(best_col_values.reshape(-1))
    rows, cols = torch.cat(edges_rows).numpy(), torch.cat(edges_cols).numpy()
    values = torch.cat(edges_values).numpy().astype(np.float64)
    # an edge found from both sides appears twice: keep one copy
    unique = np.unique(rows.astype(np.int64) * len(b) + cols, return_index=True)[1]
    return rows[unique], cols[unique], values[unique]


def random_decoder(n_latents: int, d_model: int, seed: int) -> np.ndarray:
    """Unit Gaussian directions: the decoder of a randomly initialised coder of that shape (the chance control)."""
    weights = np.random.default_rng(seed).standard_normal((n_latents, d_model)).astype(np.float32)
    return weights / np.linalg.norm(weights, axis=1, keepdims=True)
