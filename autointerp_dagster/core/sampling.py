"""Choosing the examples a latent is explained and scored on.

For each latent: its activating windows (one per peak, strongest peak first, never two
overlapping in a row, the peak placed `peak_index` tokens in so the causal model's left
context is shown), ranked into quantiles of window maximum; a quantile-balanced train set
for the explainer and a disjoint test set for the scorers; random windows where the latent is
silent; and hard negatives, silent windows whose sentence embedding is nearest its top windows.

Everything per latent is vectorised numpy on that latent's slice of the cache records, so a
whole SAE takes seconds. Draws use a generator seeded from (seed, the SAE key, the latent):
the same inputs always give the same examples, and every latent gets its own draws.
"""

from __future__ import annotations

import functools
import hashlib
import os
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from .activation_cache import ActivationCache
from .config import SamplingConfig
from .corpus import CorpusInfo
from .embeddings import embed_texts
from .store.tables import EXAMPLES as EXAMPLE_ROWS_SCHEMA
from .examples import ACTIVATING, HARD_NEGATIVE, RANDOM_NEGATIVE, Example

OK = "ok"
SKIPPED = "skipped"
CHUNK_RECORDS = 8_000_000  # records fetched per query: bounds memory on large caches
POOL_SIMILARITIES = 16_000_000  # latent x pool-window similarities computed at once (64 MB)

# Row `set` value -> (ExampleSets attribute, Example.kind)
SETS = {
    "train": ("train", ACTIVATING),
    "test": ("test", ACTIVATING),
    "random": ("random_negatives", RANDOM_NEGATIVE),
    "hard_negative": ("hard_negatives", HARD_NEGATIVE),
}



@dataclass
class ExampleSets:
    """A latent's examples by role; train and test are activating, never sharing a window."""

    latent: int
    train: list[Example] = field(default_factory=list)
    test: list[Example] = field(default_factory=list)
    random_negatives: list[Example] = field(default_factory=list)
    hard_negatives: list[Example] = field(default_factory=list)


@dataclass
class LatentExamples(ExampleSets):
    """Examples of one latent, or why it has none (`status` "skipped" with a `reason`)."""

    status: str = OK
    reason: str | None = None
    n_activating_windows: int = 0
    max_activation: float = 0.0


class TokenDecoder:
    """Token ids to strings, decoding each vocabulary id once (`tokenizer.decode([id])`) and keeping it."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self._strings = np.empty(0, dtype=object)
        self._known = np.zeros(0, dtype=bool)

    def strings(self, ids: np.ndarray) -> np.ndarray:
        """An object array of the same shape as `ids` holding each token's string."""
        ids = np.asarray(ids, dtype=np.int64)
        if ids.size:
            self._learn(ids)
        return self._strings[ids]

    def _learn(self, ids: np.ndarray) -> None:
        top = int(ids.max()) + 1
        if top > len(self._strings):
            self._strings = np.concatenate([self._strings, np.full(top - len(self._strings), None, dtype=object)])
            self._known = np.concatenate([self._known, np.zeros(top - len(self._known), dtype=bool)])
        new = np.unique(ids[~self._known[ids]])
        if new.size:
            decoded = self.tokenizer.batch_decode([[i] for i in new.tolist()], clean_up_tokenization_spaces=False)
            self._strings[new] = np.array(decoded, dtype=object)
            self._known[new] = True


@functools.cache
def token_decoder(tokenizer) -> TokenDecoder:
    """The one decoder of a tokenizer in this process, so its decoded vocabulary is shared."""
    return TokenDecoder(tokenizer)


def stable_key_hash(sae_key: str) -> int:
    """A hash of the SAE key that is the same in every process (Python's hash() is salted)."""
    return int.from_bytes(hashlib.sha256(sae_key.encode()).digest()[:8], "little")


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


def _greedy_disjoint(keys: np.ndarray, priority: np.ndarray, width: int) -> np.ndarray:
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
    kept = _greedy_disjoint(key[first], best, width)
    peak = order[n - np.sort(best[kept])[::-1]]
    return row[peak], start[peak], peak


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
    partial = path.with_name(f"{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    with open(partial, "wb") as handle:
        np.save(handle, embeddings)
    os.replace(partial, path)  # atomic: concurrent builders each write whole files
    return embeddings


class _Sampler:
    """What every latent of one build shares: the corpus as strings, the window geometry, the pool."""

    def __init__(self, cache: ActivationCache, tokens: np.ndarray, decode: TokenDecoder, sae_key: str,
                 config: SamplingConfig, pool_embeddings: np.ndarray | None):
        self.ctx_len = int(cache.manifest["ctx_len"])
        self.first_position = int(cache.manifest["first_position"])
        self.width = config.example_ctx_len
        if tokens.shape != (cache.summary.n_rows, self.ctx_len):
            raise ValueError(f"tokens have shape {tokens.shape}; the cache has {cache.summary.n_rows} rows of "
                             f"{self.ctx_len}")
        if self.ctx_len - self.first_position < self.width:
            raise ValueError(f"example_ctx_len={self.width} does not fit in rows of {self.ctx_len} tokens "
                             f"({self.ctx_len - self.first_position} after BOS)")
        self.config = config
        self.key_hash = stable_key_hash(sae_key)  # seeds draws per (seed, SAE, latent)
        self.n_rows = len(tokens)
        self.strings = decode.strings(tokens)
        self.offsets = np.arange(self.width)
        self.zeros = (0.0,) * self.width
        self.zero_levels = (0,) * self.width
        self.pool = pool_embeddings
        self.pending: list[tuple[LatentExamples, np.ndarray, np.ndarray]] = []  # awaiting hard negatives
        if pool_embeddings is not None:
            self.per_row, self.pool_rows, self.pool_starts = _grid(
                self.n_rows, self.ctx_len, self.first_position, self.width)
            if len(pool_embeddings) != len(self.pool_rows):
                raise ValueError(f"pool_embeddings has {len(pool_embeddings)} windows; this corpus tiles into "
                                 f"{len(self.pool_rows)} windows of {self.width}")

    def sample(self, latent: int, row: np.ndarray, pos: np.ndarray, activation: np.ndarray) -> LatentExamples:
        config = self.config
        if len(row) == 0:
            return LatentExamples(latent, status=SKIPPED, reason="dead latent: never fires in the cache")
        top = float(activation.max())
        win_row, win_start, peak = activating_windows(row, pos, activation, self.ctx_len, self.first_position, config)
        n_windows = len(win_row)
        if n_windows < config.min_activating:
            return LatentExamples(latent, status=SKIPPED, n_activating_windows=n_windows, max_activation=top,
                                  reason=f"only {n_windows} activating windows, fewer than "
                                         f"min_activating={config.min_activating}")
        flat = row.astype(np.int64) * self.ctx_len + pos
        win_key = win_row.astype(np.int64) * self.ctx_len + win_start
        lo, hi = np.searchsorted(flat, win_key), np.searchsorted(flat, win_key + self.width)
        window_max = _range_max(activation, lo, hi)
        quantile = np.empty(n_windows, dtype=np.int64)
        quantile[np.argsort(window_max, kind="stable")] = np.arange(n_windows) * config.n_quantiles // n_windows
        rng = np.random.default_rng([config.seed, self.key_hash, latent])
        train, test = split_train_test(quantile, config, rng)
        result = LatentExamples(latent, n_activating_windows=n_windows, max_activation=top)
        # Strongest first within each set; consumers shuffle where order would leak the label.
        for name, chosen in (("train", train), ("test", test)):
            chosen = chosen[np.argsort(-window_max[chosen], kind="stable")]
            setattr(result, name, self._activating(chosen, win_row, win_start, quantile, lo, hi, pos, activation, top))
        result.random_negatives = self._random_negatives(row, pos, rng)
        if self.pool is not None and config.n_hard_negatives:
            self.pending.append((result, *self._hard_query(row, pos, peak)))
        return result

    def _activating(self, chosen, win_row, win_start, quantile, lo, hi, pos, activation, top) -> list[Example]:
        """Examples for the chosen windows, with the latent's value at every token (0 where silent)."""
        counts = hi[chosen] - lo[chosen]
        which = np.repeat(np.arange(len(chosen)), counts)
        record = np.arange(counts.sum()) + np.repeat(lo[chosen] - (np.cumsum(counts) - counts), counts)
        rows, starts = win_row[chosen], win_start[chosen]
        values = np.zeros((len(chosen), self.width), dtype=np.float32)
        values[which, pos[record] - starts[which]] = activation[record]
        levels = np.clip(np.rint(10.0 * values / top), 0, 10).astype(np.int64)
        strings = self.strings[rows[:, None], starts[:, None] + self.offsets].tolist()
        return [
            Example(tuple(t), tuple(v), tuple(q), ACTIVATING, r, s, b)
            for t, v, q, r, s, b in zip(strings, values.tolist(), levels.tolist(), rows.tolist(), starts.tolist(),
                                        quantile[chosen].tolist())
        ]

    def _negatives(self, rows: np.ndarray, starts: np.ndarray, kind: str) -> list[Example]:
        strings = self.strings[rows[:, None], starts[:, None] + self.offsets].tolist()
        return [Example(tuple(t), self.zeros, self.zero_levels, kind, r, s)
                for t, r, s in zip(strings, rows.tolist(), starts.tolist())]

    def _random_negatives(self, row: np.ndarray, pos: np.ndarray, rng: np.random.Generator) -> list[Example]:
        """Distinct, non-overlapping windows drawn uniformly from all windows where the latent is silent.

        Silent windows are counted exactly from the gaps between the latent's records, so a draw
        never misses, even for latents that fire almost everywhere; earlier draws win overlaps.
        """
        wanted = self.config.n_random_negatives
        if not wanted:
            return []
        # Keys with a stride of ctx_len + 1: each row is fenced by a blocked key just before
        # first_position and one at its end, so a gap never spans two rows.
        stride = self.ctx_len + 1
        fences = np.arange(self.n_rows, dtype=np.int64) * stride
        blocked = np.sort(np.concatenate([row.astype(np.int64) * stride + pos + 1, fences + self.first_position,
                                          fences + stride]))
        windows = np.maximum(np.diff(blocked) - self.width, 0)  # silent window starts in each gap
        ends = np.cumsum(windows)
        total = int(ends[-1]) if len(ends) else 0
        draw = rng.choice(total, size=min(total, 2 * wanted + 8), replace=False)
        rows, starts = self._disjoint_in_order(draw, blocked, windows, ends)
        if len(rows) < wanted and len(draw) < total:
            rows, starts = self._disjoint_in_order(rng.permutation(total), blocked, windows, ends)
        return self._negatives(rows[:wanted], starts[:wanted], RANDOM_NEGATIVE)

    def _disjoint_in_order(self, draw, blocked, windows, ends) -> tuple[np.ndarray, np.ndarray]:
        """(row, start) of drawn silent windows, keeping each unless an earlier draw overlaps it."""
        gap = np.searchsorted(ends, draw, side="right")
        key = blocked[gap] + 1 + draw - (ends[gap] - windows[gap])
        rows, starts = key // (self.ctx_len + 1), key % (self.ctx_len + 1) - 1
        by_key = np.argsort(key)
        kept = np.sort(by_key[_greedy_disjoint(key[by_key], len(key) - by_key, self.width)])
        return rows[kept], starts[kept]

    def _hard_query(self, row, pos, peak) -> tuple[np.ndarray, np.ndarray]:
        """The latent's query (mean embedding of the grid windows holding its top peaks, re-normalised)
        and the grid windows it fires in, which can never be negatives."""
        top = peak[: self.config.hard_negative_queries]
        cell = (pos[top] - self.first_position) // self.width
        query = self.pool[np.unique(row[top].astype(np.int64) * self.per_row + np.minimum(cell, self.per_row - 1))]
        query = query.mean(axis=0)
        cell = (pos - self.first_position) // self.width
        inside = cell < self.per_row
        active = row[inside].astype(np.int64) * self.per_row + cell[inside]
        return query / max(float(np.linalg.norm(query)), 1e-12), active

    def attach_hard_negatives(self) -> None:
        """Gives every pending latent its silent grid windows nearest (cosine) to its query.

        Similarities are one matrix product per group of latents: a matrix-vector product per
        latent would stream the whole pool from memory each time.
        """
        if not self.pending:
            return
        group = max(1, POOL_SIMILARITIES // len(self.pool))
        n = min(self.config.n_hard_negatives, len(self.pool))
        for first in range(0, len(self.pending), group):
            batch = self.pending[first:first + group]
            similarities = np.stack([query for _, query, _ in batch]) @ self.pool.T
            for (result, _, active), similarity in zip(batch, similarities):
                similarity[active] = -np.inf
                nearest = np.argpartition(-similarity, n - 1)[:n]
                nearest = nearest[np.argsort(-similarity[nearest], kind="stable")]
                nearest = nearest[np.isfinite(similarity[nearest])]
                result.hard_negatives = self._negatives(self.pool_rows[nearest], self.pool_starts[nearest],
                                                        HARD_NEGATIVE)
        self.pending = []


def _record_chunks(cache: ActivationCache, latents: Sequence[int]) -> list[list[int]]:
    """Groups sorted latents so each group's span of the cache holds at most CHUNK_RECORDS records (or one latent)."""
    counts = cache.latent_stats()["n_activations"].to_numpy()
    cumulative = np.concatenate([[0], np.cumsum(counts)])
    chunks: list[list[int]] = []
    for latent in latents:
        if chunks and cumulative[latent + 1] - cumulative[chunks[-1][0]] <= CHUNK_RECORDS:
            chunks[-1].append(latent)
        else:
            chunks.append([latent])
    return chunks


def build_examples(
    cache: ActivationCache,
    tokens: np.ndarray,
    decode: TokenDecoder,
    latents: range | list[int],
    sae_key: str,
    config: SamplingConfig,
    pool_embeddings: np.ndarray | None = None,
) -> list[LatentExamples]:
    """Examples of each latent (in the order given), hard negatives only when `pool_embeddings` is given.

    `tokens` is the cache's corpus ([n_rows, ctx_len], from `read_tokens`); `pool_embeddings`
    comes from `window_pool_embeddings` with `config.example_ctx_len`. Records are fetched one
    latent span at a time and split by latent, so work per latent touches only its own records.
    """
    latents = list(dict.fromkeys(int(latent) for latent in latents))
    for latent in latents:
        if not 0 <= latent < cache.n_latents:
            raise ValueError(f"latent {latent} is out of range for a coder of {cache.n_latents} latents")
    sampler = _Sampler(cache, tokens, decode, sae_key, config, pool_embeddings)
    results: dict[int, LatentExamples] = {}
    for chunk in _record_chunks(cache, sorted(latents)):
        table = cache.records(chunk[0], chunk[-1] + 1)
        latent_col = table["latent"].to_numpy()
        row = table["row"].to_numpy()
        pos = table["pos"].to_numpy().astype(np.int64)
        activation = table["activation"].to_numpy()
        bounds = np.searchsorted(latent_col, [chunk, np.add(chunk, 1)])
        for latent, lo, hi in zip(chunk, bounds[0].tolist(), bounds[1].tolist()):
            results[latent] = sampler.sample(latent, row[lo:hi], pos[lo:hi], activation[lo:hi])
        sampler.attach_hard_negatives()
    return [results[latent] for latent in latents]


def examples_to_rows(sae_key: str, latent_examples: Iterable[ExampleSets]) -> list[dict]:
    """Flat rows (EXAMPLE_ROWS_SCHEMA) for storing examples in a table; skipped latents give none."""
    rows = []
    for sets in latent_examples:
        for set_name, (attribute, _kind) in SETS.items():
            for idx, example in enumerate(getattr(sets, attribute)):
                rows.append({
                    "sae": sae_key, "latent": sets.latent, "set": set_name, "idx": idx,
                    "row": example.row, "start": example.start, "quantile": example.quantile,
                    "tokens": list(example.tokens), "activations": list(example.activations),
                    "normalized": list(example.normalized),
                })
    return rows


def rows_to_latent_examples(rows: Iterable[dict]) -> dict[int, ExampleSets]:
    """The inverse of `examples_to_rows` for the rows of one SAE: example sets by latent, in stored order."""
    rows = sorted(rows, key=lambda r: (r["latent"], r["set"], r["idx"]))
    if len({r["sae"] for r in rows}) > 1:
        raise ValueError("rows_to_latent_examples takes the rows of one SAE at a time")
    out: dict[int, ExampleSets] = {}
    for r in rows:
        attribute, kind = SETS[r["set"]]
        sets = out.setdefault(r["latent"], ExampleSets(r["latent"]))
        getattr(sets, attribute).append(Example(
            tokens=tuple(r["tokens"]), activations=tuple(float(a) for a in r["activations"]),
            normalized=tuple(int(v) for v in r["normalized"]), kind=kind, row=r["row"], start=r["start"],
            quantile=r["quantile"],
        ))
    return out
