"""The random-SAE control: a coder's twin of the same shape with random weights, registered beside it, cached,
explained and scored by `autointerp run` like any coder, and the summaries' trained - random difference."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import torch
from scipy.stats import ttest_ind

from autointerp_dagster.core.coders.decoders import decoder_directions
from autointerp_dagster.core.coders.formats.random_twin import twin_key
from autointerp_dagster.core.coders.load import load_coder
from autointerp_dagster.core.coders.registry import registered_coders
from autointerp_dagster.core.config import load_settings
from autointerp_dagster.core.reporting.coders import coder_summaries, format_coder_comparison
from autointerp_dagster.core.reporting.summary import format_summary
from autointerp_dagster.core.store.tables import SCORES

from .conftest import run_on_scripted_judge, write_sparsify_sae


def settings_with_twins(tmp_path: Path, tiny_model_dir: Path, twins: bool = True):
    home = tmp_path / "home"
    write_sparsify_sae(home / "saes" / "run-a" / "layers.0", 64, 96, 4, seed=1)
    config = {"home": str(home), "model": {"name": str(tiny_model_dir), "alias": "tiny"},
              "coders": {"embedded": None, "random_twins": twins, "latent_ranges": 2},
              "corpus": {"source": "embedded:kjv", "ctx_len": 32, "token_budget": 32 * 40},
              "sampling": {"example_ctx_len": 8, "peak_index": 5, "min_activating": 4, "n_train": 6, "n_test": 6,
                           "n_quantiles": 3, "n_random_negatives": 6, "n_hard_negatives": 3, "latents_per_range": 4,
                           "hard_negative_queries": 2, "negatives": "random+hard"},
              "scoring": {"batch_size": 3}}
    (tmp_path / "autointerp.yaml").write_text(json.dumps(config))
    return load_settings(tmp_path / "autointerp.yaml", environ={})


def test_a_twin_has_the_coders_shape_and_read_site_and_seeded_random_weights(tmp_path, tiny_model_dir):
    settings = settings_with_twins(tmp_path, tiny_model_dir)
    coders = registered_coders(settings)
    assert list(coders) == ["tiny/layers.0/random-run-a", "tiny/layers.0/run-a"]
    assert twin_key("tiny/layers.0/run-a") == "tiny/layers.0/random-run-a" and twin_key("m/layers.3") == \
        "m/layers.3/random-coder" and twin_key("tiny/layers.0/random-run-a") is None
    trained = load_coder(coders["tiny/layers.0/run-a"].source)
    twin = load_coder(coders["tiny/layers.0/random-run-a"].source)
    again = load_coder(coders["tiny/layers.0/random-run-a"].source)
    assert (twin.n_latents, twin.d_in, twin.k, twin.capture_module, twin.capture) == (
        trained.n_latents, trained.d_in, trained.k, trained.capture_module, trained.capture)
    assert torch.equal(twin.weight, again.weight)  # seeded by the coder's path
    torch.testing.assert_close(twin.weight.norm(dim=1), torch.ones(96))
    assert not torch.allclose(twin.weight, trained.weight / trained.weight.norm(dim=1, keepdim=True))
    values, indices = twin.encode_sparse(torch.randn(5, 64))
    assert values.shape == indices.shape == (5, 4) and (values >= 0).all()
    assert torch.equal(decoder_directions(coders["tiny/layers.0/random-run-a"].source), twin.weight)
    assert list(registered_coders(settings_with_twins(tmp_path / "off", tiny_model_dir, twins=False))) == [
        "tiny/layers.0/run-a"]


def test_autointerp_run_caches_explains_and_scores_the_twin_beside_its_coder(tmp_path, tiny_model_dir, llm_server):
    settings = settings_with_twins(tmp_path, tiny_model_dir)
    done, _ = run_on_scripted_judge(tmp_path / "autointerp.yaml", llm_server)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    from autointerp_dagster.core.store import open_store

    store = open_store(settings)
    found = {r["sae"]: r["n"] for r in store.query(
        "SELECT sae, count(*) AS n FROM scores WHERE scorer = 'detection' GROUP BY sae").to_pylist()}
    assert set(found) == {"tiny/layers.0/run-a", "tiny/layers.0/random-run-a"} and min(found.values()) > 0
    assert "trained - random twin (tiny/layers.0/random-run-a" in done.stdout


def test_summaries_show_trained_minus_random_with_a_welch_interval(store):
    rng = np.random.default_rng(0)
    values = {"m/layers.6/sae": rng.uniform(0.7, 0.9, 8), "m/layers.6/random-sae": rng.uniform(0.45, 0.6, 6)}
    rows = []
    for sae, aucs in values.items():
        for latent, auc in enumerate(aucs):
            for control, value in (("none", auc), ("shuffled", 0.5)):
                rows.append({name: None for name in SCORES.names} | {
                    "sae": sae, "latent": latent, "scorer": "detection", "explanation_id": f"{sae}{latent}{control}",
                    "explainer": "ex", "explainer_model": "local:judge", "judge": "local:judge",
                    "scorer_config": "c", "control": control, "status": "ok", "auc": float(value)})
    store.replace_rows("scores", pa.Table.from_pylist(rows, schema=SCORES), "true")
    a, b = values["m/layers.6/sae"], values["m/layers.6/random-sae"]
    interval = ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    expected = f"{a.mean() - b.mean():.3f} [{interval.low:.3f}, {interval.high:.3f}]"
    text, _ = format_summary(store, "m/layers.6/sae", [("ex", "local:judge")])
    line = next(line for line in text.splitlines() if line.split()[:2] == ["detection", "auc"]
                and "latents 8 vs 6" in line)
    assert expected in line
    comparison = format_coder_comparison(coder_summaries(store, list(values), "ex", "local:judge"))
    assert "trained - random twin (m/layers.6/random-sae" in comparison and expected in comparison
    assert "trained - random" not in format_summary(store, "m/layers.6/random-sae", [("ex", "local:judge")])[0]

