"""Best-of-k explanations: k draws are k calls (seeded, cached), the choice is made on held-out windows no explainer
or scorer sees, and the chosen draw is compared with the first on the half of them the choice did not see."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autointerp_dagster.core.config import ExplainerConfig, load_settings
from autointerp_dagster.core.explain.best_of import HeldOut, explain_best_of
from autointerp_dagster.core.explain.explainers import ExplainItem, explainer_id
from autointerp_dagster.core.llm import ChatRequest, LLMClient, OpenAIBackend
from autointerp_dagster.core.reporting.best_of import best_of_comparison
from autointerp_dagster.core.sampling import ACTIVATING, RANDOM_NEGATIVE, Example
from autointerp_dagster.core.store import ResultsStore

from .conftest import run_on_scripted_judge, write_sparsify_sae
from .openai_stub_server import StubLLMServer

DIVINE = ["And the LORD said unto Moses", "for God so loved the world", "the LORD is my shepherd",
          "In the beginning God created", "the word of the LORD came", "God saw the light, that it was good",
          "O LORD, how manifold are thy works", "and God blessed them"]
PLAIN = ["the price of wheat rose again", "she walked to the station at noon", "seven ships left the harbour",
         "the committee met on a Tuesday", "rain fell over the northern hills", "he counted the coins twice",
         "a cart rolled down the lane", "the lamp burned until morning"]


def example(text: str, kind: str, row: int) -> Example:
    return Example((text,), (1.0 if kind == ACTIVATING else 0.0,), (1 if kind == ACTIVATING else 0,), kind, row, 0)


def client_for(server: StubLLMServer, tmp_path: Path) -> LLMClient:
    return LLMClient(OpenAIBackend(server.base_url, "stub"), ResultsStore(tmp_path / "r.duckdb"), concurrency=1)


def test_draws_are_separate_seeded_calls_and_cached(tmp_path):
    with StubLLMServer(reply=lambda messages: "an answer") as server:
        client = client_for(server, tmp_path)
        asks = [ChatRequest([{"role": "user", "content": "explain"}], max_tokens=8, temperature=0.7, sample=k)
                for k in range(3)]
        assert all(r.ok for r in client.complete(asks))
        assert server.call_count == 3  # one prompt, three draws: three calls, not one
        assert [r.body.get("seed") for r in server.requests] == [None, 1, 2]
        assert all(r.cached for r in client.complete(asks)) and server.call_count == 3  # a re-run never pays twice


def test_the_draw_that_tells_held_out_windows_apart_is_chosen(tmp_path):
    activating = [example(t, ACTIVATING, i) for i, t in enumerate(DIVINE)]
    silent = [example(t, RANDOM_NEGATIVE, 100 + i) for i, t in enumerate(PLAIN)]
    items = [ExplainItem(3, [example("the LORD our God", ACTIVATING, 50)])]
    config = ExplainerConfig(few_shot=False, digest="none", best_of=3)
    with StubLLMServer(reply=lambda messages: "unused") as server:
        for text in ("[EXPLANATION]: ships and harbours", "[EXPLANATION]: the words LORD and God",
                     "[EXPLANATION]: rainy weather"):
            server.enqueue(text)  # one latent, one request in flight: the draws arrive in order
        chosen, draws = explain_best_of(client_for(server, tmp_path), items, config,
                                        {3: HeldOut(activating, silent)})
        temperatures = [r.body["temperature"] for r in server.requests]
    assert temperatures == [0.0, 0.7, 0.7]  # the first draw keeps explainer.temperature
    assert [d.draw for d in draws] == [0, 1, 2] and [d.chosen for d in draws] == [False, True, False]
    assert chosen[0].explanation == "the words LORD and God"
    assert len(chosen[0].call_ids) == 3 and chosen[0].prompt_tokens == sum(d.result.prompt_tokens for d in draws)
    first, best = draws[0], draws[1]
    assert best.choice_auc > first.choice_auc and best.heldout_auc > first.heldout_auc
    assert best.choice_auc == max(d.choice_auc for d in draws)


def test_ties_keep_the_first_draw_and_a_latent_without_held_out_windows_is_drawn_once(tmp_path):
    items = [ExplainItem(1, [example("the LORD", ACTIVATING, 5)]), ExplainItem(2, [example("God", ACTIVATING, 6)])]
    held_out = {1: HeldOut([example(t, ACTIVATING, i) for i, t in enumerate(DIVINE)],
                           [example(t, RANDOM_NEGATIVE, 100 + i) for i, t in enumerate(PLAIN)])}
    with StubLLMServer(reply=lambda messages: "[EXPLANATION]: the words LORD and God") as server:
        chosen, draws = explain_best_of(client_for(server, tmp_path), items,
                                        ExplainerConfig(few_shot=False, digest="none", best_of=2), held_out)
    assert [(d.latent, d.draw) for d in draws if d.chosen] == [(1, 0), (2, 0)]
    assert [(d.draw, d.choice_auc) for d in draws if d.latent == 2] == [(0, None)]  # no choice: no second draw
    assert server.call_count == 3 and all(r.ok for r in chosen)


def test_best_of_names_its_results_and_needs_held_out_windows(tmp_path):
    plain = ExplainerConfig()
    assert explainer_id(plain) == explainer_id(ExplainerConfig(best_of_temperature=0.9))  # unused at k = 1
    assert explainer_id(ExplainerConfig(best_of=4)) != explainer_id(plain)
    (tmp_path / "a.yaml").write_text(json.dumps({"explainer": {"best_of": 3}, "sampling": {"n_select": 2}}))
    with pytest.raises(ValueError, match="set sampling.n_select to at least 4"):
        load_settings(tmp_path / "a.yaml", environ={})


def test_autointerp_run_keeps_every_draw_and_summarises_chosen_against_first(tmp_path, tiny_model_dir, llm_server):
    home = tmp_path / "home"
    write_sparsify_sae(home / "saes" / "run-a" / "layers.0", 64, 96, 4, seed=1)
    config = {"home": str(home), "model": {"name": str(tiny_model_dir), "alias": "tiny"},
              "coders": {"embedded": None, "latent_ranges": 2},
              "corpus": {"source": "embedded:kjv", "ctx_len": 32, "token_budget": 32 * 60},
              "sampling": {"example_ctx_len": 8, "peak_index": 5, "min_activating": 4, "n_train": 6, "n_test": 6,
                           "n_quantiles": 3, "n_random_negatives": 6, "latents_per_range": 4, "n_select": 8},
              "explainer": {"best_of": 2}, "scoring": {"batch_size": 3}, "intruder": {"enabled": False}}
    (tmp_path / "autointerp.yaml").write_text(json.dumps(config))
    done, variables = run_on_scripted_judge(tmp_path / "autointerp.yaml", llm_server)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    settings = load_settings(tmp_path / "autointerp.yaml", environ=variables)
    from autointerp_dagster.core.store import open_store

    store = open_store(settings)
    sae = "tiny/layers.0/run-a"
    held = store.query("SELECT latent, count(*) FILTER (set = 'select') AS a, count(*) FILTER (set = 'select_random') "
                       "AS s FROM examples WHERE sae = ? GROUP BY latent", [sae]).to_pylist()
    assert held and all(r["a"] > 0 and r["s"] == r["a"] for r in held)
    draws = store.query("SELECT latent, count(*) AS n, sum(chosen::INT) AS chosen FROM explanation_draws "
                        "WHERE sae = ? GROUP BY latent", [sae]).to_pylist()
    explained = store.query("SELECT latent FROM explanations WHERE sae = ? AND explainer LIKE 'default-%' AND "
                            "status = 'ok'", [sae]).to_pylist()
    assert draws and all(r["n"] == 2 and r["chosen"] == 1 for r in draws)
    assert {r["latent"] for r in explained} <= {r["latent"] for r in draws}
    explainer = explainer_id(settings.explainer, settings.steering)
    found = best_of_comparison(store, sae, explainer, "openai:scripted-judge")
    assert found["k"] == 2 and found["latents"] > 0
    # The scripted judge answers every draw alike, so the first draw wins every tie and chosen - first is 0; only
    # where it failed (its first explanation is unparseable, retry included) does the second draw stand in.
    rescued = store.query("SELECT latent FROM explanation_draws WHERE sae = ? AND draw = 0 AND status = 'failed'",
                          [sae]).to_pylist()
    chosen = {r["latent"]: r["draw"] for r in store.query(
        "SELECT latent, draw FROM explanation_draws WHERE sae = ? AND chosen", [sae]).to_pylist()}
    assert len(rescued) == 1 and chosen[rescued[0]["latent"]] == 1
    assert found["later_won"] == 1 and found["difference"][0] == 0
    assert "best-of-2: a later draw chosen for 1 latent(s)" in done.stdout
