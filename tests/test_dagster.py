"""The Dagster layer on real components: definitions, the main job in-process, metadata, the sensor."""

from __future__ import annotations

import os
import shutil

import pytest
from dagster import AssetKey, AssetRecordsFilter, DagsterInstance, SensorResult, SkipReason, build_sensor_context
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from autointerp_dagster.core.store import ResultsStore

from .conftest import write_sparsify_sae

KEYS = ["tiny/layers.0/run-a", "tiny/layers.1/run-a", "tiny/layers.1/run-b"]


@pytest.fixture
def instance(project, monkeypatch):
    from autointerp_dagster.instance import use_dagster_home

    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    use_dagster_home(project)
    with DagsterInstance.get() as instance:
        yield instance
    os.environ.pop("DAGSTER_HOME", None)


def test_definitions_load():
    from dagster import Definitions

    from autointerp_dagster.definitions import defs

    Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    assert {k.to_user_string() for k in graph.get_all_asset_keys()} >= {
        "corpus", "embedded_saes", "activation_cache", "latent_stats"}
    assert graph.get(AssetKey("activation_cache")).pools == {"model"}
    assert graph.get(AssetKey("explanations")).pools == graph.get(AssetKey("scores")).pools == {"llm"}
    assert {job.name for job in defs.resolve_all_job_defs()} >= {"inputs_job", "cache_job", "explain_job",
                                                                 "score_job", "summary_job", "similarity_job",
                                                                 "coder_comparison_job"}


def test_main_job_then_sensor(project, instance, llm_server, capsys):
    from autointerp_dagster.core.cache import ActivationCache, cache_folder
    from autointerp_dagster.definitions import build_resources, defs
    from autointerp_dagster.launch import run_pipeline

    assert run_pipeline(project) == 0
    out = capsys.readouterr().out
    for key in KEYS:
        assert key in out
    # Every run `autointerp run` made is a run of one of the jobs the UI launches.
    jobs = {run.job_name for run in instance.get_runs()}
    assert jobs == {"inputs_job", "cache_job", "explain_job", "score_job", "summary_job", "similarity_job",
                    "coder_comparison_job"}
    # The pools that bound model work hold the configured limits.
    assert instance.event_log_storage.get_concurrency_info("llm").slot_count == project.concurrency.llm_steps
    assert instance.event_log_storage.get_concurrency_info("model").slot_count == project.concurrency.model_steps

    # One caching run covered all three coders (one forward pass), each partition has its own metadata.
    store = ResultsStore(project.db_path)
    caches = {r["sae"]: r for r in store.query("SELECT * FROM activation_caches").to_pylist()}
    assert sorted(caches) == KEYS
    runs = {r.run_id for r in instance.fetch_materializations(
        AssetRecordsFilter(asset_key=AssetKey("activation_cache")), limit=10).records}
    assert len(runs) == 1
    for key in KEYS:
        record = instance.fetch_materializations(
            AssetRecordsFilter(asset_key=AssetKey("activation_cache"), asset_partitions=[key]), limit=1).records[0]
        metadata = record.asset_materialization.metadata
        summary = ActivationCache(cache_folder(project.cache_dir, key)).summary
        assert metadata["nonzeros"].value == summary.nnz == caches[key]["nnz"]
        assert metadata["tokens"].value == summary.encoded_tokens
        assert "data:image/png;base64," in metadata["firing_frequency_histogram"].value
    # The two coders on layers.1 kept separate caches of their own widths.
    assert caches["tiny/layers.1/run-a"]["n_latents"] == 128 and caches["tiny/layers.1/run-b"]["n_latents"] == 80

    stats = store.query("SELECT sae, count(*) AS n, count(DISTINCT latent) AS d FROM latent_stats "
                        "GROUP BY sae ORDER BY sae")
    assert stats.to_pylist() == [
        {"sae": KEYS[0], "n": 96, "d": 96}, {"sae": KEYS[1], "n": 128, "d": 128}, {"sae": KEYS[2], "n": 80, "d": 80}]

    # Interpretation: one sampled latent per (sae, range); the scripted judge's unparseable answer (and its
    # unparseable retry) is a recorded failure, not a fake explanation; the others are scored three ways.
    explained = store.query("SELECT * FROM explanations WHERE backend != 'none' ORDER BY sae, latent").to_pylist()
    assert 20 <= len(explained) <= 24
    # The top-tokens baseline explains every sampled latent from its digest, with no LLM call.
    baseline = store.query("SELECT * FROM explanations WHERE backend = 'none' ORDER BY sae, latent").to_pylist()
    assert [(b["sae"], b["latent"], b["status"]) for b in baseline] == [
        (e["sae"], e["latent"], "ok") for e in explained]
    assert all(b["explanation"].startswith('the words "') and not b["call_ids"] for b in baseline)
    digest = store.query("SELECT kind, count(DISTINCT (sae, latent)) AS n FROM latent_digest GROUP BY kind "
                         "ORDER BY kind").to_pylist()
    assert digest == [{"kind": "promoted", "n": len(explained)}, {"kind": "top_activating", "n": len(explained)}]
    assert {(e["sae"], e["latent"]) for e in explained} == {
        (r["sae"], r["latent"]) for r in store.query("SELECT * FROM latent_sampling WHERE status = 'ok'").to_pylist()}
    failed = [e for e in explained if e["status"] == "failed"]
    assert len(failed) == 1 and failed[0]["explanation"] is None and "unparseable" in failed[0]["error"]
    scored = store.query("SELECT scorer, control, count(*) AS n, count(balanced_accuracy) AS with_value, "
                         "min(balanced_accuracy) AS lo, max(balanced_accuracy) AS hi FROM scores "
                         "WHERE explainer_model != 'none:top-tokens' "
                         "AND scorer IN ('detection', 'embedding', 'fuzzing') "
                         "GROUP BY ALL ORDER BY scorer, control").to_pylist()
    baseline_scored = store.query("SELECT scorer, control, count(*) AS n FROM scores WHERE explainer_model = "
                                  "'none:top-tokens' GROUP BY ALL ORDER BY scorer, control").to_pylist()
    assert baseline_scored == [{"scorer": s, "control": c, "n": len(baseline)}  # baseline_judged_by: detection
                               for s in ("detection", "embedding") for c in ("none", "shuffled")]
    assert [(r["scorer"], r["control"]) for r in scored] == [
        (s, c) for s in ("detection", "embedding", "fuzzing") for c in ("none", "shuffled")]
    for row in scored:  # every explained latent beside a control borrowed from another latent of its SAE
        assert row["n"] == len(explained) - 1 and row["with_value"] == row["n"] and 0 <= row["lo"] <= row["hi"] <= 1
    borrowed = store.query("SELECT s.sae, s.latent, s.control_latent, e.sae AS source_sae FROM scores s JOIN "
                           "explanations e ON e.sae = s.sae AND e.latent = s.control_latent "
                           "AND e.explainer = s.explainer WHERE s.control = 'shuffled' AND e.status = 'ok' "
                           "AND e.backend != 'none'").to_pylist()
    assert len(borrowed) == 5 * (len(explained) - 1)  # detection, fuzzing, embedding, surprisal, intervention
    assert all(r["control_latent"] != r["latent"] and r["source_sae"] == r["sae"] for r in borrowed)
    judged = store.query("SELECT count(*) AS n FROM judgments j JOIN explanations e USING (explanation_id) "
                         "WHERE scorer = 'detection' AND control = 'none' AND e.backend != 'none'").to_pylist()[0]["n"]
    scored_examples = store.query(
        "SELECT count(*) AS n FROM examples x JOIN explanations e USING (sae, latent) "
        "WHERE e.status = 'ok' AND e.backend != 'none' AND x.set IN ('test', 'random', 'hard_negative')"
    ).to_pylist()[0]["n"]
    assert judged == scored_examples > 10 * (len(explained) - 1)  # every held-out example judged once
    # The subject model's own scorers, judged by it (the tiny model), beside the same controls.
    subject_rows = store.query("SELECT scorer, control, count(*) AS n, count(auc) AS with_auc, "
                               "count(log_prob_gain) AS with_gain FROM scores WHERE judge = ? GROUP BY ALL "
                               "ORDER BY scorer, control", [project.model.name]).to_pylist()
    assert [(r["scorer"], r["control"]) for r in subject_rows] == [
        ("intervention", "none"), ("intervention", "random_latent"), ("intervention", "shuffled"),
        ("surprisal", "none"), ("surprisal", "shuffled")]
    for row in subject_rows:
        assert row["n"] == len(explained) - 1 and row["with_auc"] == row["n"]
        assert row["with_gain"] == (row["n"] if row["scorer"] == "intervention" else 0)
    assert "Interpretation" in out and "LLM calls:" in out and "shuffled (control)" in out
    assert "surprisal" in out and "intervention log_prob_gain" in out
    summary = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=AssetKey("sae_summary"), asset_partitions=[KEYS[0]]), limit=1).records[0]
    metadata = summary.asset_materialization.metadata
    assert "detection" in metadata["summary"].value and "recall by activation quantile" in metadata["summary"].value
    for part in ("own", "shuffled", "own_minus_shuffled"):
        assert f"embedding_auc_{part}" in metadata
    # summary_job also writes each SAE's latent pages, linked from the latent_pages metadata; the failed latent
    # is counted there and has its page.
    reports = [instance.fetch_materializations(AssetRecordsFilter(asset_key=AssetKey("latent_pages"),
                                                                  asset_partitions=[key]), limit=1).records[0]
               .asset_materialization.metadata for key in KEYS]
    assert [m["latent_pages"].value for m in reports] == [
        len([e for e in explained if e["sae"] == key]) for key in KEYS]
    # The latent whose LLM explanation failed still has its top-tokens baseline explanation, so no latent is
    # without an explanation; its page still shows the failure (below).
    assert sum(m["latents_failed"].value for m in reports) == 0
    for meta in reports:
        index = meta["index"].value
        assert index.startswith(str(project.pages_dir)) and os.path.isfile(index)
    failed_page = project.pages_dir / failed[0]["sae"].replace("/", "__") / "latents" / f"{failed[0]['latent']}.html"
    assert "unparseable" in failed_page.read_text()
    # Every pair of coders matched once (96, 80 and 80 latents: every latent of the smaller coder), controls shown.
    assert "Cross-coder similarity" in out and "random_pairs" in out
    matched = "SELECT sae_a, sae_b, count(*) AS n FROM latent_matches GROUP BY ALL ORDER BY ALL"
    assert [r["n"] for r in store.query(matched).to_pylist()] == [96, 80, 80]

    # A second run finds every cache current, re-caches nothing, duplicates no rows, and pays for no LLM call.
    calls = llm_server.call_count
    assert run_pipeline(project) == 0
    assert "0 of 3 coder(s) to cache" in capsys.readouterr().out
    assert llm_server.call_count == calls
    assert store.query("SELECT count(*) AS n FROM latent_stats").to_pylist() == [{"n": 304}]
    assert store.query("SELECT count(*) AS n FROM activation_caches").to_pylist() == [{"n": 3}]
    assert store.query("SELECT count(*) AS n FROM explanations").to_pylist() == [{"n": 2 * len(explained)}]
    # LLM explanations: judge scorers own + shuffled; surprisal own + shuffled; intervention own + shuffled + random
    # latent. The baseline's: detection (baseline_judged_by) and embedding, own + shuffled.
    # Intruder detection needs no explanation: every sampled latent, own tasks and control.
    assert store.query("SELECT count(*) AS n FROM scores").to_pylist() == [
        {"n": (6 + 2 + 3) * (len(explained) - 1) + 4 * len(baseline) + 2 * len(explained)}]
    intruder = store.query("SELECT control, count(*) AS n, count(accuracy) AS with_value, avg(accuracy) AS mean "
                           "FROM scores WHERE scorer = 'intruder' GROUP BY ALL ORDER BY control").to_pylist()
    assert [(r["control"], r["n"]) for r in intruder] == [("mixed", len(explained)), ("none", len(explained))]
    assert all(r["with_value"] > 0 for r in intruder)
    assert "intruder detection, no explanation" in out
    assert store.query("SELECT count(*) AS n FROM steering").to_pylist() == [{"n": 2 * (len(explained) - 1)}]
    assert [r["n"] for r in store.query(matched).to_pylist()] == [96, 80, 80]

    sensor = defs.get_sensor_def("sae_discovery_sensor")
    resources = {"settings": build_resources()["settings"]}
    result = sensor(build_sensor_context(instance=instance, resources=resources))
    assert isinstance(result, SkipReason)

    # A cache is stale once what it was built from changes: the corpus spec, or the model behind the alias.
    from autointerp_dagster.core.cache.plan import plan_caches
    from autointerp_dagster.core.config import load_settings

    assert plan_caches(project, KEYS).changed == []
    for change in ({"corpus.token_budget": 32 * 20}, {"model.name": str(project.model.name) + "/"}):
        moved = load_settings(overrides=change)
        assert moved.alias == project.alias and plan_caches(moved, KEYS).changed == KEYS

    # A new coder appears and another is retrained: the new one gets a partition, both get caching runs.
    write_sparsify_sae(project.watched_sae_dir / "run-c" / "layers.2", 64, 64, 2, seed=9)
    shutil.rmtree(project.watched_sae_dir / "run-b" / "layers.1")
    write_sparsify_sae(project.watched_sae_dir / "run-b" / "layers.1", 64, 80, 3, seed=4)
    result = sensor(build_sensor_context(instance=instance, resources=resources))
    assert isinstance(result, SensorResult)
    assert [r.partition_keys for r in result.dynamic_partitions_requests] == [["tiny/layers.2/run-c"]]
    ranges = sorted((r.tags[ASSET_PARTITION_RANGE_START_TAG], r.tags[ASSET_PARTITION_RANGE_END_TAG])
                    for r in result.run_requests)
    assert ranges == [("tiny/layers.1/run-b", "tiny/layers.2/run-c")]

    # Once requested, the changed coder is not requested again on the next evaluation.
    instance.add_dynamic_partitions("sae", ["tiny/layers.2/run-c"])
    again = sensor(build_sensor_context(instance=instance, resources=resources, cursor=result.cursor))
    assert isinstance(again, SkipReason)


def test_sensor_groups_new_coders_into_one_run(project, instance):
    from autointerp_dagster.definitions import build_resources, defs

    sensor = defs.get_sensor_def("sae_discovery_sensor")
    result = sensor(build_sensor_context(instance=instance, resources={"settings": build_resources()["settings"]}))
    assert result.dynamic_partitions_requests[0].partition_keys == KEYS
    # A fresh home first gets its inputs (the corpus, which examples read), once; then one caching run.
    assert [r.job_name for r in result.run_requests] == ["inputs_job", "cache_job"]
    assert [(r.tags[ASSET_PARTITION_RANGE_START_TAG], r.tags[ASSET_PARTITION_RANGE_END_TAG])
            for r in result.run_requests[1:]] == [(KEYS[0], KEYS[-1])]
    again = sensor(build_sensor_context(instance=instance, resources={"settings": build_resources()["settings"]},
                                        cursor=result.cursor))
    assert "inputs_job" not in [r.job_name for r in getattr(again, "run_requests", None) or []]
