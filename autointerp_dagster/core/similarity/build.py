"""One coder's similarities with every other coder of its model: what the `sae_similarity` asset computes.

Coders are loaded one at a time (decoder from its files, activations from its cache, explanations from the
store), so memory holds two coders whatever their number. A coder that cannot take part (MLP neurons have no
decoder file; different model widths) is skipped with its reason, never silently.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from ..cache import ActivationCache, CacheMissingError, cache_folder
from ..coders import SparseCoderError, registered_coders, unit_decoder_directions
from ..config import Settings
from ..store import ResultsStore
from ..store.tables import SAE_SIMILARITY
from .activations import CacheMismatchError, cache_activations_matrix, check_same_tokens
from .explanations import explained_texts
from .matching import MatchingError
from .pairs import (
    CoderData,
    SimilarityResult,
    compare_coders,
    decoder_controls,
    match_rows,
    summary_rows,
)


@dataclass
class CoderSimilarities:
    """Everything computed for one coder: its controls, its pairs, and the coders skipped (key -> reason)."""

    key: str
    controls: SimilarityResult | None = None
    pairs: list[SimilarityResult] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)

    def match_table(self) -> pa.Table | None:
        return pa.concat_tables([match_rows(p) for p in self.pairs]) if self.pairs else None

    def summary_table(self) -> pa.Table:
        rows = [r for result in [self.controls, *self.pairs] if result for r in summary_rows(result)]
        return pa.Table.from_pylist(rows, schema=SAE_SIMILARITY)


def model_coders(settings: Settings) -> list[str]:
    """The keys of every registered coder of the settings' model."""
    return [key for key in registered_coders(settings) if key.startswith(f"{settings.alias}/")]


def coder_loader(settings: Settings, store: ResultsStore, explainer: str,
                 explainer_model: str) -> Callable[[str], CoderData]:
    """Loads a coder's decoder, cache (when complete) and explanations by key."""
    coders = registered_coders(settings)

    def load(key: str) -> CoderData:
        if key not in coders:
            raise SparseCoderError(f"no registered coder {key!r} (removed or renamed since its partition was added)")
        decoder = unit_decoder_directions(coders[key].source)
        data = CoderData(key, decoder, explanations=explained_texts(store, key, explainer, explainer_model))
        try:
            cache = ActivationCache(cache_folder(settings.cache_dir, key))
        except CacheMissingError:
            return data
        data.cache = cache
        data.activations = cache_activations_matrix(cache)
        data.n_tokens = cache.summary.encoded_tokens
        return data

    return load


def coder_similarities(key: str, others: list[str], load: Callable[[str], CoderData],
                       seed: int = 0) -> CoderSimilarities:
    """The coder's decoder controls and its comparison with each of `others`."""
    found = CoderSimilarities(key)
    try:
        mine = load(key)
    except SparseCoderError as error:
        found.skipped[key] = str(error)
        return found
    found.controls = decoder_controls(mine, seed)
    for other in others:
        if other == key:
            continue
        try:
            theirs = load(other)
            if mine.cache is not None and theirs.cache is not None:
                check_same_tokens(mine.cache, theirs.cache)
            found.pairs.append(compare_coders(mine, theirs, seed))
        except (SparseCoderError, MatchingError, CacheMismatchError) as error:
            found.skipped[other] = str(error)
    return found


def similarity_matrix(store: ResultsStore, keys: list[str], method: str = "decoder_cosine"
                      ) -> tuple[np.ndarray, np.ndarray]:
    """(pairs, chance): [n, n] mean `method` over matched pairs of `keys` (the diagonal is the self-copy
    control; NaN where not computed) and each coder's random control."""
    index = {key: i for i, key in enumerate(keys)}
    matrix = np.full((len(keys), len(keys)), np.nan)
    chance = np.full(len(keys), np.nan)
    rows = store.query("SELECT sae_a, sae_b, control, mean FROM sae_similarity WHERE method = ? AND "
                       "control IN ('none', 'self', 'random')", [method]).to_pylist()
    for row in rows:
        a, b = index.get(row["sae_a"]), index.get(row["sae_b"])
        if a is None or b is None or row["mean"] is None:
            continue
        if row["control"] == "random":
            chance[a] = row["mean"]
        else:
            matrix[a, b] = matrix[b, a] = row["mean"]
    return matrix, chance
