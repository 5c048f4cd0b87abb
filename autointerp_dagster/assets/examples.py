"""Example samples per (sae, latent range): explainer and scorer sets, random and hard negatives."""

import time
from collections import Counter

import numpy as np
import pyarrow as pa
from dagster import AssetDep, AssetExecutionContext, AutomationCondition, MaterializeResult, asset

from ..core.activation_cache import ActivationCache
from ..core.coders import cache_path
from ..core.corpus import load_corpus_info, read_tokens
from ..core.latent_ranges import latent_range
from ..core.sampling import (
    EXAMPLE_ROWS_SCHEMA,
    build_examples,
    examples_to_rows,
    stable_key_hash,
    token_decoder,
    window_pool_embeddings,
)
from ..partitions import RANGE_DIMENSION, SAE_DIMENSION, sae_latent_partitions
from ..resources import SettingsResource, StoreResource, SubjectModelResource
from .latent_stats import latent_stats

SKIPPED_SCHEMA = pa.schema([("sae", pa.string()), ("latent", pa.int32()), ("status", pa.string()),
                            ("reason", pa.string()), ("n_activating_windows", pa.int32()),
                            ("max_activation", pa.float32())])


def partition_slice(context: AssetExecutionContext, settings) -> tuple[str, str, ActivationCache, int, int]:
    """(sae key, range key, cache, first latent, end latent) of a (sae, latent range) partition."""
    keys = context.partition_key.keys_by_dimension
    sae, range_key = keys[SAE_DIMENSION], keys[RANGE_DIMENSION]
    cache = ActivationCache(cache_path(settings, sae))
    start, end = latent_range(cache.n_latents, range_key)
    return sae, range_key, cache, start, end


@asset(
    group_name="interpretation",
    partitions_def=sae_latent_partitions,
    deps=[AssetDep(latent_stats)],
    automation_condition=AutomationCondition.eager(),
    description="Per latent: activating windows stratified into activation quantiles, disjoint explainer (train) "
    "and scorer (test) sets, random and hard negatives (DuckDB tables examples and latent_sampling).",
)
def examples(context: AssetExecutionContext, settings: SettingsResource, subject_model: SubjectModelResource,
             store: StoreResource) -> MaterializeResult:
    config = settings.get()
    sampling = config.sampling_config()
    sae, range_key, cache, start, end = partition_slice(context, config)
    corpus = load_corpus_info(cache.manifest["corpus_path"])
    tokens = read_tokens(corpus)
    decode = token_decoder(subject_model.tokenizer(config))
    stats = cache.latent_stats()
    counts = stats["n_activations"].to_numpy()[start:end]
    live = np.flatnonzero(counts >= max(sampling.min_activating, 1)) + start
    # A seeded order over the range's live latents; explained latents are the first that sample cleanly.
    order = np.random.default_rng([sampling.seed, stable_key_hash(sae), start]).permutation(live).tolist()
    wanted = len(order) if config.latents_per_range is None else config.latents_per_range
    pool = None
    if sampling.n_hard_negatives:
        pool = window_pool_embeddings(corpus, tokens, decode, sampling.example_ctx_len)

    started = time.monotonic()
    sampled, kept = [], []
    while order and len(kept) < wanted:
        batch, order = order[: max(2 * (wanted - len(kept)), 16)], order[max(2 * (wanted - len(kept)), 16):]
        for latent_examples in build_examples(cache, tokens, decode, batch, sae, sampling, pool):
            sampled.append(latent_examples)
            if latent_examples.status == "ok" and len(kept) < wanted:
                kept.append(latent_examples)
    seconds = time.monotonic() - started
    skipped = [le for le in sampled if le.status != "ok"]
    status_rows = [
        {"sae": sae, "latent": le.latent, "status": le.status, "reason": le.reason,
         "n_activating_windows": le.n_activating_windows, "max_activation": le.max_activation}
        for le in kept + skipped
    ] + [
        {"sae": sae, "latent": int(latent), "status": "skipped",
         "reason": f"{int(counts[latent - start])} activations in the cache, fewer than "
                   f"min_activating={sampling.min_activating}" if counts[latent - start] else
                   "dead latent: never fires in the cache",
         "n_activating_windows": 0, "max_activation": 0.0}
        for latent in range(start, end) if counts[latent - start] < max(sampling.min_activating, 1)
    ]
    rows = examples_to_rows(sae, kept)
    where, params = "sae = ? AND latent >= ? AND latent < ?", [sae, start, end]
    db = store.get()
    db.replace_rows("examples", pa.Table.from_pylist(rows, schema=EXAMPLE_ROWS_SCHEMA), where, params)
    db.replace_rows("latent_sampling", pa.Table.from_pylist(status_rows, schema=SKIPPED_SCHEMA), where, params)
    reasons = Counter("dead" if r["reason"].startswith("dead") else "too few activations or windows"
                      for r in status_rows if r["status"] != "ok")
    context.log.info(f"{sae} {range_key}: sampled {len(kept)} latents ({len(sampled)} tried) in {seconds:.1f} s")
    return MaterializeResult(metadata={
        "latents": f"{start}-{end - 1}",
        "latents_with_examples": len(kept),
        "latents_skipped": len(status_rows) - len(kept),
        "skip_reasons": dict(reasons),
        "examples": len(rows),
        "sampling_seconds": round(seconds, 2),
        "latents_per_second": round(len(sampled) / max(seconds, 1e-9), 1),
        "hard_negatives": bool(pool is not None),
    })
