"""Explaining latents through a real LLMClient against the HTTP stub server and a DuckDB store."""

from __future__ import annotations

import dataclasses
import re

import pytest

from autointerp_dagster.core.explain.explainers import (
    ExplainerConfig,
    ExplainItem,
    explain_latents,
    explainer_id,
)
from autointerp_dagster.core.prompts.explainer import INACTIVE_HEADER, explanation_retry_message
from autointerp_dagster.core.sampling import ACTIVATING, HARD_NEGATIVE, Example
from tests.openai_stub_server import Fault, StubLLMServer, stub_client


def make_example(text: str, active_words: set[str], kind: str = ACTIVATING) -> Example:
    """Word tokens (with their leading space); the latent fires at 1.0 on `active_words`."""
    tokens = re.findall(r"\s*\S+", text)
    acts = [1.0 if t.strip(" .,;!?").lower() in active_words else 0.0 for t in tokens]
    return Example(
        tokens=tuple(tokens),
        activations=tuple(acts),
        normalized=tuple(int(10 * a) for a in acts),
        kind=kind,
        row=0,
        start=0,
    )


WATER = [
    make_example("The boat drifted down the river at dawn.", {"river"}),
    make_example("She filled a glass with cold water.", {"water"}),
    make_example("Waves broke against the sea wall all night.", {"sea"}),
]
SUN = [make_example("The sun rose over the desert sand.", {"sun"})]
SILENT = [make_example("The river bank was covered in moss.", set(), kind=HARD_NEGATIVE)]


def answer_by_topic(messages: list[dict]) -> str:
    """Explains from the examples shown in the last examples message."""
    shown = next(m["content"] for m in reversed(messages) if "Example 1:" in m["content"])
    if "<<river>>" in shown:
        return "The marked words are bodies of water.\n[EXPLANATION]: water, rivers, seas"
    return "I am not sure what these have in common."  # no explanation line


def test_explanations_are_parsed_and_logged(store):
    with StubLLMServer(reply=answer_by_topic) as server:
        results = explain_latents(
            stub_client(server, store, concurrency=4), [ExplainItem(7, WATER), ExplainItem(9, SUN)], ExplainerConfig()
        )
    ok, failed = results
    assert (ok.latent, ok.status, ok.explanation, ok.error) == (7, "ok", "water, rivers, seas", None)
    assert ok.raw_answer.startswith("The marked words")
    assert len(ok.call_ids) == 1 and ok.prompt_tokens > 0 and ok.completion_tokens > 0
    assert (failed.latent, failed.status, failed.explanation) == (9, "failed", None)
    assert len(failed.call_ids) == 2  # the first try and exactly one retry
    assert server.call_count == 3
    logged = store.query("SELECT call_id FROM llm_calls").column("call_id").to_pylist()
    assert sorted(logged) == sorted(ok.call_ids + failed.call_ids)


def test_unparseable_answer_is_retried_once_and_the_retry_is_used(store):
    with StubLLMServer(reply=answer_by_topic) as server:
        server.enqueue("Let me think about it.")
        [result] = explain_latents(stub_client(server, store, concurrency=4), [ExplainItem(1, WATER)])
    assert server.call_count == 2
    assert (result.status, result.explanation, result.error) == ("ok", "water, rivers, seas", None)
    retry = server.requests[1].messages
    assert retry[-2] == {"role": "assistant", "content": "Let me think about it."}
    assert retry[-1] == explanation_retry_message()
    assert retry[:-2] == server.requests[0].messages


def test_double_parse_failure_is_a_failure_without_explanation_text(store):
    with StubLLMServer(reply="These examples are hard to read.") as server:
        [result] = explain_latents(stub_client(server, store, concurrency=4), [ExplainItem(3, WATER)])
    assert server.call_count == 2
    assert result.status == "failed" and result.explanation is None
    assert result.raw_answer == "These examples are hard to read."
    assert "after one retry" in result.error
    assert len(result.call_ids) == 2


PREFILL = ExplainerConfig(reasoning=False, prefill=True, few_shot=False, show_activations=False, max_tokens=32,
                          digest="none")


def test_prefilled_answer_is_completed_up_to_the_newline(store):
    with StubLLMServer(reply=" water and rivers\nExample 4: more text") as server:
        [result] = explain_latents(stub_client(server, store, concurrency=4), [ExplainItem(1, WATER)], PREFILL)
    [request] = server.requests
    assert request.messages[-1] == {"role": "assistant", "content": "[EXPLANATION]: The marked words are"}
    assert request.body["stop"] == ["\n"]
    assert (result.status, result.explanation) == ("ok", "The marked words are water and rivers")
    assert result.raw_answer == "[EXPLANATION]: The marked words are water and rivers"


def test_empty_prefilled_answer_is_retried_with_the_prefill_again(store):
    with StubLLMServer(reply=" rivers") as server:
        server.enqueue("\nnothing on the answer line")
        [result] = explain_latents(stub_client(server, store, concurrency=4), [ExplainItem(1, WATER)], PREFILL)
    first, retry = (r.messages for r in server.requests)
    assert retry[:-3] == first[:-1]
    started = {"role": "assistant", "content": "[EXPLANATION]: The marked words are"}
    assert retry[-3:] == [started, explanation_retry_message(), started]
    assert (result.status, result.explanation, len(result.call_ids)) == ("ok", "The marked words are rivers", 2)


def test_prefill_excludes_reasoning():
    with pytest.raises(ValueError, match="reasoning"):
        ExplainerConfig(prefill=True, reasoning=True)


def test_server_error_is_retried_by_the_client(store):
    with StubLLMServer(reply=answer_by_topic) as server:
        server.enqueue(Fault.server_error(500))
        [result] = explain_latents(stub_client(server, store, concurrency=4), [ExplainItem(1, WATER)])
    assert server.call_count == 2
    assert result.status == "ok" and result.explanation == "water, rivers, seas"


def test_transport_failure_is_recorded_and_not_retried_as_a_parse_failure(store):
    with StubLLMServer(reply=Fault.http(400, "context length exceeded")) as server:
        [result] = explain_latents(stub_client(server, store, concurrency=4), [ExplainItem(1, WATER)])
    assert server.call_count == 1  # 400 is final for the client; no explanation retry either
    assert result.status == "failed" and result.explanation is None and result.raw_answer is None
    assert "context length exceeded" in result.error
    assert len(result.call_ids) == 1


def test_latent_without_examples_fails_alone(store):
    with StubLLMServer(reply=answer_by_topic) as server:
        client = stub_client(server, store, concurrency=4)
        empty, ok = explain_latents(client, [ExplainItem(0, []), ExplainItem(1, WATER)])
    assert server.call_count == 1
    assert empty.status == "failed" and empty.call_ids == [] and "at least one example" in empty.error
    assert ok.status == "ok"


def test_contrastive_config_shows_hard_negatives_only_when_asked(store):
    item = ExplainItem(1, WATER, hard_negatives=SILENT)
    with StubLLMServer(reply=answer_by_topic) as server:
        client = stub_client(server, store, concurrency=4)
        explain_latents(client, [item], ExplainerConfig())
        explain_latents(client, [item], ExplainerConfig(contrastive=True))
    plain, contrastive = (r.messages[-1]["content"] for r in server.requests)
    assert INACTIVE_HEADER not in plain
    assert INACTIVE_HEADER in contrastive and "river bank was covered" in contrastive


def test_progress_counts_retries(store):
    seen = []
    with StubLLMServer(reply=answer_by_topic) as server:
        explain_latents(
            stub_client(server, store, concurrency=4),
            [ExplainItem(1, WATER), ExplainItem(2, SUN)],
            on_progress=lambda done, total: seen.append((done, total)),
        )
    assert seen[-1] == (3, 3)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_explainer_id_is_stable_and_tracks_every_setting():
    assert explainer_id(ExplainerConfig()) == explainer_id(ExplainerConfig())
    assert explainer_id(ExplainerConfig()).startswith("default-")
    assert explainer_id(ExplainerConfig(contrastive=True)).startswith("contrastive-")
    assert explainer_id(ExplainerConfig(reasoning=True)).startswith("default-cot-")
    variants = {
        explainer_id(ExplainerConfig(**change))
        for change in ({}, {"few_shot": False}, {"show_activations": False},
                       {"highlight_threshold": 0.5}, {"max_tokens": 128}, {"temperature": 0.7},
                       {"reasoning": True}, {"order": "quantile_spread"}, {"order": "random"})
    }
    assert len(variants) == 9


def shown_order(messages: list[dict]) -> list[str]:
    """The active words of the examples in the last message, in the order shown."""
    return re.findall(r"Example \d+: .*?<<(\w+)", messages[-1]["content"])


def test_examples_are_shown_strongest_first_by_default(store):
    # Given weakest first, as a quantile sort returns them (quantile 0 is the weakest bin).
    weak_to_strong = [dataclasses.replace(e, activations=tuple(a * scale for a in e.activations), quantile=q, row=q)
                      for q, (e, scale) in enumerate(zip(WATER, (0.2, 0.5, 1.0)))]
    with StubLLMServer(reply=answer_by_topic) as server:
        explain_latents(stub_client(server, store, concurrency=4), [ExplainItem(1, weak_to_strong)])
    [request] = server.requests
    assert shown_order(request.messages) == ["sea", "water", "river"]


def test_chain_of_thought_variant_reasons_then_answers_on_the_last_line(store):
    def reply(messages):
        assert "step by step" in messages[0]["content"]
        return ("Step 1. Marked: river, water, sea.\nStep 2. Nature scenes.\nStep 3. All are water.\n"
                "[EXPLANATION]: bodies of water")

    with StubLLMServer(reply=reply) as server:
        [result] = explain_latents(stub_client(server, store, concurrency=4), [ExplainItem(1, WATER)],
                                   ExplainerConfig(reasoning=True, max_tokens=512))
    assert result.ok and result.explanation == "bodies of water" and result.raw_answer.startswith("Step 1.")
    assert not ExplainerConfig().reasoning, "the paper's explainer answers without reasoning"
