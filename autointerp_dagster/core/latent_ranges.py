"""Splitting a coder's latents into a fixed number of contiguous ranges.

Every coder is cut into the same number of ranges whatever its width, so a range key
(`03-of-08`) means "the fourth eighth of the latents" for every SAE: no partition is
empty or out of bounds for a narrow SAE, and wide SAEs just get wider ranges.
"""

from __future__ import annotations

import re

import numpy as np

_KEY = re.compile(r"^(\d+)-of-(\d+)$")


def range_keys(n_ranges: int) -> list[str]:
    width = max(2, len(str(n_ranges)))
    return [f"{i:0{width}d}-of-{n_ranges:0{width}d}" for i in range(n_ranges)]


def parse_range_key(key: str) -> tuple[int, int]:
    """`03-of-08` -> (3, 8)."""
    match = _KEY.match(key)
    if not match:
        raise ValueError(f"latent range key {key!r} is not of the form 'I-of-N'")
    index, n_ranges = int(match.group(1)), int(match.group(2))
    if not 0 <= index < n_ranges:
        raise ValueError(f"latent range key {key!r}: index out of range")
    return index, n_ranges


def range_bounds(n_latents: int, n_ranges: int) -> np.ndarray:
    """Boundaries [0, b1, ..., n_latents] of `n_ranges` near-equal contiguous ranges."""
    return np.linspace(0, n_latents, n_ranges + 1).round().astype(np.int64)


def latent_range(n_latents: int, key: str) -> tuple[int, int]:
    """[start, end) of the latents a range key covers for a coder of `n_latents` latents."""
    index, n_ranges = parse_range_key(key)
    bounds = range_bounds(n_latents, n_ranges)
    return int(bounds[index]), int(bounds[index + 1])
