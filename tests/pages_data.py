"""A results store for the latent-page tests, written through the project's own store (`replace_rows`, the
tables' schemas) with rows shaped like a real run's: one SAE with five explained latents (one of them failed,
tokens holding HTML metacharacters), scores beside shuffled controls, judgments, an activation cache, digest and
matches tables; and a second SAE that has statistics and sampling but no explanation yet."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from autointerp_dagster.core.cache import MANIFEST, CacheSummary
from autointerp_dagster.core.store import TABLES, ResultsStore

SAE = "tiny/layers.1/run-a"
OTHER = "tiny/layers.2/run-a"  # sampled, never explained
LATENTS = [3, 7, 11, 19, 23]
FAILED = 19
# Own detection AUC of each ok latent; the sort test checks the index against this order.
DETECTION_AUC = {3: 0.91, 7: 0.42, 11: 0.77, 23: 0.65}
EXPLANATION = {3: 'tokens like "<b>" & ampersands', 7: "the word LORD", 11: "numbers and counting",
               23: "verbs of motion"}
WORDS = ["In", " the", " beginning", " <b>", " &", ' "quoted"', " LORD", " God", " created", " heaven", "\n", " and"]


def _table(name: str, rows: list[dict]) -> pa.Table:
    schema = TABLES[name]
    return pa.Table.from_pylist([{k: r.get(k) for k in schema.names} for r in rows], schema=schema)


def _window(rng: np.random.Generator, peak: float | None) -> tuple[list[str], list[float]]:
    tokens = [WORDS[i] for i in rng.integers(0, len(WORDS), 12)]
    acts = [0.0] * 12
    if peak is not None:
        acts[8] = peak
        acts[9] = round(peak / 4, 3)
    return tokens, acts


def build_store(home: Path) -> ResultsStore:
    """Fills `home/autointerp.duckdb` and a one-shard activation cache under `home/cache`; returns the store."""
    store = ResultsStore(home / "autointerp.duckdb")
    rng = np.random.default_rng(0)
    everything = f"sae = '{SAE}' OR sae = '{OTHER}'"
    cache = home / "cache" / "tiny"
    cache.mkdir(parents=True)
    records = {"row": [], "pos": [], "latent": [], "activation": []}
    for latent in range(32):
        n = 0 if latent == 30 else 5 + latent
        records["row"] += list(range(n))
        records["pos"] += [1] * n
        records["latent"] += [latent] * n
        records["activation"] += [float(v) for v in np.linspace(0.5, 4.0 + latent, n)]
    pq.write_table(pa.table({"row": pa.array(records["row"], pa.int32()), "pos": pa.array(records["pos"], pa.int32()),
                             "latent": pa.array(records["latent"], pa.int32()),
                             "activation": pa.array(records["activation"], pa.float16())}),
                   cache / "latents-00-of-01.parquet")
    summary = CacheSummary(SAE, str(cache), "c0", 32, 1, 64, 4096, len(records["row"]), 1, 1 / 32, 1.0, 4096.0, 1,
                           "float16", 0)
    (cache / MANIFEST).write_text(json.dumps({"summary": asdict(summary), "range_bounds": [0, 32]}))
    store.replace_rows("activation_caches", _table("activation_caches", [
        {"sae": SAE, "n_latents": 32, "cache_path": str(cache)}, {"sae": OTHER, "n_latents": 32}]), everything)

    stats, sampling, examples, explanations, scores, judgments = [], [], [], [], [], []
    for sae in (SAE, OTHER):
        for latent in range(32):
            n = 0 if latent == 30 else 5 + latent
            stats.append({"sae": sae, "latent": latent, "n_activations": n, "frequency": n / 4096,
                          "max_activation": 4.0 + latent if n else 0.0, "mean_activation": 2.0})
            ok = sae == SAE and latent in LATENTS
            sampling.append({"sae": sae, "latent": latent, "status": "ok" if ok else "skipped",
                             "reason": None if ok else f"{n} activations in the cache, fewer than min_activating=20",
                             "n_activating_windows": n})
    for latent in LATENTS:
        for s, n_windows in (("train", 4), ("test", 4), ("random", 3), ("hard_negative", 2)):
            for idx in range(n_windows):
                peak = (4.0 + latent) * (1 - idx / 8) if s in ("train", "test") else None
                tokens, acts = _window(rng, peak)
                examples.append({"sae": SAE, "latent": latent, "set": s, "idx": idx, "row": idx, "start": 0,
                                 "quantile": 9 - idx if peak else -1, "tokens": tokens, "activations": acts,
                                 "normalized": [min(10, int(np.ceil(10 * a / (4.0 + latent)))) for a in acts]})
        explanation_id = f"e{latent}"
        base = {"sae": SAE, "latent": latent, "explainer": "default-abc", "explanation_id": explanation_id,
                "backend": "local", "model": "tiny-judge", "created_at": datetime(2026, 11, 30, 12, latent)}
        if latent == FAILED:
            explanations.append({**base, "status": "failed", "error": "unparseable answer after one retry",
                                 "raw_answer": "I think <script>alert(1)</script>"})
            continue
        explanations.append({**base, "status": "ok", "explanation": EXPLANATION[latent], "raw_answer": "..."})
        for scorer in ("detection", "fuzzing", "embedding"):
            for control, shift in (("none", 0.0), ("shuffled", -0.3)):
                auc = DETECTION_AUC[latent] + shift if scorer == "detection" else 0.5 + shift / 3
                scores.append({"sae": SAE, "latent": latent, "scorer": scorer, "explanation_id": explanation_id,
                               "explainer": "default-abc", "explainer_model": "local:tiny-judge",
                               "judge": "local:tiny-judge", "scorer_config": "per_example-1", "control": control,
                               "control_latent": 3 if latent != 3 else 7, "status": "ok",
                               "balanced_accuracy": 0.6 + shift, "auc": round(auc, 3), "ci_low": 0.4, "ci_high": 0.8,
                               "auc_ci_low": round(auc - 0.2, 3), "auc_ci_high": min(1.0, round(auc + 0.2, 3)),
                               "n_examples": 8, "n_failed": 0})
        for s, label in (("test", 1), ("random", 0), ("hard_negative", 0)):
            for idx in range(2):
                judgments.append({"sae": SAE, "latent": latent, "scorer": "detection", "explanation_id": explanation_id,
                                  "judge": "local:tiny-judge", "scorer_config": "per_example-1", "control": "none",
                                  "example_set": s, "example_idx": idx, "label": label, "prediction": 1 - idx,
                                  "probability": 0.9 - 0.5 * idx})
    for name, rows in (("latent_stats", stats), ("latent_sampling", sampling), ("examples", examples),
                       ("explanations", explanations), ("scores", scores), ("judgments", judgments)):
        store.replace_rows(name, _table(name, rows), everything)
    with store.connect() as con:  # the contracts of issues 9 and 11 (their writers add these tables)
        con.execute("CREATE TABLE latent_digest (sae VARCHAR, latent INTEGER, kind VARCHAR, rank INTEGER, "
                    "token VARCHAR, value DOUBLE)")
        con.execute("INSERT INTO latent_digest VALUES (?, 3, 'promoted', 0, ' <heaven>', 4.5), "
                    "(?, 3, 'promoted', 1, ' earth', 3.25), (?, 3, 'top_activating', 0, ' LORD', 12)", [SAE] * 3)
        con.execute("CREATE TABLE latent_matches (sae_a VARCHAR, latent_a INTEGER, sae_b VARCHAR, latent_b INTEGER, "
                    "method VARCHAR, decoder_cosine DOUBLE, activation_correlation DOUBLE, "
                    "explanation_similarity DOUBLE)")
        con.execute("INSERT INTO latent_matches VALUES (?, 3, ?, 5, 'hungarian', 0.81, 0.6, 0.4), "
                    "(?, 7, ?, 11, 'hungarian', 0.5, 0.2, 0.1)", [SAE, OTHER, OTHER, SAE])
    return store
