"""The activation cache: sparse records equal the dense encoding; crash safety; re-runs replace."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from autointerp_dagster.core.cache import ActivationCache, CacheMissingError
from autointerp_dagster.core.cache.writer import CacheTarget, cache_activations
from autointerp_dagster.core.coders import CoderSource, SparseCoderError, load_coder
from autointerp_dagster.core.corpus import build_corpus, read_tokens
from autointerp_dagster.core.latent_ranges import latent_range, range_bounds, range_keys
from autointerp_dagster.core.models.subject import load_subject_model

from .conftest import write_sparsify_sae


@pytest.fixture(scope="module")
def model(tiny_model_dir, tmp_path_factory):
    return load_subject_model(str(tiny_model_dir), tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def corpus(model, tmp_path_factory):
    from autointerp_dagster.core.config import CorpusSpec

    return build_corpus(CorpusSpec(ctx_len=24, token_budget=24 * 30), model.tokenizer, tmp_path_factory.mktemp("c"))


@pytest.fixture(scope="module")
def coders(model, tmp_path_factory):
    root = tmp_path_factory.mktemp("saes")
    shallow = write_sparsify_sae(root / "a" / "layers.0", 64, 96, 5, seed=1)
    deep = write_sparsify_sae(root / "b" / "layers.1", 64, 130, 3, seed=2)
    return [load_coder(CoderSource(str(p)), base_model=model.body) for p in (shallow, deep)]


def dense_reference(model, corpus, coder) -> np.ndarray:
    """Encodes every token of the corpus densely with the sparsify TopK formula on the coder's weights,
    independently of the cache and encoding code: [rows, ctx_len, latents]."""
    tokens = torch.from_numpy(read_tokens(corpus).astype(np.int64))
    out = model.capture(tokens, [(coder.capture_module, coder.capture)])[(coder.capture_module, coder.capture)]
    x = out.reshape(-1, out.shape[-1]).to(coder.weight.dtype)
    pre = torch.relu((x - coder.b_dec) @ coder.weight.T + coder.bias)
    top = pre.topk(coder.k, dim=-1)
    dense = torch.zeros_like(pre).scatter_(1, top.indices, top.values).reshape(*tokens.shape, -1).numpy()
    dense[:, : corpus.first_position] = 0  # BOS is never encoded
    return dense


def records_as_dense(cache: ActivationCache, corpus) -> np.ndarray:
    table = cache.records(0, cache.n_latents)
    dense = np.zeros((corpus.n_rows, corpus.ctx_len, cache.n_latents), np.float32)
    rows, pos, lat = (table[c].to_numpy() for c in ("row", "pos", "latent"))
    assert len(set(zip(rows, pos, lat))) == len(rows), "duplicate records"
    dense[rows, pos, lat] = table["activation"].to_numpy()
    return dense


def test_round_trip_two_coders_one_pass(model, corpus, coders, tmp_path):
    targets = [CacheTarget(f"tiny/{c.hookpoint}", c, tmp_path / f"cache{i}") for i, c in enumerate(coders)]
    passes = []
    handle = model.module("layers.0").register_forward_hook(lambda *_: passes.append(1))
    try:
        summaries = cache_activations(model, corpus, targets, n_ranges=4, batch_rows=7, flush_records=50)
    finally:
        handle.remove()
    assert len(passes) == 1 + -(-corpus.n_rows // 7), "a width probe, then one pass per batch feeds both coders"
    for target, summary in zip(targets, summaries):
        cache = ActivationCache(target.path)
        reference = dense_reference(model, corpus, target.coder)
        np.testing.assert_allclose(records_as_dense(cache, corpus), reference, rtol=2e-3, atol=1e-3)
        assert summary.nnz == int((reference > 0).sum())
        assert summary.encoded_tokens == corpus.n_rows * (corpus.ctx_len - 1)
        stats = cache.latent_stats()
        np.testing.assert_array_equal(stats["n_activations"].to_numpy(), (reference > 0).sum(axis=(0, 1)))
        np.testing.assert_allclose(stats["max_activation"].to_numpy(), reference.max(axis=(0, 1)), rtol=1e-5)
        assert summary.dead_latents == int(((reference > 0).sum(axis=(0, 1)) == 0).sum())
        # one shard per latent range, holding exactly that range's latents, in several row groups
        bounds = range_bounds(cache.n_latents, 4)
        for key, lo, hi in zip(range_keys(4), bounds[:-1], bounds[1:]):
            shard = pq.ParquetFile(target.path / f"latents-{key}.parquet")
            latents = shard.read().column("latent").to_numpy()
            assert latents.size == 0 or (latents.min() >= lo and latents.max() < hi)
            assert (lo, hi) == latent_range(cache.n_latents, key)
        assert max(pq.ParquetFile(f).num_row_groups for f in target.path.glob("latents-*.parquet")) > 1
        assert summary.bytes_on_disk > 0


def test_crash_leaves_previous_cache_and_rerun_replaces(model, corpus, coders, tmp_path):
    target = CacheTarget("tiny/layers.0", coders[0], tmp_path / "cache")
    first = cache_activations(model, corpus, [target], n_ranges=2)[0]
    before = ActivationCache(target.path).records(0, coders[0].n_latents)

    def crash(done, total, _speed):
        if done > total // 2:
            raise KeyboardInterrupt("killed mid-run")

    with pytest.raises(KeyboardInterrupt):
        cache_activations(model, corpus, [target], n_ranges=2, batch_rows=4, flush_records=10, progress=crash)
    assert not list(tmp_path.glob("cache.*.tmp")), "partial build removed"
    assert ActivationCache(target.path).records(0, coders[0].n_latents).equals(before)

    second = cache_activations(model, corpus, [target], n_ranges=2)[0]
    assert second.nnz == first.nnz
    assert ActivationCache(target.path).records(0, coders[0].n_latents).num_rows == before.num_rows


def test_missing_cache_and_width_mismatch(model, corpus, tmp_path):
    with pytest.raises(CacheMissingError, match="materialise activation_cache"):
        ActivationCache(tmp_path / "nothing")
    wrong = load_coder(CoderSource(str(write_sparsify_sae(tmp_path / "w" / "layers.0", 48, 32, 2, seed=0))))
    with pytest.raises(SparseCoderError, match="expects inputs of width 48"):
        cache_activations(model, corpus, [CacheTarget("k", wrong, tmp_path / "c")], n_ranges=2)
    assert not (tmp_path / "c").exists()
