"""Neighbour negatives: windows where the latents nearest a latent by decoder direction fire while it is silent.

Latents that write almost the same direction into the model often fire on related text, so their windows are
negatives that look like the latent's own: harder than random windows and, unlike embedding-nearest (hard)
negatives, chosen by what the coder itself learnt (delphi's "neighbours" source; the paper's decoder-cosine
variant). Each neighbour contributes its strongest windows, nearest neighbour first, taken in turns.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..cache import ActivationCache
from ..config import SamplingConfig
from .windows import activating_windows


def nearest_latents(decoder: np.ndarray, latents: Sequence[int], n: int) -> dict[int, list[int]]:
    """For each latent, the `n` other latents with the highest decoder cosine, nearest first.

    `decoder`: [n_latents, d_model] unit rows (core/coders `unit_decoder_directions`); a zero row (dead latent)
    has cosine 0 with everything."""
    latents = list(latents)
    if not latents:
        return {}
    similarity = decoder[latents] @ decoder.T
    similarity[np.arange(len(latents)), latents] = -np.inf
    n = min(n, decoder.shape[0] - 1)
    nearest = {}
    for latent, row in zip(latents, similarity):
        top = np.argpartition(-row, n - 1)[:n] if n else np.zeros(0, dtype=np.int64)
        nearest[latent] = top[np.argsort(-row[top], kind="stable")].tolist()
    return nearest


def silent_in(win_row: np.ndarray, win_start: np.ndarray, row: np.ndarray, pos: np.ndarray, width: int,
              ctx_len: int) -> np.ndarray:
    """Whether the latent with records (`row`, `pos`, sorted by row then pos) is silent in each window."""
    keys = row.astype(np.int64) * ctx_len + pos
    first = win_row.astype(np.int64) * ctx_len + win_start
    return np.searchsorted(keys, first + width) == np.searchsorted(keys, first)


class NeighbourWindows:
    """Candidate neighbour windows per latent, from the neighbours' own records in the cache (read once each)."""

    def __init__(self, cache: ActivationCache, decoder: np.ndarray, config: SamplingConfig, ctx_len: int,
                 first_position: int):
        if decoder.shape[0] != cache.n_latents:
            raise ValueError(f"the decoder has {decoder.shape[0]} latents; the cache has {cache.n_latents}")
        self.cache, self.decoder, self.config = cache, decoder, config
        self.ctx_len, self.first_position = ctx_len, first_position
        self._windows: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def _strongest(self, latent: int) -> tuple[np.ndarray, np.ndarray]:
        if latent not in self._windows:
            table = self.cache.records(latent, latent + 1)
            rows, starts, _ = activating_windows(
                table["row"].to_numpy(), table["pos"].to_numpy().astype(np.int64), table["activation"].to_numpy(),
                self.ctx_len, self.first_position, self.config)
            self._windows[latent] = rows.astype(np.int64), starts.astype(np.int64)
        return self._windows[latent]

    def windows(self, neighbours: Sequence[int], row: np.ndarray, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(rows, starts): the neighbours' windows where the latent (records `row`, `pos`) is silent, the
        strongest window of each neighbour in turn (nearest neighbour first), then the second, and so on."""
        per_neighbour = []
        for neighbour in neighbours:
            rows, starts = self._strongest(neighbour)
            silent = silent_in(rows, starts, row, pos, self.config.example_ctx_len, self.ctx_len)
            per_neighbour.append((rows[silent], starts[silent]))
        if not per_neighbour:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        turn = np.concatenate([np.arange(len(r)) for r, _ in per_neighbour])
        order = np.argsort(turn, kind="stable")  # stable: within a turn, nearest neighbour first
        return (np.concatenate([r for r, _ in per_neighbour])[order],
                np.concatenate([s for _, s in per_neighbour])[order])
