"""Windows where a latent is silent: random ones, drawn uniformly, and hard ones, whose text is nearest its top windows.

Hard negatives come from a pool: the corpus tiled into non-overlapping windows, each embedded
once per corpus and window length and kept on disk, so every SAE and latent shares it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..atomic import atomic_path
from ..corpus import CorpusInfo
from ..models.embeddings import embed_texts
from .tokens import TokenDecoder
from .windows import greedy_disjoint

POOL_SIMILARITIES = 16_000_000  # latent x pool-window similarities computed at once (64 MB)


def random_negative_windows(
    row: np.ndarray, pos: np.ndarray, wanted: int, rng: np.random.Generator, *,
    n_rows: int, ctx_len: int, first_position: int, width: int,
) -> tuple[np.ndarray, np.ndarray]:
    """(rows, starts) of up to `wanted` distinct, non-overlapping windows drawn uniformly from all windows
    where the latent (records `row`, `pos`) is silent.

    Silent windows are counted exactly from the gaps between the latent's records, so a draw
    never misses, even for latents that fire almost everywhere; earlier draws win overlaps.
    """
    if not wanted:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    # Keys with a stride of ctx_len + 1: each row is fenced by a blocked key just before
    # first_position and one at its end, so a gap never spans two rows.
    stride = ctx_len + 1
    fences = np.arange(n_rows, dtype=np.int64) * stride
    blocked = np.sort(np.concatenate([row.astype(np.int64) * stride + pos + 1, fences + first_position,
                                      fences + stride]))
    windows = np.maximum(np.diff(blocked) - width, 0)  # silent window starts in each gap
    ends = np.cumsum(windows)
    total = int(ends[-1]) if len(ends) else 0
    draw = rng.choice(total, size=min(total, 2 * wanted + 8), replace=False)
    rows, starts = _disjoint_in_order(draw, blocked, windows, ends, stride, width)
    if len(rows) < wanted and len(draw) < total:
        rows, starts = _disjoint_in_order(rng.permutation(total), blocked, windows, ends, stride, width)
    return rows[:wanted], starts[:wanted]


def _disjoint_in_order(draw, blocked, windows, ends, stride: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(row, start) of drawn silent windows, keeping each unless an earlier draw overlaps it."""
    gap = np.searchsorted(ends, draw, side="right")
    key = blocked[gap] + 1 + draw - (ends[gap] - windows[gap])
    rows, starts = key // stride, key % stride - 1
    by_key = np.argsort(key)
    kept = np.sort(by_key[greedy_disjoint(key[by_key], len(key) - by_key, width)])
    return rows[kept], starts[kept]


def _grid(n_rows: int, ctx_len: int, first_position: int, width: int) -> tuple[int, np.ndarray, np.ndarray]:
    """The non-overlapping windows tiling each row from first_position: (per row, rows, starts), row-major."""
    per_row = (ctx_len - first_position) // width
    index = np.arange(n_rows * per_row)
    return per_row, index // per_row, first_position + (index % per_row) * width


def window_pool_embeddings(corpus_info: CorpusInfo, tokens: np.ndarray, decode: TokenDecoder, width: int) -> np.ndarray:
    """Embeddings of the corpus's grid windows, computed once per corpus and window length and kept on disk
    (`<corpus>/window_embeddings_L{width}.npy`) so every SAE and latent shares them."""
    per_row, rows, starts = _grid(corpus_info.n_rows, corpus_info.ctx_len, corpus_info.first_position, width)
    path = Path(corpus_info.path) / f"window_embeddings_L{width}.npy"
    if path.exists():
        stored = np.load(path)
        if stored.shape[0] == len(rows):
            return stored
    texts = ["".join(t) for t in decode.strings(tokens[rows[:, None], starts[:, None] + np.arange(width)]).tolist()]
    embeddings = embed_texts(texts)
    # A file handle, not a name: np.save would add ".npy" to the temporary's name.
    with atomic_path(path) as partial, open(partial, "wb") as handle:
        np.save(handle, embeddings)
    return embeddings


class WindowPool:
    """The corpus's grid windows with their embeddings (from `window_pool_embeddings`), searched for hard negatives."""

    def __init__(self, embeddings: np.ndarray, n_rows: int, ctx_len: int, first_position: int, width: int):
        self.embeddings = embeddings
        self.first_position, self.width = first_position, width
        self.per_row, self.rows, self.starts = _grid(n_rows, ctx_len, first_position, width)
        if len(embeddings) != len(self.rows):
            raise ValueError(f"pool_embeddings has {len(embeddings)} windows; this corpus tiles into "
                             f"{len(self.rows)} windows of {width}")

    def query(self, row: np.ndarray, pos: np.ndarray, peak: np.ndarray, n_peaks: int) -> tuple[np.ndarray, np.ndarray]:
        """A latent's query (mean embedding of the grid windows holding its top `n_peaks` peaks, re-normalised)
        and the grid windows it fires in, which can never be its negatives."""
        top = peak[:n_peaks]
        cell = (pos[top] - self.first_position) // self.width
        holding = np.unique(row[top].astype(np.int64) * self.per_row + np.minimum(cell, self.per_row - 1))
        query = self.embeddings[holding].mean(axis=0)
        cell = (pos - self.first_position) // self.width
        inside = cell < self.per_row
        active = row[inside].astype(np.int64) * self.per_row + cell[inside]
        return query / max(float(np.linalg.norm(query)), 1e-12), active

    def nearest(self, queries: Sequence[tuple[np.ndarray, np.ndarray]], n: int) -> list[np.ndarray]:
        """For each (query, active) of `query`, the indices of its `n` nearest (cosine) pool windows outside
        `active`, nearest first.

        Similarities are one matrix product per group of queries: a matrix-vector product per
        query would stream the whole pool from memory each time.
        """
        group = max(1, POOL_SIMILARITIES // len(self.embeddings))
        n = min(n, len(self.embeddings))
        found = []
        for first in range(0, len(queries), group):
            batch = queries[first:first + group]
            similarities = np.stack([query for query, _ in batch]) @ self.embeddings.T
            for (_, active), similarity in zip(batch, similarities):
                similarity[active] = -np.inf
                nearest = np.argpartition(-similarity, n - 1)[:n]
                nearest = nearest[np.argsort(-similarity[nearest], kind="stable")]
                found.append(nearest[np.isfinite(similarity[nearest])])
        return found
