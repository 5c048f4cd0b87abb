"""Honest aggregation and controls: what a latent's score rows say, on real DuckDB tables."""

from __future__ import annotations

import pyarrow as pa
import pytest

from autointerp_dagster.core.reporting.summary import coder_summary, format_coder_summary
from autointerp_dagster.core.sampling import ACTIVATING, RANDOM_NEGATIVE, Example, ExampleSets
from autointerp_dagster.core.scorers.common import FAILED, ONE_CLASS, Judgment, summarise
from autointerp_dagster.core.scorers.runs import SHUFFLED, scoring_tasks
from autointerp_dagster.core.store.tables import EXPLANATIONS, JUDGMENTS, SCORES


def judgments(labels, predictions):
    return [Judgment("test", i, y, p, None, None if p is not None else "unparseable")
            for i, (y, p) in enumerate(zip(labels, predictions))]


def test_mostly_unparseable_latent_is_a_failure_not_a_score():
    # 25 of 40 unparseable (what a real server gave): the 15 that parsed must not become a balanced accuracy
    labels = [1] * 20 + [0] * 20
    predictions = [1] * 8 + [None] * 12 + [0] * 7 + [None] * 13
    score = summarise(7, "detection", judgments(labels, predictions))
    assert score.status == FAILED and score.metrics is None and "25 of 40" in score.error
    ok = summarise(7, "detection", judgments(labels, [1] * 18 + [None] * 2 + [0] * 20))
    assert ok.status == "ok" and ok.metrics.balanced_accuracy == 1.0


def test_one_class_is_not_reported_as_balanced_accuracy():
    score = summarise(3, "detection", judgments([1, 1, 1, 1, 1], [1, 1, 0, 1, 1]))
    assert score.status == ONE_CLASS and score.metrics.balanced_accuracy is None and score.metrics.auc is None
    assert score.metrics.recall == 0.8  # what was measured is still there, under its own name


def _example(i: int, kind: str) -> Example:
    return Example((" a", " b"), (1.0, 0.0), (10, 0), kind, i, 0)


def test_shuffled_control_borrows_another_latent_deterministically():
    sets = {latent: ExampleSets(latent, test=[_example(i, ACTIVATING) for i in range(3)],
                                random_negatives=[_example(i, RANDOM_NEGATIVE) for i in range(3)])
            for latent in (1, 2, 3)}
    explained = {1: {"explanation": "one", "explanation_id": "e1"}, 2: {"explanation": "two", "explanation_id": "e2"}}
    pool = {1: "one", 2: "two", 9: "nine"}
    tasks = scoring_tasks("m/h", explained, sets, pool, "random", seed=0)
    assert [(t.item.latent, t.control) for t in tasks] == [(1, "none"), (1, SHUFFLED), (2, "none"), (2, SHUFFLED)]
    for own, control in zip(tasks[::2], tasks[1::2]):
        assert control.control_latent != own.item.latent and control.item.explanation == pool[control.control_latent]
        assert control.item.activating == own.item.activating and control.explanation_id == own.explanation_id
    assert tasks == scoring_tasks("m/h", explained, sets, pool, "random", seed=0)
    alone = scoring_tasks("m/h", {1: explained[1]}, sets, {1: "one"}, "random", seed=0)
    assert [t.control for t in alone] == ["none"]  # no other latent: no control, not a fake one


def _score_row(latent, control, auc, explanation_id="e"):
    return {"sae": "s", "latent": latent, "scorer": "embedding", "explanation_id": f"{explanation_id}{latent}",
            "explainer": "x", "explainer_model": "local:m", "mode": "embedding", "judge": "all-MiniLM-L6-v2",
            "scorer_config": "c", "control": control, "control_latent": None, "status": "ok", "error": None,
            "accuracy": None, "balanced_accuracy": None, "precision": None, "recall": None, "f1": None, "auc": auc,
            "ci_low": None, "ci_high": None, "auc_ci_low": None, "auc_ci_high": None, "n_examples": 4, "n_failed": 0,
            "true_positive": None, "false_positive": None, "true_negative": None, "false_negative": None,
            "call_ids": [], "prompt_tokens": 0, "completion_tokens": 0, "created_at": None}


def test_summary_shows_own_beside_shuffled_and_their_paired_difference(store):
    own = [0.9, 0.8, 0.7, 0.95, 0.85, 0.75, 0.9, 0.8]  # 8 latents: at 4, a 95% interval rightly spans 0
    shuffled = [0.5, 0.6, 0.45, 0.5, 0.55, 0.5, 0.6, 0.45]
    rows = [_score_row(i, "none", a) for i, a in enumerate(own)] + [
        _score_row(i, "shuffled", b) for i, b in enumerate(shuffled)] + [_score_row(9, "none", 0.99)]  # no control
    store.replace_rows("scores", pa.Table.from_pylist(rows, schema=SCORES), "sae = ?", ["s"])
    report = coder_summary(store, "s", "x", "local:m")
    [embedding] = [s for s in report.scorers if s.scorer == "embedding"]
    assert embedding.n_latents == 8  # latent 9 has no control, so it is not in the comparison
    assert embedding.own[0] == pytest.approx(sum(own) / 8) and embedding.shuffled[0] == pytest.approx(
        sum(shuffled) / 8)
    assert embedding.difference[0] == pytest.approx((sum(own) - sum(shuffled)) / 8)
    assert 0 < embedding.difference[1] <= embedding.difference[0] <= embedding.difference[2]
    assert "shuffled (control)" in format_coder_summary(report) and "bootstrap-t" in format_coder_summary(report)


def test_replaced_explanation_takes_its_scores_and_judgments_with_it(store):
    explanation = {"sae": "s", "latent": 1, "explainer": "x", "explanation_id": "old", "status": "ok",
                   "explanation": "old text", "error": None, "raw_answer": None, "backend": "local", "model": "m",
                   "call_ids": [], "prompt_tokens": 0, "completion_tokens": 0, "created_at": None}
    store.replace_rows("explanations", pa.Table.from_pylist([explanation], schema=EXPLANATIONS), "sae = ?", ["s"])
    store.replace_rows("scores", pa.Table.from_pylist([{**_score_row(1, "none", 0.7), "explanation_id": "old"}],
                                                      schema=SCORES), "sae = ?", ["s"])
    judgment = {"sae": "s", "latent": 1, "scorer": "detection", "explanation_id": "old", "judge": "j",
                "scorer_config": "c", "control": "none", "example_set": "test", "example_idx": 0, "label": 1,
                "prediction": 1, "probability": None, "error": None}
    store.replace_rows("judgments", pa.Table.from_pylist([judgment], schema=JUDGMENTS), "sae = ?", ["s"])
    assert store.delete_orphan_scores("s", 0, 10) == 0  # the explanation still exists
    store.replace_rows("explanations", pa.Table.from_pylist([{**explanation, "explanation_id": "new"}],
                                                            schema=EXPLANATIONS), "sae = ?", ["s"])
    assert store.delete_orphan_scores("s", 0, 10) == 2
    assert store.query("SELECT count(*) AS n FROM judgments").to_pylist() == [{"n": 0}]
    assert store.query("SELECT count(*) AS n FROM scores").to_pylist() == [{"n": 0}]


def test_compare_two_judges_pairs_the_same_latents(store, tmp_path):
    from autointerp_dagster.core.reporting.compare import compare

    rows = [{**_score_row(i, "none", 0.8 + 0.02 * i), "judge": "big"} for i in range(5)]
    rows += [{**_score_row(i, "none", 0.6 + 0.01 * i), "judge": "small"} for i in range(1, 6)]  # 5 only here
    store.replace_rows("scores", pa.Table.from_pylist(rows, schema=SCORES), "sae = ?", ["s"])
    [result] = compare(store, "judge", "big", "small", "auc")
    assert result.n_latents == 4  # latents 1-4: scored by both judges
    expected = sum((0.8 + 0.02 * i) - (0.6 + 0.01 * i) for i in range(1, 5)) / 4
    assert result.difference[0] == pytest.approx(expected) and result.difference[1] > 0
    with pytest.raises(ValueError, match="compare by one of"):
        compare(store, "sae; DROP TABLE scores", "a", "b")


def test_compare_pins_the_explainer_model_so_no_latent_pairs_twice(store):
    """One explainer configuration run with two LLMs, against the baseline: each latent pairs once per model."""
    from autointerp_dagster.core.reporting.compare import compare
    from autointerp_dagster.core.reporting.summary import baseline_comparison

    rows = [{**_score_row(i, "none", 0.9, "big"), "explainer_model": "openai:big"} for i in range(4)]
    rows += [{**_score_row(i, "none", 0.7, "small"), "explainer_model": "openai:small"} for i in range(4)]
    rows += [{**_score_row(i, "none", 0.6, "top"), "explainer": "top-tokens-3", "explainer_model": "none:top-tokens"}
             for i in range(4)]
    store.replace_rows("scores", pa.Table.from_pylist(rows, schema=SCORES), "sae = ?", ["s"])
    with pytest.raises(ValueError, match="more than once.*openai:big / none:top-tokens"):
        compare(store, "explainer", "x", "top-tokens-3")
    for model, gain in (("openai:big", 0.3), ("openai:small", 0.1)):
        [result] = compare(store, "explainer", "x", "top-tokens-3", models=(model, "none:top-tokens"))
        assert result.n_latents == 4 and result.difference[0] == pytest.approx(gain)
        [auc] = [c for c in baseline_comparison(store, "s", ("x", model), ("top-tokens-3", "none:top-tokens"))
                 if c.metric == "auc"]
        assert auc.n_latents == 4 and auc.difference[0] == pytest.approx(gain)
    [models] = compare(store, "explainer_model", "openai:big", "openai:small")  # the same explainer pinned
    assert models.n_latents == 4 and models.difference[0] == pytest.approx(0.2)


def test_two_judges_or_scorer_configs_are_summarised_apart(store):
    rows = [{**_score_row(i, c, a), "judge": judge, "scorer_config": config}
            for judge, config, a in (("big", "c", 0.9), ("small", "c", 0.5), ("small", "d", 0.7))
            for i in range(3) for c in ("none", "shuffled")]
    store.replace_rows("scores", pa.Table.from_pylist(rows, schema=SCORES), "sae = ?", ["s"])
    report = coder_summary(store, "s", "x", "local:m")
    summaries = [s for s in report.scorers if s.scorer == "embedding"]
    assert sorted((s.judge, round(s.own[0], 6), s.n_latents) for s in summaries) == [
        ("big c", 0.9, 3), ("small c", 0.5, 3), ("small d", 0.7, 3)]
    assert "[small d]" in format_coder_summary(report)
