"""Cost in money: tokens each model spent (explainer and judges alike) priced by `llm.prices`."""

from __future__ import annotations

import pytest

from autointerp_dagster.core.config import Price, load_settings
from autointerp_dagster.core.reporting.cost import format_cost, llm_cost
from autointerp_dagster.core.reporting.summary import coder_summary, format_coder_summary
from autointerp_dagster.core.store import ResultsStore, writes
from tests.test_store_backends import _explanation, _score


def test_each_models_tokens_priced_and_projected(tmp_path):
    store = ResultsStore(tmp_path / "r.duckdb")
    explained = [{**_explanation(i, f"about {i}"), "prompt_tokens": 1_000, "completion_tokens": 100} for i in range(4)]
    writes.write_explanations(store, "m/h", 0, 4, "x", "openai", "big", explained)
    scores = [{**_score(i, "detection", e["explanation_id"], 0.7), "judge": "openai:judge",
               "prompt_tokens": 3_000, "completion_tokens": 10} for i, e in enumerate(explained)]
    owner = writes.ScoreOwner(("detection",), ("openai:judge",), ("c",), (("x", "openai:big"),))
    writes.write_scores(store, "m/h", 0, 4, owner, scores, [])
    summary = coder_summary(store, "m/h", "x", "openai:big")
    assert summary.tokens_by_model == {"openai:big": (4_000, 400), "openai:judge": (12_000, 40)}
    prices = {"big": Price(model="big", prompt=2.0, completion=8.0),
              "judge": Price(model="judge", prompt=0.5, completion=1.0)}
    cost = llm_cost(summary.tokens_by_model, prices)
    expected = (4_000 * 2 + 400 * 8 + 12_000 * 0.5 + 40 * 1) / 1e6
    assert cost.dollars == pytest.approx(expected) and cost.per(4) == pytest.approx(expected / 4)
    text = format_coder_summary(summary, prices)
    assert f"${expected / 4:,.4f} a latent" in text and f"${expected / 4 * 1e6:,.0f} for 1M latents" in text
    unknown = format_coder_summary(summary, {"big": prices["big"]})
    assert "cost: unknown, no price for openai:judge" in unknown  # never a partial sum shown as the cost
    assert "cost:" not in format_coder_summary(summary)  # no price table given: no cost line


def test_in_process_models_cost_nothing_and_prices_load_from_settings():
    free = llm_cost({"local:embedded:qwen": (10**6, 10**5), "none:top-tokens": (0, 0)}, {})
    assert free.dollars == 0.0
    assert format_cost(free, 8) == "cost: no API fees (in-process models; their cost is machine time)"
    settings = load_settings(None, environ={"AUTOINTERP_LLM_PRICES": "[{model: big, prompt: 2, completion: 8}]"})
    assert settings.llm.price_table == {"big": Price(model="big", prompt=2.0, completion=8.0)}
