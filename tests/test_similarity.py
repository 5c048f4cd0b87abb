"""Cross-coder similarity on tiny coders with planted structure, and the asset on a real DuckDB."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from autointerp_dagster.core.similarity import (
    CoderData,
    MatchingError,
    coder_similarities,
    compare_coders,
    decoder_controls,
    match_latents,
    random_decoder,
)
from autointerp_dagster.core.similarity.activations import matched_correlations, sparse_activations
from autointerp_dagster.core.similarity.matching import hungarian_matching, sparse_topk_matching


def _noisy_permuted_copy(decoder: np.ndarray, seed: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(decoder))
    copy = decoder[perm] + noise * rng.standard_normal(decoder.shape).astype(np.float32)
    return copy / np.linalg.norm(copy, axis=1, keepdims=True), perm


@pytest.mark.parametrize("dense_limit", [10_000, 0])  # 0: the sparse top-k path
def test_permuted_copy_is_matched_back_exactly(dense_limit):
    decoder = random_decoder(300, 48, seed=1)
    copy, perm = _noisy_permuted_copy(decoder, seed=2, noise=0.0)
    matching = match_latents(decoder, copy, dense_limit=dense_limit)
    assert matching.method == ("hungarian" if dense_limit else "sparse_topk")
    assert np.array_equal(np.sort(matching.latent_a), np.arange(300))
    assert np.array_equal(perm[matching.latent_b], matching.latent_a)  # copy row j is latent perm[j]
    np.testing.assert_allclose(matching.cosine, 1.0, atol=1e-5)


def test_random_coder_matches_at_chance():
    decoder = random_decoder(256, 64, seed=3)
    controls = decoder_controls(CoderData("tiny/x", decoder), seed=0)
    self_copy, chance = controls.values[("decoder_cosine", "self")], controls.values[("decoder_cosine", "random")]
    np.testing.assert_allclose(self_copy, 1.0, atol=1e-5)
    # An independently drawn random coder matches exactly as well as the control says chance is...
    other = compare_coders(CoderData("tiny/x", decoder), CoderData("tiny/y", random_decoder(256, 64, seed=9)))
    assert abs(other.values[("decoder_cosine", "none")].mean() - chance.mean()) < 0.02
    # ...which is well below a planted relation and below the largest cosine of 256 random pairs in 64 dims.
    planted, _ = _noisy_permuted_copy(decoder, seed=4, noise=0.05)
    assert match_latents(decoder, planted).cosine.mean() > 0.9
    assert 0.1 < chance.mean() < np.sqrt(2 * np.log(256 * 256) / 64)


def test_sparse_topk_agrees_with_dense_hungarian():
    decoder = random_decoder(400, 32, seed=5)
    noisy, _ = _noisy_permuted_copy(decoder, seed=6, noise=0.08)
    for b in (noisy, noisy[:250], random_decoder(500, 32, seed=7)):  # square, fewer, more latents
        dense, sparse = hungarian_matching(decoder, b), sparse_topk_matching(decoder, b, top_k=8)
        assert len(dense.latent_a) == len(sparse.latent_a) == min(len(decoder), len(b))
        assert sparse.cosine.sum() <= dense.cosine.sum() + 1e-4  # dense is the optimum...
        assert sparse.cosine.sum() >= dense.cosine.sum() - 0.01 * len(dense.cosine)  # ...sparse within 1%
    dense, sparse = hungarian_matching(decoder, noisy), sparse_topk_matching(decoder, noisy)
    assert dict(zip(dense.latent_a, dense.latent_b)) == dict(zip(sparse.latent_a, sparse.latent_b))


def test_different_model_widths_are_refused():
    with pytest.raises(MatchingError, match="widths differ"):
        match_latents(random_decoder(10, 16, 0), random_decoder(10, 24, 0))


def test_activation_correlation_equals_dense_computation():
    rng = np.random.default_rng(0)
    n_rows, ctx_len, n_latents = 6, 10, 12
    cached = [(r, p) for r in range(n_rows) for p in range(1, ctx_len)]  # position 0 (BOS) is never cached

    def records() -> tuple[pa.Table, np.ndarray]:
        dense = np.zeros((n_rows, ctx_len, n_latents))
        for r, p in cached:
            active = rng.choice(n_latents, size=3, replace=False)
            dense[r, p, active] = rng.exponential(size=3)
        dense[:, :, 0] = 0.0  # a dead latent
        r, p, latent = np.nonzero(dense)
        table = pa.table({"row": r.astype(np.int32), "pos": p.astype(np.int16), "latent": latent.astype(np.int32),
                          "activation": dense[r, p, latent].astype(np.float32)})
        flat = np.stack([dense[r, p] for r, p in cached])
        return table, flat.astype(np.float32).astype(np.float64)

    (table_a, dense_a), (table_b, dense_b) = records(), records()
    acts_a = sparse_activations(table_a, n_latents, ctx_len, n_rows)
    acts_b = sparse_activations(table_b, n_latents, ctx_len, n_rows)
    latent_a, latent_b = np.arange(n_latents), rng.permutation(n_latents)
    found = matched_correlations(acts_a, acts_b, latent_a, latent_b, n_tokens=len(cached))
    for i, (a, b) in enumerate(zip(latent_a, latent_b)):
        if a == 0 or b == 0:
            assert np.isnan(found[i])
        else:
            assert found[i] == pytest.approx(np.corrcoef(dense_a[:, a], dense_b[:, b])[0, 1], abs=1e-9)
    np.testing.assert_allclose(matched_correlations(acts_a, acts_a, latent_a[1:], latent_a[1:], len(cached)), 1.0)


def test_unmatchable_coder_is_skipped_with_its_reason():
    coders = {"m/a": CoderData("m/a", random_decoder(20, 8, 0)), "m/b": CoderData("m/b", random_decoder(20, 12, 1))}
    found = coder_similarities("m/a", list(coders), coders.__getitem__)
    assert found.pairs == [] and "widths differ" in found.skipped["m/b"]
    assert found.controls is not None


def test_assets_write_each_pair_once_and_set_neurons_beside_saes(project, monkeypatch, tmp_path):
    """The similarity asset on real caches of the tiny model: each pair once, re-runs replace; MLP neurons (raw and
    top-k) go through the same cache, are skipped by the decoder matching with the reason, and stand beside the
    SAEs in the coder comparison."""
    from dagster import DagsterInstance

    from autointerp_dagster.core.store import ResultsStore
    from autointerp_dagster.definitions import defs
    from autointerp_dagster.partitions import SAE_DIMENSION
    from autointerp_dagster.planning import cache_run_requests

    monkeypatch.setenv("AUTOINTERP_CODERS_PATHS", '[{path: "", kind: neurons, hookpoint: layers.1.mlp}, '
                                          '{path: "", kind: neurons, hookpoint: layers.1.mlp, k: 4}]')
    keys = ["tiny/layers.0/run-a", "tiny/layers.1/run-a", "tiny/layers.1/run-b"]  # 96, 128 and 80 latents
    neurons = ["tiny/layers.1.mlp/neurons", "tiny/layers.1.mlp/neurons-top4"]
    with DagsterInstance.ephemeral(tempdir=str(tmp_path / "dagster")) as instance:
        instance.add_dynamic_partitions(SAE_DIMENSION, sorted(keys + neurons))
        requests = cache_run_requests(keys + neurons, sorted(keys + neurons), "cache_job")
        for job, kwargs in [("inputs_job", {}), *[("cache_job", {"tags": r.tags}) for r in requests]]:
            assert defs.resolve_job_def(job).execute_in_process(instance=instance, **kwargs).success

        def materialize(job: str, asset: str, key: str | None = None):
            result = defs.resolve_job_def(job).execute_in_process(instance=instance, partition_key=key)
            assert result.success
            return result.asset_materializations_for_node(asset)[0].metadata

        store = ResultsStore(project.db_path)
        cached = store.query("SELECT sae, n_latents FROM activation_caches ORDER BY sae").to_pylist()
        assert [r["sae"] for r in cached] == sorted(keys + neurons)
        counts = "SELECT sae_a, sae_b, count(*) AS n FROM latent_matches GROUP BY ALL ORDER BY ALL"
        metadata = materialize("similarity_job", "sae_similarity", keys[1])
        first = store.query(counts).to_pylist()
        assert first == [{"sae_a": keys[0], "sae_b": keys[1], "n": 96}, {"sae_a": keys[1], "sae_b": keys[2], "n": 80}]
        assert metadata["decoder_cosine_self"].value == pytest.approx(1.0, abs=1e-5)
        assert 0 < metadata["decoder_cosine_random"].value < 0.9
        assert "data:image/png;base64," in metadata["similarity"].value
        assert all("no decoder file" in metadata["skipped"].value[key] for key in neurons)
        materialize("similarity_job", "sae_similarity", keys[1])  # a re-run replaces its rows
        assert store.query(counts).to_pylist() == first
        materialize("similarity_job", "sae_similarity", keys[0])  # the other side of a pair replaces it
        assert store.query(counts).to_pylist() == [first[0], {"sae_a": keys[0], "sae_b": keys[2], "n": 80}, first[1]]
        rows = store.query("SELECT sae_a, sae_b, method, control, n_pairs, mean FROM sae_similarity").to_pylist()
        assert len(rows) == len({(r["sae_a"], r["sae_b"], r["method"], r["control"]) for r in rows})
        assert {(r["sae_a"], r["control"]) for r in rows if r["sae_a"] == r["sae_b"]} == {
            (k, c) for k in keys[:2] for c in ("self", "random")}
        correlation = [r for r in rows if r["method"] == "activation_correlation" and r["control"] == "none"]
        assert len(correlation) == 3 and all(r["n_pairs"] > 0 and -1 <= r["mean"] <= 1 for r in correlation)
        matched = store.query("SELECT * FROM latent_matches").to_pylist()
        assert {m["method"] for m in matched} == {"hungarian"}
        assert all(m["explanation_similarity"] is None for m in matched)  # nothing explained in this test

        comparison = materialize("coder_comparison_job", "coder_comparison")
        assert comparison["coders"].value == 5
        assert all(key in comparison["comparison"].value for key in neurons)


def test_coders_side_by_side_show_each_coders_own_score_control_and_difference(store):
    from autointerp_dagster.core.reporting.coders import coder_summaries, format_coder_comparison
    from autointerp_dagster.core.store.tables import SCORES

    rng = np.random.default_rng(0)
    own = {"m/layers.6/sae": rng.uniform(0.7, 0.9, 6), "m/layers.6.mlp/neurons-top32": rng.uniform(0.5, 0.6, 6)}
    rows = []
    for sae, values in own.items():
        for latent, value in enumerate(values):
            for control, auc in (("none", value), ("shuffled", value - 0.2)):
                rows.append({name: None for name in SCORES.names} | {
                    "sae": sae, "latent": latent, "scorer": "detection", "explanation_id": f"{sae}{latent}",
                    "explainer": "ex", "explainer_model": "local:judge", "judge": "local:judge",
                    "scorer_config": "c", "control": control, "status": "ok", "auc": float(auc)})
            # Intruder detection, no explanation: the SAE's latents found at 0.8, the neurons' at 0.4; control 0.25
            rows += [{name: None for name in SCORES.names} | {
                "sae": sae, "latent": latent, "scorer": "intruder", "judge": "local:judge",
                "scorer_config": "intruder-5w-x", "control": control, "status": "ok", "accuracy": accuracy}
                for control, accuracy in (("none", 0.8 if "sae" in sae else 0.4), ("mixed", 0.25))]
    store.replace_rows("scores", pa.Table.from_pylist(rows, schema=SCORES), "true")
    reports = coder_summaries(store, [*own, "m/layers.7/unscored"], "ex", "local:judge")
    text = format_coder_comparison(reports)
    lines = text.splitlines()
    auc_block = lines[lines.index("detection auc [local:judge c]") + 1:]
    for sae, values in own.items():
        line = next(line for line in auc_block if line.strip().startswith(sae))
        # own mean, shuffled mean and their difference (0.2 for every latent, so its interval is a point)
        assert f"{values.mean():.3f} [" in line and f"{values.mean() - 0.2:.3f} [" in line
        assert "0.200 [0.200, 0.200]" in line and line.endswith(" 6")
    assert "not scored yet: m/layers.7/unscored" in text
    intruder = lines[lines.index("intruder accuracy [local:judge intruder-5w-x] (control: mixed)") + 1:][:2]
    assert intruder[0].split()[:6] == ["m/layers.6/sae", "0", "0.800", "[0.800,", "0.800]", "0.250"]
    assert intruder[1].split()[:3] == ["m/layers.6.mlp/neurons-top32", "0", "0.400"]
    assert "0.550 [0.550, 0.550]" in intruder[0] and "0.150 [0.150, 0.150]" in intruder[1]


def test_controls_of_a_large_coder_use_a_bounded_subset(monkeypatch):
    from autointerp_dagster.core.similarity import pairs

    monkeypatch.setattr(pairs, "DENSE_LIMIT", 50)
    controls = pairs.decoder_controls(CoderData("m/big", random_decoder(120, 16, 0)))
    assert controls.n_latents_a == 50 and len(controls.values[("decoder_cosine", "random")]) == 50
    np.testing.assert_allclose(controls.values[("decoder_cosine", "self")], 1.0, atol=1e-5)


def test_coder_comparison_names_a_control_other_than_the_shuffled_explanation():
    """Intervention has two controls a coder: the random-latent one gets its own, labelled block."""
    from autointerp_dagster.core.reporting.coders import format_coder_comparison
    from autointerp_dagster.core.reporting.summary import CoderSummary, ScorerSummary

    own, shuffled, random_latent = (0.5, 0.1, 0.9), (0.1, 0.0, 0.2), (0.3, 0.2, 0.4)
    scorers = [ScorerSummary("intervention", "log_prob_gain", "lm cfg", 4, own, shuffled, (0.4, 0.1, 0.7)),
               ScorerSummary("intervention", "log_prob_gain", "lm cfg", 4, own, random_latent, (0.2, 0.0, 0.4),
                             control="random_latent")]
    text = format_coder_comparison([CoderSummary("sae-a", "x", "m", latents_explained=4, scorers=scorers)])
    lines = text.splitlines()
    first = lines.index("intervention log_prob_gain [lm cfg]")
    second = lines.index("intervention log_prob_gain [lm cfg] (control: random latent)")
    assert "0.100 [0.000, 0.200]" in lines[first + 1] and "0.300 [0.200, 0.400]" in lines[second + 1]
