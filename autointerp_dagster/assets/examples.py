"""Example samples per (sae, latent range): explainer and scorer sets, random, hard and neighbour negatives."""

import time
from collections import Counter

import numpy as np
from dagster import (
    AssetDep,
    AssetExecutionContext,
    AutomationCondition,
    MaterializeResult,
    asset,
)

from ..core.cache import ActivationCache
from ..core.coders import (
    SparseCoderError,
    decoder_directions,
    lookup,
    unit_decoder_directions,
)
from ..core.corpus import load_corpus_info, read_tokens
from ..core.explain.digest import (
    LatentDigest,
    digest_rows,
    promoted_tokens,
    steered_for_explainer,
    steering_settings_id,
    uses_steering,
)
from ..core.sampling import (
    examples_to_rows,
    sample_latent_range,
    token_decoder,
    window_pool_embeddings,
)
from ..core.store import reads, writes
from ..partitions import sae_latent_partitions
from ..resources import SettingsResource, StoreResource, SubjectModelResource
from .corpus import corpus
from .latent_stats import latent_stats
from .slices import CACHE_DEP, partition_latents


@asset(
    group_name="interpretation",
    partitions_def=sae_latent_partitions,
    deps=[AssetDep(latent_stats), CACHE_DEP, corpus],
    automation_condition=AutomationCondition.eager(),
    description="Per latent: activating windows stratified into activation quantiles, disjoint explainer (train) "
    "and scorer (test) sets, random, hard and neighbour negatives, and the latent's digest: its most frequent peak "
    "tokens and the tokens its decoder promotes, through the unembedding or (explainer.output_view: steering) when "
    "steered on its explainer windows (DuckDB tables examples, latent_sampling and latent_digest).",
)
def examples(context: AssetExecutionContext, settings: SettingsResource, subject_model: SubjectModelResource,
             store: StoreResource) -> MaterializeResult:
    config = settings.get()
    sampling = config.sampling
    db = store.get()
    sae, range_key, start, end = partition_latents(context, db)
    stored = reads.cache_and_corpus(db, sae)
    cache = ActivationCache(stored["cache_path"])
    corpus_info = load_corpus_info(stored["corpus_path"])
    tokens = read_tokens(corpus_info)
    decode = token_decoder(subject_model.tokenizer())
    counts = reads.firing_counts(db, sae, start, end)
    pool = None
    if sampling.n_hard_negatives:
        pool = window_pool_embeddings(corpus_info, tokens, decode, sampling.example_ctx_len)
    decoder, no_neighbours = None, None
    if sampling.n_neighbour_negatives and "neighbour" in config.sampling.negatives.split("+"):
        try:
            decoder = unit_decoder_directions(lookup(config, [sae])[sae].source)
        except SparseCoderError as exc:  # e.g. MLP neurons: no decoder file; the other negatives still come
            no_neighbours = str(exc)
            context.log.warning(f"{sae}: no neighbour negatives: {exc}")
    started = time.monotonic()
    sample = sample_latent_range(cache, tokens, decode, sae, start, counts, sampling,
                                 config.sampling.latents_per_range, pool, decoder)
    seconds = time.monotonic() - started
    kept, status_rows = sample.kept, sample.status_rows
    rows = examples_to_rows(sae, kept)
    promoted = [()] * len(kept)
    if kept and sampling.promoted_tokens:
        model = subject_model.load()
        source = lookup(config, [sae])[sae].source
        directions = decoder_directions(source, model.body)[[le.latent for le in kept]]
        counts = np.bincount(tokens.ravel(), minlength=1)
        promoted = promoted_tokens(model, directions, sampling.promoted_tokens, counts)
    explainer = config.explainer
    steered, steering_id, steering_seconds = {}, "", None
    if kept and uses_steering(config):
        began = time.monotonic()
        steered = steered_for_explainer(config, sae, kept, subject_model.load())
        steering_id = steering_settings_id(config)
        steering_seconds = round(time.monotonic() - began, 1)
    digests = [LatentDigest(le.latent, tuple(le.top_tokens), tuple(p), tuple(steered.get(le.latent, ())),
                            steering_id) for le, p in zip(kept, promoted)]
    writes.write_examples(db, sae, start, end, rows, status_rows, digest_rows(sae, digests))
    reasons = Counter("dead" if r["reason"].startswith("dead") else "too few activations or windows"
                      for r in status_rows if r["status"] != "ok")
    context.log.info(f"{sae} {range_key}: sampled {len(kept)} latents ({sample.tried} tried) in {seconds:.1f} s")
    return MaterializeResult(metadata={
        "latents": f"{start}-{end - 1}",
        "latents_with_examples": len(kept),
        "latents_skipped": len(status_rows) - len(kept),
        "skip_reasons": dict(reasons),
        "examples": len(rows),
        "sampling_seconds": round(seconds, 2),
        "latents_per_second": round(sample.tried / max(seconds, 1e-9), 1),
        "hard_negatives": bool(pool is not None),
        "neighbour_negatives": bool(decoder is not None) if no_neighbours is None else no_neighbours,
        "output_view": explainer.output_view if explainer.digest == "input+output" else "none",
        **({"steering_seconds": steering_seconds,  # a latent never firing in its explainer windows gets none
            "latents_steered": sum(bool(tokens) for tokens in steered.values())}
           if steering_seconds is not None else {}),
    })
