"""A latent's activating windows, their quantiles of strength, and the train/test split over them.

One window per peak, strongest peak first, never two overlapping in a row, the peak placed
`peak_index` tokens in so the causal model's left context is shown. Everything is vectorised
numpy over the latent's records, sorted by (row, pos).
"""

from __future__ import annotations

import numpy as np

from ..config import SamplingConfig


def _range_max(values: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """max(values[lo[i]:hi[i]]) for every i (ranges non-empty), from a table of power-of-two block maxima."""
    if lo.size == 0:
        return values[:0]
    length = hi - lo
    n = len(values)
    table = np.empty((int(length.max()).bit_length(), n), dtype=values.dtype)
    table[0] = values
    for k in range(1, len(table)):
        half = 1 << (k - 1)
        table[k, : n - half] = np.maximum(table[k - 1, : n - half], table[k - 1, half:])
        table[k, n - half:] = table[k - 1, n - half:]  # never read: no query block runs past the end
    level = np.frexp(length.astype(np.float64))[1] - 1  # floor(log2(length))
    return np.maximum(table[level, lo], table[level, hi - (1 << level)])


def greedy_disjoint(keys: np.ndarray, priority: np.ndarray, width: int) -> np.ndarray:
    """Indices of the keys a greedy pass keeps: highest priority first, skipping keys within `width - 1` of a kept one.

    `keys` sorted and distinct, `priority` distinct and positive. Runs in rounds: a key whose
    priority beats all its remaining neighbours is kept by the greedy pass as well, so each
    round keeps every such key at once and drops their neighbours; a handful of rounds suffice.
    """
    index = np.arange(len(keys))
    kept = []
    while index.size:
        key, prio = keys[index], priority[index]
        lo = np.searchsorted(key, key - (width - 1))
        hi = np.searchsorted(key, key + (width - 1), side="right")
        best = prio == _range_max(prio, lo, hi)
        kept.append(index[best])
        n = len(key) + 1
        covered = np.cumsum(np.bincount(lo[best], minlength=n) - np.bincount(hi[best], minlength=n))[:-1]
        index = index[covered == 0]
    return np.concatenate(kept) if kept else np.zeros(0, dtype=np.int64)


def activating_windows(
    row: np.ndarray, pos: np.ndarray, activation: np.ndarray, ctx_len: int, first_position: int, config: SamplingConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One latent's activating windows as (row, start, index of the peak record), strongest peak first.

    Records must be sorted by (row, pos). Each peak, strongest first, gets the window starting
    `peak_index` before it, shifted to stay inside [first_position, ctx_len) so BOS never shows;
    a peak whose window overlaps one already chosen in its row is skipped.
    """
    n, width = len(row), config.example_ctx_len
    if n == 0:
        return row, pos.astype(np.int64), np.zeros(0, dtype=np.int64)
    start = np.clip(pos.astype(np.int64) - config.peak_index, first_position, ctx_len - width)
    # Non-decreasing; windows of different rows are always >= width apart, so they never conflict.
    key = row.astype(np.int64) * ctx_len + start
    order = np.argsort(-activation, kind="stable")
    priority = np.empty(n, dtype=np.int64)
    priority[order] = np.arange(n, 0, -1)
    first = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])  # peaks sharing a window: only the strongest matters
    best = np.maximum.reduceat(priority, first)
    kept = greedy_disjoint(key[first], best, width)
    peak = order[n - np.sort(best[kept])[::-1]]
    return row[peak], start[peak], peak


def window_records(
    row: np.ndarray, pos: np.ndarray, activation: np.ndarray, win_row: np.ndarray, win_start: np.ndarray,
    ctx_len: int, width: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lo, hi, maximum): window i holds the latent's records lo[i]:hi[i], whose greatest activation is maximum[i]."""
    flat = row.astype(np.int64) * ctx_len + pos
    win_key = win_row.astype(np.int64) * ctx_len + win_start
    lo, hi = np.searchsorted(flat, win_key), np.searchsorted(flat, win_key + width)
    return lo, hi, _range_max(activation, lo, hi)


def quantile_ranks(window_max: np.ndarray, n_quantiles: int) -> np.ndarray:
    """Each window's quantile bin of window maximum, 0 (weakest) to n_quantiles - 1, bins as equal as can be."""
    n = len(window_max)
    quantile = np.empty(n, dtype=np.int64)
    quantile[np.argsort(window_max, kind="stable")] = np.arange(n) * n_quantiles // n
    return quantile


def _even_split(total: int, n_bins: int) -> np.ndarray:
    """`total` items over `n_bins` bins, as even as possible."""
    return np.diff(np.arange(n_bins + 1) * total // n_bins)


def _fill(quota: np.ndarray, available: np.ndarray) -> np.ndarray:
    """Per-bin counts meeting `quota` where a bin allows; a short bin's deficit is taken from the nearest
    bins with windows to spare (the stronger one first at equal distance)."""
    take = np.minimum(quota, available)
    for short in np.flatnonzero(quota > available):
        need = int(quota[short] - available[short])
        for other in sorted(range(len(quota)), key=lambda b: (abs(b - short), -b)):
            extra = min(need, int(available[other] - take[other]))
            take[other] += extra
            need -= extra
            if not need:
                break
    return take


def split_train_test(
    quantile: np.ndarray, config: SamplingConfig, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the train and test windows, disjoint, drawn per quantile bin.

    With at least n_train + n_test windows each set takes its count spread evenly over the
    bins; with fewer, all windows are used, split between train and test in proportion
    n_train : n_test. A bin short of its share is made up from its nearest bins.
    """
    n, bins = len(quantile), config.n_quantiles
    wanted = config.n_train + config.n_test
    if n >= wanted:
        n_train, n_test = config.n_train, config.n_test
    else:
        n_train = (n * config.n_train + wanted // 2) // max(wanted, 1)
        n_test = n - n_train
    # Windows grouped by bin, in random order within a bin; each set takes a prefix of what is left.
    order = np.lexsort((rng.random(n), quantile))
    grouped = quantile[order]
    size = np.bincount(quantile, minlength=bins)
    train_take = _fill(_even_split(n_train, bins), size)
    test_take = _fill(_even_split(n_test, bins), size - train_take)
    rank = np.arange(n) - np.searchsorted(grouped, grouped)
    in_train = rank < train_take[grouped]
    in_test = ~in_train & (rank < (train_take + test_take)[grouped])
    return order[in_train], order[in_test]
