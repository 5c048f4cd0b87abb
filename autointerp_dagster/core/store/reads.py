"""What the pipeline's stages read back from the results store, one function per question."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from .results import ResultsStore
from .tables import IN_LATENT_RANGE

# Explanations a scorer reads: made by one explainer with one model, and parsed.
EXPLAINED_BY = "explainer = ? AND backend = ? AND model = ? AND status = 'ok'"


def coder_width(store: ResultsStore, sae: str) -> int | None:
    """The number of latents of a cached coder (None before its cache exists)."""
    found = store.query("SELECT n_latents FROM activation_caches WHERE sae = ?", [sae]).to_pylist()
    return found[0]["n_latents"] if found else None


def cache_and_corpus(store: ResultsStore, sae: str) -> dict:
    """{cache_path, corpus_path}: where a coder's activation cache and the corpus it was cached over live."""
    return store.query("SELECT c.cache_path, p.path AS corpus_path FROM activation_caches c "
                       "JOIN corpora p USING (corpus_id) WHERE c.sae = ?", [sae]).to_pylist()[0]


def firing_counts(store: ResultsStore, sae: str, start: int, end: int) -> np.ndarray:
    """How often each latent of a range fires in the cache, in latent order."""
    return store.query(f"SELECT n_activations FROM latent_stats WHERE {IN_LATENT_RANGE} ORDER BY latent",
                       [sae, start, end]).column("n_activations").to_numpy()


def example_rows(store: ResultsStore, sae: str, start: int, end: int) -> list[dict]:
    return store.query(f"SELECT * FROM examples WHERE {IN_LATENT_RANGE}", [sae, start, end]).to_pylist()


def intruder_window_rows(store: ResultsStore, sae: str, start: int, end: int, others: int, per_latent: int,
                         seed: int) -> list[dict]:
    """Held-out activating windows (set `test`, at most `per_latent` a latent) of the range's latents and of up to
    `others` latents of the coder's other ranges, chosen by a seeded hash: the intruder tasks' windows."""
    sql = ("WITH picked AS (SELECT DISTINCT latent FROM examples WHERE sae = ? AND set = 'test' AND "
           "NOT (latent >= ? AND latent < ?) ORDER BY hash(latent + ?) LIMIT ?) "
           "SELECT * FROM examples WHERE sae = ? AND set = 'test' AND ((latent >= ? AND latent < ?) OR "
           "latent IN (SELECT latent FROM picked)) QUALIFY row_number() OVER (PARTITION BY latent ORDER BY idx) <= ?")
    return store.query(sql, [sae, start, end, seed, others, sae, start, end, per_latent]).to_pylist()


def digest_rows(store: ResultsStore, sae: str, start: int, end: int) -> list[dict]:
    """The range's latent digests (written with the examples); empty where none were made."""
    if not store.has_table("latent_digest"):
        return []
    return store.query(f"SELECT * FROM latent_digest WHERE {IN_LATENT_RANGE}", [sae, start, end]).to_pylist()


def explained(store: ResultsStore, sae: str, start: int, end: int, explainer: str,
              llm_label: str) -> tuple[dict[int, dict], dict[int, str]]:
    """(this range's explained latents -> explanation row, every explained latent of the coder -> explanation)
    made by `explainer` with the model `llm_label` ("backend:model"); the second is the shuffled control's pool."""
    backend, _, model = llm_label.partition(":")
    params = [explainer, backend, model]
    pool = {r["latent"]: r["explanation"] for r in store.query(
        f"SELECT latent, explanation FROM explanations WHERE sae = ? AND {EXPLAINED_BY}", [sae, *params]).to_pylist()}
    rows = {r["latent"]: r for r in store.query(
        f"SELECT * FROM explanations WHERE {IN_LATENT_RANGE} AND {EXPLAINED_BY}", [sae, start, end, *params]
    ).to_pylist()}
    return rows, pool


def range_duplicates(store: ResultsStore, table: str, key: tuple[str, ...], sae: str, start: int, end: int) -> int:
    """Rows of a latent range beyond one per `key` (0 when the key is unique, as every write keeps it)."""
    return store.duplicate_keys(table, key, IN_LATENT_RANGE, [sae, start, end])


def cache_summaries(store: ResultsStore) -> pa.Table:
    """Per cached coder: tokens, non-zeros, dead share, speed, size, and how many latents have statistics (none
    before the explain stage made the statistics table)."""
    columns = "c.sae, c.encoded_tokens, c.nnz, c.dead_fraction, c.tokens_per_s, c.bytes_on_disk"
    if not store.has_table("latent_stats"):
        return store.query(f"SELECT {columns}, 0 AS latents_with_stats FROM activation_caches c ORDER BY c.sae")
    return store.query(
        f"SELECT {columns}, count(s.latent) AS latents_with_stats FROM activation_caches c "
        "LEFT JOIN latent_stats s ON s.sae = c.sae GROUP BY ALL ORDER BY c.sae")
