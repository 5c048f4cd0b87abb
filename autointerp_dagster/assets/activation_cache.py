"""Activation caches, one partition per sparse coder; one run caches all its coders in one forward pass."""


from dagster import (
    AssetExecutionContext,
    BackfillPolicy,
    MaterializeResult,
    MetadataValue,
    asset,
)

from ..core.cache import ActivationCache, cache_folder
from ..core.cache.plan import cache_inputs_fingerprint
from ..core.cache.writer import CacheTarget, cache_activations
from ..core.coders import load_coder, lookup
from ..core.corpus import build_corpus
from ..core.reporting.plots import firing_frequency_histogram, markdown_image
from ..core.store import writes
from ..instance import MODEL_POOL
from ..partitions import sae_partitions
from ..resources import SettingsResource, StoreResource, SubjectModelResource
from ..workers import queue_tags
from .corpus import corpus
from .embedded_saes import embedded_saes
from .progress import throttled_log


@asset(
    group_name="activations",
    partitions_def=sae_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    pool=MODEL_POOL,
    op_tags=queue_tags(MODEL_POOL),  # its Celery queue (workers.py)
    deps=[corpus, embedded_saes],
    description="Sparse latent activations (row, pos, latent, activation) as Parquet shards by latent range. "
    "A run over several coders makes one forward pass, stopped at the deepest hookpoint, for all of them.",
)
def activation_cache(
    context: AssetExecutionContext,
    settings: SettingsResource,
    subject_model: SubjectModelResource,
    store: StoreResource,
) -> MaterializeResult:
    config = settings.get()
    keys = list(context.partition_keys)
    model = subject_model.load()
    info = build_corpus(config.corpus, model.tokenizer, config.corpus_dir)
    registered = lookup(config, keys)
    targets = [
        CacheTarget(
            key=key,
            coder=load_coder(coder.source, base_model=model.body, device=model.device),
            path=cache_folder(config.cache_dir, key),
            fingerprint=cache_inputs_fingerprint(config, coder),
        )
        for key, coder in registered.items()
    ]
    context.log.info(
        f"caching {len(keys)} coder(s) over {info.n_rows} rows ({info.encoded_tokens} tokens) in one pass: {keys}"
    )
    summaries = cache_activations(
        model, info, targets, config.coders.latent_ranges, config.cache.batch_rows, config.cache.flush_records,
        throttled_log(context, "rows cached")
    )
    rows = []
    for target, summary in zip(targets, summaries):
        coder = target.coder
        frequencies = ActivationCache(target.path).latent_stats().column("frequency").to_numpy()
        plot = firing_frequency_histogram(frequencies, f"{target.key}: latent firing frequency")
        metadata = {
            "tokens": summary.encoded_tokens,
            "nonzeros": summary.nnz,
            "mean_active_latents_per_token": round(summary.nnz / max(summary.encoded_tokens, 1), 2),
            "latents": summary.n_latents,
            "dead_latents": summary.dead_latents,
            "dead_fraction": round(summary.dead_fraction, 4),
            "tokens_per_second": round(summary.tokens_per_s, 1),
            "coders_in_pass": len(keys),
            "bytes_on_disk": summary.bytes_on_disk,
            "bytes_per_nonzero": round(summary.bytes_per_nonzero, 2),
            "activation_dtype": summary.activation_dtype,
            "clamped_values": summary.clamped_values,
            "format": coder.format,
            "hookpoint": coder.hookpoint,
            "path": MetadataValue.path(summary.path),
            "firing_frequency_histogram": MetadataValue.md(markdown_image(plot, "firing frequency histogram")),
        }
        context.add_asset_metadata(metadata, partition_key=target.key)
        rows.append({
            "sae": target.key, "model": config.model.name, "hookpoint": coder.hookpoint, "format": coder.format,
            "source": registered[target.key].source.path, "fingerprint": target.fingerprint, "d_in": coder.d_in,
            "n_latents": coder.n_latents, "capture_module": coder.capture_module, "capture": coder.capture,
            "is_transcoder": coder.is_transcoder, "corpus_id": summary.corpus_id, "cache_path": summary.path,
            "encoded_tokens": summary.encoded_tokens, "nnz": summary.nnz, "dead_fraction": summary.dead_fraction,
            "tokens_per_s": summary.tokens_per_s, "bytes_on_disk": summary.bytes_on_disk,
        })
    writes.write_activation_caches(store.get(), rows)
    return MaterializeResult()

