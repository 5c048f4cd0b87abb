"""Choosing the examples a latent is explained and scored on.

For each latent: its activating windows ranked into quantiles of window maximum; a
quantile-balanced train set for the explainer and a disjoint test set for the scorers; random
windows where the latent is silent; hard negatives, silent windows whose sentence embedding
is nearest its top windows; and neighbour negatives, silent windows where its nearest latents by
decoder direction fire (neighbours.py). Hard and neighbour negatives are each split into a share shown
to a contrastive explainer and a share the scorers judge. No window shown to the explainer is ever
judged (`ExampleSets.check_disjoint`).

Everything per latent is vectorised numpy on that latent's slice of the cache records, so a
whole SAE takes seconds. Draws use a generator seeded from (seed, the SAE key, the latent):
the same inputs always give the same examples, and every latent gets its own draws.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field, fields

import numpy as np

from ..cache import ActivationCache
from ..config import SamplingConfig
from .examples import (
    ACTIVATING,
    HARD_NEGATIVE,
    NEIGHBOUR_NEGATIVE,
    RANDOM_NEGATIVE,
    Example,
)
from .negatives import WindowPool, random_negative_windows
from .neighbours import NeighbourWindows, nearest_latents
from .tokens import TokenDecoder
from .windows import (
    activating_windows,
    quantile_ranks,
    split_train_test,
    window_records,
)

OK = "ok"
SKIPPED = "skipped"
CHUNK_RECORDS = 8_000_000  # records fetched per query: bounds memory on large caches


EXPLAINER = "explainer"
SCORER = "scorer"
SELECTION = "selection"  # held out from both: best-of-k explanations are chosen on these
SELECT_STREAM = 1  # the held-out draws' own random stream, so the explainer's and scorers' sets never change


class LeakageError(ValueError):
    """A window both shown to the explainer and judged by a scorer: its score would be inflated."""


def _examples(role: str):
    """A list of examples and who sees it (EXPLAINER or SCORER), which `check_disjoint` reads."""
    return field(default_factory=list, metadata={"role": role})


@dataclass
class ExampleSets:
    """A latent's examples by who sees them: train, hard_negative_train and neighbour_train are shown to the
    explainer (the negatives only to a contrastive one); test, random_negatives, hard_negative_test and
    neighbour_test are judged; select and select_random (`sampling.n_select`) are held out from both, for
    choosing among best-of-k explanations.

    Every list declares its role, so a new example source is covered by `check_disjoint` too.
    """

    latent: int
    train: list[Example] = _examples(EXPLAINER)
    test: list[Example] = _examples(SCORER)
    random_negatives: list[Example] = _examples(SCORER)
    hard_negative_train: list[Example] = _examples(EXPLAINER)
    hard_negative_test: list[Example] = _examples(SCORER)
    neighbour_train: list[Example] = _examples(EXPLAINER)
    neighbour_test: list[Example] = _examples(SCORER)
    select: list[Example] = _examples(SELECTION)
    select_random: list[Example] = _examples(SELECTION)

    def check_disjoint(self) -> None:
        """Raises LeakageError if a window (row, start) is in sets of two roles (explainer, scorer, selection):
        an explanation judged on examples it was written from, or chosen on, would score too well."""
        seen: dict[tuple[int, int], tuple[str, str]] = {}
        for f in fields(self):
            role = f.metadata.get("role")
            for e in getattr(self, f.name) if role else ():
                other = seen.setdefault((e.row, e.start), (role, f.name))
                if other[0] != role:
                    raise LeakageError(f"latent {self.latent}: window (row {e.row}, start {e.start}) is in "
                                       f"{other[1]} ({other[0]}) and {f.name} ({role})")


@dataclass
class LatentExamples(ExampleSets):
    """Examples of one latent, or why it has none (`status` "skipped" with a `reason`)."""

    status: str = OK
    reason: str | None = None
    n_activating_windows: int = 0
    max_activation: float = 0.0
    top_tokens: list[tuple[str, int]] = field(default_factory=list)  # see `peak_token_counts`


def stable_key_hash(sae_key: str) -> int:
    """A hash of the SAE key that is the same in every process (Python's hash() is salted)."""
    return int.from_bytes(hashlib.sha256(sae_key.encode()).digest()[:8], "little")


class _Sampler:
    """What every latent of one build shares: the corpus as strings, the window geometry, the pool."""

    def __init__(self, cache: ActivationCache, tokens: np.ndarray, decode: TokenDecoder, sae_key: str,
                 config: SamplingConfig, pool_embeddings: np.ndarray | None, decoder: np.ndarray | None = None):
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
        self.pool = None if pool_embeddings is None else WindowPool(
            pool_embeddings, self.n_rows, self.ctx_len, self.first_position, self.width)
        self.pending: list[tuple[LatentExamples, np.ndarray, np.ndarray]] = []  # awaiting hard negatives
        self.neighbours = None if decoder is None or not config.n_neighbour_negatives else NeighbourWindows(
            cache, decoder, config, self.ctx_len, self.first_position)
        self.pending_neighbours: list[tuple[LatentExamples, np.ndarray, np.ndarray]] = []
        self.pending_held_out: list[tuple[LatentExamples, np.ndarray, np.ndarray]] = []  # awaiting silent windows

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
        lo, hi, window_max = window_records(row, pos, activation, win_row, win_start, self.ctx_len, self.width)
        quantile = quantile_ranks(window_max, config.n_quantiles)
        rng = np.random.default_rng([config.seed, self.key_hash, latent])
        train, test = split_train_test(quantile, config, rng)
        result = LatentExamples(latent, n_activating_windows=n_windows, max_activation=top)
        select = self._held_out(np.setdiff1d(np.arange(n_windows), np.concatenate([train, test])), quantile, latent)
        unjudged = np.ones(n_windows, dtype=bool)  # the digest's windows: no scorer's, no selection's
        unjudged[test] = False
        unjudged[select] = False
        result.top_tokens = peak_token_counts(self.strings[win_row[unjudged], pos[peak[unjudged]]],
                                              config.digest_tokens)
        # Strongest first within each set; consumers shuffle where order would leak the label.
        for name, chosen in (("train", train), ("test", test), ("select", select)):
            chosen = chosen[np.argsort(-window_max[chosen], kind="stable")]
            setattr(result, name, self._activating(chosen, win_row, win_start, quantile, lo, hi, pos, activation, top))
        rows, starts = random_negative_windows(
            row, pos, config.n_random_negatives, rng,
            n_rows=self.n_rows, ctx_len=self.ctx_len, first_position=self.first_position, width=self.width)
        result.random_negatives = self._negatives(rows, starts, RANDOM_NEGATIVE)
        if len(select):
            self.pending_held_out.append((result, row, pos))
        if self.pool is not None and config.n_hard_negatives:
            self.pending.append((result, *self.pool.query(row, pos, peak, config.hard_negative_queries)))
        if self.neighbours is not None:
            self.pending_neighbours.append((result, row, pos))
        return result

    def _held_out(self, rest: np.ndarray, quantile: np.ndarray, latent: int) -> np.ndarray:
        """Up to `n_select` of the windows no other set took (`rest`), spread evenly over their quantiles."""
        n = self.config.n_select or 0
        if not n or not len(rest):
            return np.zeros(0, dtype=np.int64)
        rng = np.random.default_rng([self.config.seed, self.key_hash, latent, SELECT_STREAM])
        ordered = rest[np.lexsort((rng.random(len(rest)), quantile[rest]))]
        return ordered if len(ordered) <= n else ordered[np.linspace(0, len(ordered) - 1, n).round().astype(int)]

    def _activating(self, chosen, win_row, win_start, quantile, lo, hi, pos, activation, top) -> list[Example]:
        """Examples for the chosen windows, with the latent's value at every token (0 where silent)."""
        counts = hi[chosen] - lo[chosen]
        which = np.repeat(np.arange(len(chosen)), counts)
        record = np.arange(counts.sum()) + np.repeat(lo[chosen] - (np.cumsum(counts) - counts), counts)
        rows, starts = win_row[chosen], win_start[chosen]
        values = np.zeros((len(chosen), self.width), dtype=np.float32)
        values[which, pos[record] - starts[which]] = activation[record]
        # Rounded up, as delphi does: a token where the latent fires never shows as 0.
        levels = np.clip(np.ceil(10.0 * values.astype(np.float64) / top), 0, 10).astype(np.int64)
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

    def attach_hard_negatives(self) -> None:
        """Gives every pending latent its silent pool windows nearest its query, all pending queries at once.

        Windows overlapping a random negative are left out; the rest are dealt alternately, nearest
        first, to the explainer's share and the scorers' share, so both are equally hard and disjoint.
        A random window overlaps at most two pool windows, hence the extra candidates fetched.
        """
        if not self.pending:
            return
        n = self.config.n_hard_negatives
        nearest = self.pool.nearest([(query, active) for _, query, active in self.pending],
                                    2 * n + 2 * self.config.n_random_negatives)
        for (result, _, _), index in zip(self.pending, nearest):
            rows, starts = self.pool.rows[index], self.pool.starts[index]
            clear = _clear_of(rows, starts, [e.row for e in result.random_negatives],
                              [e.start for e in result.random_negatives], self.width)
            rows, starts = rows[clear][: 2 * n], starts[clear][: 2 * n]
            result.hard_negative_train = self._negatives(rows[0::2], starts[0::2], HARD_NEGATIVE)
            result.hard_negative_test = self._negatives(rows[1::2], starts[1::2], HARD_NEGATIVE)
        self.pending = []

    def attach_neighbour_negatives(self) -> None:
        """Gives every pending latent windows where its decoder neighbours fire and it is silent (after hard
        negatives, so none shares a token with a random or hard negative or with another neighbour window),
        dealt alternately, strongest first, to the explainer's share and the scorers' share."""
        if not self.pending_neighbours:
            return
        n = self.config.n_neighbour_negatives
        nearest = nearest_latents(self.neighbours.decoder, [r.latent for r, _, _ in self.pending_neighbours],
                                  self.config.neighbour_latents)
        for result, row, pos in self.pending_neighbours:
            rows, starts = self.neighbours.windows(nearest[result.latent], row, pos)
            taken = [*result.random_negatives, *result.hard_negative_train, *result.hard_negative_test]
            kept_rows, kept_starts = [e.row for e in taken], [e.start for e in taken]
            for r, s in zip(rows.tolist(), starts.tolist()):
                if len(kept_rows) - len(taken) == 2 * n:
                    break
                if _clear_of(np.array([r]), np.array([s]), kept_rows, kept_starts, self.width)[0]:
                    kept_rows.append(r)
                    kept_starts.append(s)
            rows = np.array(kept_rows[len(taken):], dtype=np.int64)
            starts = np.array(kept_starts[len(taken):], dtype=np.int64)
            result.neighbour_train = self._negatives(rows[0::2], starts[0::2], NEIGHBOUR_NEGATIVE)
            result.neighbour_test = self._negatives(rows[1::2], starts[1::2], NEIGHBOUR_NEGATIVE)
        self.pending_neighbours = []

    def attach_held_out_negatives(self) -> None:
        """Gives every pending latent as many random silent windows as it has held-out activating ones (last, and
        from their own random stream, so every other set is what it would be without them), none sharing a token
        with a silent window of another set."""
        for result, row, pos in self.pending_held_out:
            silent = [*result.random_negatives, *result.hard_negative_train, *result.hard_negative_test,
                      *result.neighbour_train, *result.neighbour_test]
            n = len(result.select)
            rng = np.random.default_rng([self.config.seed, self.key_hash, result.latent, SELECT_STREAM, 1])
            rows, starts = random_negative_windows(
                row, pos, n + len(silent), rng,
                n_rows=self.n_rows, ctx_len=self.ctx_len, first_position=self.first_position, width=self.width)
            clear = _clear_of(rows, starts, [e.row for e in silent], [e.start for e in silent], self.width)
            result.select_random = self._negatives(rows[clear][:n], starts[clear][:n], RANDOM_NEGATIVE)
        self.pending_held_out = []


def peak_token_counts(peak_strings: np.ndarray, top: int) -> list[tuple[str, int]]:
    """The `top` most frequent tokens at the peaks of a latent's activating windows, with their counts.

    Only windows the scorers never judge count (the explainer's share and the windows no set uses), so a digest
    built from them leaks nothing of the test set. Tokens are compared without their surrounding whitespace
    (" upon" and "upon" are one word to a reader); a whitespace-only token keeps its escaped form.
    """
    counts: dict[str, int] = {}
    for token in peak_strings.tolist():
        key = token.strip() or token.encode("unicode_escape").decode()
        counts[key] = counts.get(key, 0) + 1
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top]


def _clear_of(rows: np.ndarray, starts: np.ndarray, other_rows: Sequence[int], other_starts: Sequence[int],
              width: int) -> np.ndarray:
    """Whether each window (rows[i], starts[i]) shares no token with any window (other_rows[j], other_starts[j])."""
    other_rows = np.asarray(other_rows, dtype=np.int64)
    other_starts = np.asarray(other_starts, dtype=np.int64)
    overlap = (rows[:, None] == other_rows) & (np.abs(starts[:, None] - other_starts) < width)
    return ~overlap.any(axis=1)


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
    decoder: np.ndarray | None = None,
) -> list[LatentExamples]:
    """Examples of each latent (in the order given), hard negatives only when `pool_embeddings` is given,
    neighbour negatives only when `decoder` (unit decoder rows, core/coders `decoder_directions`) is.

    `tokens` is the cache's corpus ([n_rows, ctx_len], from `read_tokens`); `pool_embeddings`
    comes from `window_pool_embeddings` with `config.example_ctx_len`. Records are fetched one
    latent span at a time and split by latent, so work per latent touches only its own records.
    """
    latents = list(dict.fromkeys(int(latent) for latent in latents))
    for latent in latents:
        if not 0 <= latent < cache.n_latents:
            raise ValueError(f"latent {latent} is out of range for a coder of {cache.n_latents} latents")
    sampler = _Sampler(cache, tokens, decode, sae_key, config, pool_embeddings, decoder)
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
        sampler.attach_neighbour_negatives()
        sampler.attach_held_out_negatives()
    for sets in results.values():
        sets.check_disjoint()
    return [results[latent] for latent in latents]
