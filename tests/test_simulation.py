"""Simulation scoring: prompt logprobs from the in-process backend and a real HTTP server, and a planted
explanation scored far above its shuffled control."""

from __future__ import annotations

import math
import re

import numpy as np
import pyarrow as pa
import pytest
import torch
from transformers import AutoTokenizer

from autointerp_dagster.core.llm import LocalBackend
from autointerp_dagster.core.llm.types import PromptScoreRequest
from autointerp_dagster.core.prompts import ParseError
from autointerp_dagster.core.prompts.simulation import chat_slot_logprobs, simulation_prompt
from autointerp_dagster.core.reporting.summary import coder_summary, format_coder_summary
from autointerp_dagster.core.sampling import ACTIVATING, RANDOM_NEGATIVE, Example, ExampleSets
from autointerp_dagster.core.scorers.runs import score_rows, scoring_tasks
from autointerp_dagster.core.scorers.simulation import CHAT, SIMULATION, expected_value, simulation_scores
from autointerp_dagster.core.store.tables import SCORES
from tests.openai_stub_server import StubLLMServer, StubReply, stub_client
from tests.test_llm_client import tiny_chat_model_dir  # noqa: F401  (a fixture)

WORDS = ["the", " cat", " sat", " on", " a", " mat", " and", " ran", " far", ",", " then", " slept"]


def test_local_prompt_logprobs_equal_a_full_forward(tiny_chat_model_dir, tmp_path):  # noqa: F811
    backend = LocalBackend(str(tiny_chat_model_dir), tmp_path / "models", quantize="none")
    prompt = simulation_prompt("cats", ["the", " cat", " sat"], max_level=9)
    candidates = tuple(str(d) for d in range(10)) + ("10", "not-a-token")
    tokenizer = AutoTokenizer.from_pretrained(tiny_chat_model_dir)
    encoded = tokenizer(prompt.text, add_special_tokens=False, return_offsets_mapping=True)
    inside = next(start + 1 for start, end in encoded["offset_mapping"] if end - start > 1)
    reply = backend.prompt_logprobs(PromptScoreRequest(prompt.text, prompt.offsets + (inside,), candidates))
    model = backend._model
    with torch.inference_mode():
        full = torch.log_softmax(model(input_ids=torch.tensor([encoded["input_ids"]])).logits[0].float(), dim=-1)
    starts = [start for start, _ in encoded["offset_mapping"]]
    assert reply.tokens_in == len(starts) and reply.logprobs[-1] is None  # inside a token: no boundary
    for offset, got in zip(prompt.offsets, reply.logprobs[:-1]):
        position = starts.index(offset)
        assert set(got) == {str(d) for d in range(10)}  # multi-token candidates are left out
        for candidate, value in got.items():
            [token_id] = tokenizer.encode(candidate, add_special_tokens=False)
            assert value == pytest.approx(float(full[position - 1, token_id]), abs=1e-4)


def test_expected_value_renormalises_over_the_digits():
    assert expected_value({"0": math.log(0.2), "5": math.log(0.2)}) == pytest.approx(2.5)
    assert math.isnan(expected_value({})) and math.isnan(expected_value(None))


def _planted_rule(prompt: str, offset: int) -> dict[str, float]:
    """A judge that follows the explanation: 'the word "W"' predicts 9 on the line of token W, else 0."""
    planted = prompt[offset - 1] == "\t" and re.findall(r'behavior: the word "(.*)"\n', prompt[:offset])
    if not planted:  # not an activation slot of the planted neuron
        return {"x": -0.1}
    word = planted[-1]
    line = prompt[:offset].rsplit("\n", 1)[-1].rstrip("\t")
    high = line.strip() == word
    return {"9": math.log(0.9 if high else 0.02), "0": math.log(0.1 if high else 0.98)}


def _window(rng, word: str | None, row: int, kind: str) -> Example:
    tokens = [WORDS[i] for i in rng.integers(len(WORDS), size=16)]
    levels = [0] * 16
    if word is not None:
        for position in rng.choice(16, size=2, replace=False):
            tokens[position], levels[position] = f" {word}", int(rng.integers(5, 11))
    return Example(tuple(tokens), tuple(float(v) for v in levels), tuple(levels), kind, row, 0, 0)


def _sets(latent: int, word: str, rng) -> ExampleSets:
    return ExampleSets(latent, test=[_window(rng, word, 100 * latent + i, ACTIVATING) for i in range(6)],
                       random_negatives=[_window(rng, None, 100 * latent + 50 + i, RANDOM_NEGATIVE) for i in range(6)])


def _fox_and_owl_tasks(seed: int):
    """Own and shuffled scoring tasks of two latents, 'the word "fox"' and 'the word "owl"', with planted windows."""
    rng = np.random.default_rng(seed)
    sets = {1: _sets(1, "fox", rng), 2: _sets(2, "owl", rng)}
    explained = {1: {"explanation": 'the word "fox"', "explanation_id": "e1"},
                 2: {"explanation": 'the word "owl"', "explanation_id": "e2"}}
    return scoring_tasks("sae", explained, sets, {k: v["explanation"] for k, v in explained.items()}, "random", 0)


def test_planted_explanation_correlates_and_its_shuffled_control_does_not(store):
    tasks = _fox_and_owl_tasks(seed=0)
    with StubLLMServer(prompt_logprobs=_planted_rule) as server:
        client = stub_client(server, store)
        scores = simulation_scores(client, [t.item for t in tasks], max_level=9)
        assert server.call_count == 4 * 12  # one prompt per window: 2 latents x (own, shuffled) x 12 windows
        again = simulation_scores(stub_client(server, store), [t.item for t in tasks], max_level=9)
        assert server.call_count == 4 * 12  # answered from the response cache
    assert [s.correlation for s in again] == [s.correlation for s in scores]
    by_control = {(t.item.latent, t.control): s for t, s in zip(tasks, scores)}
    for latent in (1, 2):
        own, shuffled = by_control[latent, "none"], by_control[latent, "shuffled"]
        assert own.status == "ok" and own.scorer == SIMULATION and own.n_failed == 0
        assert own.correlation > 0.8 and own.correlation_ci_low > 0.5
        assert shuffled.status == "ok" and abs(shuffled.correlation) < 0.2
        assert own.prompt_tokens > 12 * 100 and len(own.call_ids) == 12
        assert {j.example_set for j in own.judgments} == {"test", "random"}
    keys = {"explainer": "x", "explainer_model": "m", "mode": SIMULATION, "judge": "openai:stub",
            "scorer_config": "simulation-0", "created_at": None}
    rows = [score_rows("sae", t, s, keys) for t, s in zip(tasks, scores)]
    store.replace_rows("scores", pa.Table.from_pylist(rows, schema=SCORES), "sae = ?", ["sae"])
    stored = store.query("SELECT latent, control, correlation, correlation_ci_low, auc FROM scores "
                         "WHERE scorer = 'simulation' ORDER BY latent, control").to_pylist()
    assert [(r["latent"], r["control"]) for r in stored] == [(1, "none"), (1, "shuffled"), (2, "none"), (2, "shuffled")]
    assert stored[0]["correlation"] == pytest.approx(by_control[1, "none"].correlation) and stored[0]["auc"] is None
    # The per-SAE summary shows it beside its control, with the paired difference.
    [summary] = coder_summary(store, "sae", "x", "m").scorers
    assert (summary.scorer, summary.metric, summary.n_latents) == ("simulation", "correlation", 2)
    assert summary.own[0] > 0.8 and abs(summary.shuffled[0]) < 0.2
    assert "simulation correlation" in " ".join(format_coder_summary(coder_summary(store, "sae", "x", "m")).split())


def test_a_chat_only_server_fails_every_latent_with_the_reason(store):
    rng = np.random.default_rng(1)
    sets = {1: _sets(1, "fox", rng)}
    tasks = scoring_tasks("sae", {1: {"explanation": 'the word "fox"', "explanation_id": "e1"}}, sets,
                          {1: 'the word "fox"'}, "random", 0)
    with StubLLMServer() as server:  # no prompt_logprobs: /completions answers 404
        [score] = simulation_scores(stub_client(server, store), [t.item for t in tasks], max_level=9)
    assert score.status == "failed" and score.correlation is None
    assert "HTTP 404" in score.error and "simulation.mode: chat" in score.error
    assert score.n_failed == score.n_examples == 12


def _chat_simulator(skip_line_for: str | None = None):
    """A chat model that follows the explanation: it copies each `token<TAB>?` line and writes 9 on the planted
    word's lines, 0 elsewhere, as separate tokens with top logprobs (and drops a line for `skip_line_for`)."""
    def reply(messages):
        explanation, _, lines = messages[-1]["content"].partition("\nTokens:\n")
        planted = re.findall(r'the word "(.*)"', explanation)
        tokens, tops = [], []
        rows = [line.rsplit("\t", 1)[0] for line in lines.splitlines()]
        if planted and planted[0] == skip_line_for:
            rows = rows[1:]
        for row in rows:
            high = bool(planted) and row.strip() == planted[0]
            digit = {"9": math.log(0.9 if high else 0.02), "0": math.log(0.1 if high else 0.98), "\\": -9.0}
            tokens += [row, "\t", "9" if high else "0", "\n"]
            tops += [{row: -0.01, "alt": -6.0}, {"\t": -0.01, " ": -6.0}, digit, {"\n": -0.01}]
        return StubReply("".join(tokens), tops, tokens)
    return reply


def test_chat_mode_simulates_through_a_chat_only_server(store):
    """The chat form on a server without prompt logprobs: the model writes each value, and its top logprobs at
    the value give the prediction; the planted explanation correlates, the shuffled one does not."""
    tasks = _fox_and_owl_tasks(seed=2)
    with StubLLMServer(reply=_chat_simulator()) as server:  # /completions answers 404: chat only
        scores = simulation_scores(stub_client(server, store), [t.item for t in tasks], max_level=9, mode=CHAT)
        assert server.call_count == 4 * 12
        body = server.requests[0].body
        assert body["logprobs"] is True and body["top_logprobs"] == 20 and body["max_tokens"] == 8 * 16 + 16
    by_control = {(t.item.latent, t.control): s for t, s in zip(tasks, scores)}
    for latent in (1, 2):
        own, shuffled = by_control[latent, "none"], by_control[latent, "shuffled"]
        assert own.status == "ok" and own.n_failed == 0 and len(own.call_ids) == 12
        assert own.correlation > 0.8 and own.correlation_ci_low > 0.5
        assert shuffled.status == "ok" and abs(shuffled.correlation) < 0.2


def test_chat_mode_records_a_reply_that_skips_a_line_as_a_failed_window(store):
    tasks = _fox_and_owl_tasks(seed=3)
    own = [t.item for t in tasks if t.control == "none"]
    with StubLLMServer(reply=_chat_simulator(skip_line_for="owl")) as server:
        fox, owl = simulation_scores(stub_client(server, store), own, max_level=9, mode=CHAT)
    assert fox.status == "ok" and fox.correlation > 0.8
    assert owl.status == "failed" and owl.correlation is None and owl.n_failed == 12
    assert "15 activation values for 16 tokens" in owl.error and "all_at_once" not in owl.error
    unreadable = "unreadable simulation: the reply has 15 activation values for 16 tokens"
    assert {j.error for j in owl.judgments} == {unreadable}


def test_chat_slots_follow_the_tokens_a_tokenizer_merges_splits_or_spells_otherwise():
    # a tab merged with its digit counts as the slot; a digit spelt two ways ("0", " 0") is one value whose
    # probabilities add; a byte-fallback token (part of a character) misaligns nothing
    slots = chat_slot_logprobs([{"a": -0.1}, {"\t3": -0.2, "\t0": -1.0}, {"\n": 0.0},
                                {"\ufffd": -0.1}, {"\ufffd": -0.1}, {"\t": 0.0},
                                {"0": math.log(0.5), " 0": math.log(0.3), "1": math.log(0.1), "12": -3.0},
                                {"\n": 0.0}, {"<|im_end|>": 0.0}], 2, max_level=9)
    assert slots[0] == {"3": -0.2, "0": -1.0}
    assert slots[1].keys() == {"0", "1"} and slots[1]["0"] == pytest.approx(math.log(0.8))
    assert expected_value(slots[1]) == pytest.approx(1 / 9)
    with pytest.raises(ParseError, match="2 activation values for 3 tokens"):
        chat_slot_logprobs([{"a": 0.0}, {"\t": 0.0}, {"3": 0.0}, {"b\t": 0.0}, {"1": 0.0}], 3, max_level=9)
    with pytest.raises(ParseError, match="no logprobs"):
        chat_slot_logprobs(None, 1, max_level=9)


def test_simulation_scores_asset_writes_rows_metadata_and_check(store, tmp_path, monkeypatch):
    """The Dagster asset on a seeded store (cache width, explanations, examples) against the planted judge."""
    from dagster import DagsterInstance, materialize

    from autointerp_dagster.assets import simulation_scores
    from autointerp_dagster.core.sampling import examples_to_rows
    from autointerp_dagster.core.store.tables import ACTIVATION_CACHES, EXAMPLES, EXPLANATIONS
    from autointerp_dagster.definitions import build_resources
    from autointerp_dagster.partitions import SAE_DIMENSION, sae_range_key

    rng = np.random.default_rng(2)
    sae = "tiny/layers.1"
    sets = {0: _sets(0, "fox", rng), 1: _sets(1, "owl", rng)}  # range 00-of-08 of 16 latents: 0 and 1
    with StubLLMServer(prompt_logprobs=_planted_rule) as server:
        for name, value in {"HOME": str(tmp_path), "LLM_BACKEND": "openai", "LLM_BASE_URL": server.base_url,
                            "LLM_MODEL": "planted", "SIMULATION_ENABLED": "true", "LATENT_RANGES": "8"}.items():
            monkeypatch.setenv(f"AUTOINTERP_{name}", value)
        from autointerp_dagster.core.config import load_settings
        from autointerp_dagster.core.explain.explainers import explainer_id
        from autointerp_dagster.core.store import ResultsStore

        config = load_settings()
        db = ResultsStore(config.db_path)
        db.replace_rows("activation_caches", pa.Table.from_pylist([{"sae": sae, "n_latents": 16}],
                                                                   schema=ACTIVATION_CACHES), "sae = ?", [sae])
        db.replace_rows("examples", pa.Table.from_pylist(examples_to_rows(sae, sets.values()), schema=EXAMPLES),
                        "sae = ?", [sae])
        db.replace_rows("explanations", pa.Table.from_pylist([
            {"sae": sae, "latent": latent, "explainer": explainer_id(config.explainer, config.steering),
             "explanation_id": f"e{latent}", "status": "ok", "explanation": f'the word "{word}"',
             "backend": "openai", "model": "planted"} for latent, word in ((0, "fox"), (1, "owl"))],
            schema=EXPLANATIONS), "sae = ?", [sae])
        instance = DagsterInstance.ephemeral()
        instance.add_dynamic_partitions(SAE_DIMENSION, [sae])
        result = materialize([simulation_scores], partition_key=sae_range_key(sae, "00-of-08"),
                             resources=build_resources(), instance=instance)
    assert result.success
    [materialization] = result.asset_materializations_for_node("simulation_scores")
    metadata = {k: v.value for k, v in materialization.metadata.items()}
    assert metadata["enabled"] and metadata["latents_scored"] == 2 and metadata["llm_requests"] == 48
    assert metadata["mean_correlation_own"] > 0.8 and abs(metadata["mean_correlation_shuffled"]) < 0.2
    [check] = result.get_asset_check_evaluations()
    assert check.passed
    rows = db.query("SELECT latent, control, status, correlation FROM scores WHERE scorer = 'simulation' "
                    "ORDER BY latent, control").to_pylist()
    assert [(r["latent"], r["control"], r["status"]) for r in rows] == [
        (0, "none", "ok"), (0, "shuffled", "ok"), (1, "none", "ok"), (1, "shuffled", "ok")]
    assert db.query("SELECT count(*) AS n FROM judgments WHERE scorer = 'simulation'").column("n")[0].as_py() == 48
