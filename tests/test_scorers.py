"""Detection, fuzzing and embedding scoring through a real LLMClient, HTTP stub server and DuckDB store."""

from __future__ import annotations

import math
import re
import zlib

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score, roc_auc_score

from autointerp_dagster.core.models.embedded import kjv_documents
from autointerp_dagster.core.sampling import ACTIVATING, HARD_NEGATIVE, RANDOM_NEGATIVE, Example
from autointerp_dagster.core.scorers import (
    ScoreItem,
    ScorerConfig,
    ScoringExample,
    embedding_scores,
    score_latents,
)
from tests.openai_stub_server import Fault, StubLLMServer, StubReply, stub_client

WATER_WORDS = {"water", "river", "rivers", "sea", "seas", "lake", "rain", "ocean", "waves", "stream", "flood"}


def make_example(text: str, kind: str) -> Example:
    """Word tokens (with their leading space); activating examples fire on their water words."""
    tokens = re.findall(r"\s*\S+", text)
    acts = [
        1.0 if kind == ACTIVATING and t.strip(" .,;:!?").lower() in WATER_WORDS else 0.0 for t in tokens
    ]
    return Example(tuple(tokens), tuple(acts), tuple(int(10 * a) for a in acts), kind, row=0, start=0)


WATER_TEXTS = [
    "The boat drifted slowly down the river at dawn.",
    "She filled a tall glass with cold water from the tap.",
    "Waves crashed against the old sea wall all night.",
    "We swam across the lake before the storm arrived.",
    "Heavy rain kept the children inside all afternoon.",
    "The ocean looked grey under the winter clouds.",
    "A small stream ran behind the farmhouse.",
    "The flood reached the second step of the church.",
    "He drank the water in one long gulp.",
    "Fishermen sailed to the open sea at first light.",
    "The river froze solid in January.",
    "Warm rain fell on the tin roof.",
]
OTHER_TEXTS = [
    "The committee approved the budget on Tuesday.",
    "He tuned the violin before the concert began.",
    "Our train left the station ten minutes late.",
    "She wrote the report in a single evening.",
    "The bakery sells bread and small cakes.",
    "Three students solved the puzzle together.",
    "The museum opens at nine every morning.",
    "A red kite hovered above the dry field.",
    "They painted the fence a bright yellow.",
    "The lawyer read the contract twice.",
    "My neighbour repaired his bicycle chain.",
    "The chess match ended in a quiet draw.",
]


def water_item(latent: int = 5, explanation: str = "water, rivers, seas", hard: int = 0) -> ScoreItem:
    """12 activating and 12 non-activating examples; the last `hard` negatives count as hard ones."""
    activating = [ScoringExample(make_example(t, ACTIVATING), "test", i) for i, t in enumerate(WATER_TEXTS)]
    negatives = [
        ScoringExample(make_example(t, HARD_NEGATIVE), "hard_negative", i)
        if i >= len(OTHER_TEXTS) - hard
        else ScoringExample(make_example(t, RANDOM_NEGATIVE), "random", i)
        for i, t in enumerate(OTHER_TEXTS)
    ]
    return ScoreItem(latent, explanation, activating, negatives)


def examples_shown(messages: list[dict]) -> list[str]:
    """The texts of the numbered examples (batched) or the single text (per example)."""
    prompt = next(m["content"] for m in reversed(messages) if m["role"] == "user" and "Explanation:" in m["content"])
    numbered = re.findall(r"^Example \d+: (.*)$", prompt, re.MULTILINE)
    return numbered or re.findall(r"^Text: (.*)$", prompt, re.MULTILINE)


def is_water(text: str) -> bool:
    return any(w.strip(".,").lower() in WATER_WORDS for w in re.sub(r"<<|>>", "", text).split())


def marks_water(text: str) -> bool:
    marked = re.findall(r"<<(.*?)>>", text)
    return bool(marked) and all(is_water(m) for m in marked)


def oracle(judge) -> callable:
    """A batched judge answering `judge(text)` for every example shown, as a JSON list."""
    def reply(messages):
        return "[" + ", ".join(str(int(judge(t))) for t in examples_shown(messages)) + "]"
    return reply


N_PROMPTS = 5  # 24 examples, 5 a prompt


# --- batched detection and fuzzing ------------------------------------------------


def test_oracle_detection_judge_scores_perfectly(store):
    item = water_item(hard=4)
    with StubLLMServer(reply=oracle(is_water)) as server:
        [score] = score_latents(stub_client(server, store), "detection", [item])
    assert server.call_count == N_PROMPTS
    assert (score.latent, score.scorer, score.n_examples, score.n_failed) == (5, "detection", 24, 0)
    assert score.metrics.balanced_accuracy == 1.0 and score.metrics.n == 24
    assert score.ci_low == score.ci_high == 1.0
    assert score.metrics.auc == 1.0  # the stub's made-up alternatives hold no other answer: P(1) is 0 or 1
    # every example judged once under its own identity, hard negatives labelled 0
    ids = sorted((j.example_set, j.example_idx, j.label) for j in score.judgments)
    assert ids == sorted(
        [("test", i, 1) for i in range(12)] + [("random", i, 0) for i in range(8)]
        + [("hard_negative", i, 0) for i in range(8, 12)]
    )
    # the seeded shuffle mixes classes within prompts
    mixed = [len({is_water(t) for t in examples_shown(r.messages)}) == 2 for r in server.requests]
    assert sum(mixed) >= 3
    assert len(score.call_ids) == N_PROMPTS and score.prompt_tokens > 0


def test_always_yes_judge_gets_chance_balanced_accuracy(store):
    with StubLLMServer(reply=oracle(lambda text: True)) as server:
        [score] = score_latents(stub_client(server, store), "detection", [water_item()])
    assert score.metrics.balanced_accuracy == 0.5
    assert score.metrics.recall == 1.0 and score.metrics.true_negative == 0
    assert score.ci_low == score.ci_high == 0.5


def test_oracle_fuzzing_judge_scores_perfectly_on_activating_windows_only(store):
    item = water_item()
    with StubLLMServer(reply=oracle(marks_water)) as server:
        [score] = score_latents(stub_client(server, store), "fuzzing", [item])
    assert score.scorer == "fuzzing" and score.n_failed == 0 and server.call_count == N_PROMPTS
    assert score.metrics.balanced_accuracy == 1.0
    # each test window once marked right, once mis-marked; the negatives are not shown
    assert sorted((j.example_set, j.example_idx, j.label) for j in score.judgments) == sorted(
        [("test", i, 1) for i in range(12)] + [("test", i, 0) for i in range(12)])
    shown = [t for r in server.requests for t in examples_shown(r.messages)]
    assert all(is_water(t) for t in shown)
    wrong = [t for t in shown if not marks_water(t)]
    assert len(wrong) == 12 and not any(is_water(m) for t in wrong for m in re.findall(r"<<(.*?)>>", t))


def test_scoring_is_deterministic_so_a_rerun_is_served_from_the_cache(store):
    with StubLLMServer(reply=oracle(is_water)) as server:
        client = stub_client(server, store)
        first = score_latents(client, "fuzzing", [water_item()])
        second = score_latents(client, "fuzzing", [water_item()])
        other_seed = score_latents(client, "fuzzing", [water_item()], ScorerConfig(seed=1))
    assert server.call_count == 2 * N_PROMPTS  # the rerun sent nothing; seed 1 made new prompts
    assert first[0].judgments == second[0].judgments
    assert other_seed[0].metrics is not None


def test_malformed_answers_are_retried_once_then_recorded_as_failures(store):
    seen = []
    with StubLLMServer(reply="I believe most of them match.") as server:
        [score] = score_latents(
            stub_client(server, store), "detection", [water_item()],
            on_progress=lambda done, total: seen.append((done, total)),
        )
    assert server.call_count == 2 * N_PROMPTS
    assert seen[-1] == (2 * N_PROMPTS, 2 * N_PROMPTS)
    assert score.metrics is None and score.ci_low is None
    assert score.n_failed == score.n_examples == 24
    assert all(j.prediction is None and "after one retry" in j.error for j in score.judgments)
    retry = server.requests[-1].messages
    assert retry[-2]["role"] == "assistant" and "JSON list" in retry[-1]["content"]


def test_wrong_length_lists_are_failures(store):
    with StubLLMServer(reply="[1, 0]") as server:
        [score] = score_latents(stub_client(server, store), "detection", [water_item()])
    assert server.call_count == 2 * N_PROMPTS
    assert score.metrics is None and score.n_failed == 24


def test_one_malformed_answer_costs_one_retry_and_no_judgments(store):
    with StubLLMServer(reply=oracle(is_water)) as server:
        server.enqueue("[1, 0, oops]")
        [score] = score_latents(stub_client(server, store), "detection", [water_item()])
    assert server.call_count == N_PROMPTS + 1
    assert score.n_failed == 0 and score.metrics.balanced_accuracy == 1.0
    assert len(score.call_ids) == N_PROMPTS + 1


def test_failed_prompts_leave_their_examples_out_of_the_metrics(store):
    calls = {"n": 0}

    def reply(messages):  # first prompt of the run unparseable twice; others answered correctly
        if "Example 1:" in messages[-1]["content"] and calls["n"] == 0:
            calls["n"] += 1
            shown = examples_shown(messages)
            failing.update(shown)
        if set(examples_shown(messages)) & failing:
            return "no idea"
        return oracle(is_water)(messages)

    failing: set[str] = set()
    with StubLLMServer(reply=reply) as server:
        [score] = score_latents(stub_client(server, store), "detection", [water_item()], ScorerConfig(batch_size=4))
    assert score.n_examples == 24 and score.n_failed == 4
    assert score.metrics.n == 20 and score.metrics.balanced_accuracy == 1.0
    assert server.call_count == 6 + 1


def test_one_bad_latent_does_not_sink_the_others(store):
    def reply(messages):
        question = [m["content"] for m in messages if "Explanation:" in m["content"]][-1]  # after the shots
        if "Explanation: BROKEN" in question:
            return "???"
        if "Explanation: REFUSED" in question:
            return Fault.http(400, "content policy")
        return oracle(is_water)(messages)

    items = [water_item(1, "BROKEN"), water_item(2), water_item(3, "REFUSED"), water_item(4, "")]
    with StubLLMServer(reply=reply) as server:
        broken, good, refused, empty = score_latents(stub_client(server, store), "detection", items)
    # BROKEN: prompts + one retry each; REFUSED: the client does not retry a 400; empty: no prompts
    assert server.call_count == 2 * N_PROMPTS + N_PROMPTS + N_PROMPTS
    assert good.metrics.balanced_accuracy == 1.0
    for bad in (broken, refused, empty):
        assert bad.metrics is None and bad.n_failed == bad.n_examples == 24
    assert "content policy" in refused.judgments[0].error
    assert empty.call_ids == [] and "no explanation" in empty.judgments[0].error


def test_latent_whose_prompts_cannot_be_built_fails_alone(store):
    with StubLLMServer(reply=oracle(marks_water)) as server:
        bad, good = score_latents(stub_client(server, store), "fuzzing", [water_item(-1), water_item(2)])
    assert server.call_count == N_PROMPTS
    assert bad.metrics is None and bad.n_failed == 24 and "could not build prompts" in bad.judgments[0].error
    assert good.metrics.balanced_accuracy == 1.0


def test_server_errors_are_retried_by_the_client(store):
    with StubLLMServer(reply=oracle(marks_water)) as server:
        server.enqueue(Fault.server_error(500))
        [score] = score_latents(stub_client(server, store), "fuzzing", [water_item()])
    assert server.call_count == N_PROMPTS + 1
    assert score.n_failed == 0 and score.metrics.balanced_accuracy == 1.0


def test_one_class_only_has_metrics_but_no_interval(store):
    item = water_item()
    only_positive = ScoreItem(item.latent, item.explanation, item.activating, [])
    with StubLLMServer(reply=oracle(is_water)) as server:
        [score] = score_latents(stub_client(server, store), "detection", [only_positive])
    assert score.metrics.recall == 1.0 and score.metrics.n_negative == 0
    assert score.ci_low is None and score.ci_high is None


# --- batched answers: reasoning first, probabilities from logprobs ---------------


def p_yes(text: str) -> float:
    """A noisy judge: water texts usually rank higher, but not always."""
    u = (zlib.crc32(text.encode()) % 1000) / 1000
    return 0.35 + 0.6 * u if is_water(text) else 0.05 + 0.6 * u


REASONING = "Let me look at example 1 first, then 2 and 3: a draft would be [1, 1, 0] but I check again."


def reasoning_judge(messages):
    """Reasons for ~100 words (digits and a draft list included), then answers with P(1) = p_yes per value."""
    probabilities = [p_yes(t) for t in examples_shown(messages)]
    values = [int(p >= 0.5) for p in probabilities]
    items = [f"{v}," for v in values[:-1]] + [f"{values[-1]}]"]
    words = (REASONING + " ") * 5 + "Answer: ["
    given = [{w if i == 0 else " " + w: 0.0} for i, w in enumerate(words.split(" "))]
    for item, v, p in zip(items, values, probabilities):
        given.append({" " + item: math.log(p if v else 1 - p), " " + item.replace(str(v), str(1 - v)):
                      math.log(1 - p if v else p)})
    return StubReply(words + " " + " ".join(items), given)


def test_batched_judge_may_reason_first_and_its_logprobs_give_the_auc(store):
    item = water_item()
    with StubLLMServer(reply=reasoning_judge) as server:
        [score] = score_latents(stub_client(server, store), "detection", [item])
    assert server.call_count == N_PROMPTS and score.n_failed == 0  # not cut off, so no retries
    body = server.requests[0].body
    assert body["max_tokens"] == 2048 and body["logprobs"] is True and body["top_logprobs"] == 10
    by_id = {(e.set_name, e.idx): e.example.text for e, _ in item.labelled()}
    for j in score.judgments:
        assert j.probability == pytest.approx(p_yes(by_id[j.example_set, j.example_idx]))
    labels, probabilities = [j.label for j in score.judgments], [j.probability for j in score.judgments]
    assert 0.5 < roc_auc_score(labels, probabilities) < 1.0
    assert score.metrics.auc == pytest.approx(roc_auc_score(labels, probabilities))


def test_batched_judge_without_logprobs_has_no_auc(store):
    with StubLLMServer(reply=oracle(is_water), reject_logprobs=True) as server:
        [score] = score_latents(stub_client(server, store), "detection", [water_item()])
    assert score.metrics.balanced_accuracy == 1.0 and score.metrics.auc is None


# --- per-example mode ---------------------------------------------------------


def logprob_judge(messages):
    [text] = examples_shown(messages)
    p = p_yes(text)
    return StubReply("Yes" if p >= 0.5 else "No", [{"Yes": math.log(p), "No": math.log(1 - p), "Maybe": -9.0}])


def test_per_example_probabilities_give_sklearns_auc(store):
    item = water_item()
    with StubLLMServer(reply=logprob_judge) as server:
        [score] = score_latents(
            stub_client(server, store), "detection", [item], ScorerConfig(mode="per_example")
        )
    assert server.call_count == 24
    body = server.requests[0].body
    assert body["logprobs"] is True and body["top_logprobs"] == 10 and body["max_tokens"] == 1
    by_id = {(e.set_name, e.idx): e.example.text for e, _ in item.labelled()}
    labels = [j.label for j in score.judgments]
    probabilities = [j.probability for j in score.judgments]
    for j in score.judgments:
        assert j.probability == pytest.approx(p_yes(by_id[j.example_set, j.example_idx]))
        assert j.prediction == int(j.probability >= 0.5)
    expected = roc_auc_score(labels, probabilities)
    assert 0.5 < expected < 1.0  # the judge is imperfect, so AUC and accuracy differ
    assert score.metrics.auc == pytest.approx(expected)
    assert score.metrics.balanced_accuracy == pytest.approx(
        balanced_accuracy_score(labels, [j.prediction for j in score.judgments])
    )
    assert score.auc_ci_low <= score.metrics.auc <= score.auc_ci_high


def test_per_example_without_logprobs_reads_the_answer_word(store):
    def reply(messages):
        return "Yes" if marks_water(examples_shown(messages)[0]) else "No"

    with StubLLMServer(reply=reply, reject_logprobs=True) as server:
        [score] = score_latents(
            stub_client(server, store), "fuzzing", [water_item()], ScorerConfig(mode="per_example")
        )
    assert score.n_failed == 0 and score.metrics.balanced_accuracy == 1.0
    assert score.metrics.auc is None and all(j.probability is None for j in score.judgments)


def test_per_example_unreadable_answer_is_retried_once(store):
    with StubLLMServer(reply=logprob_judge) as server:
        server.enqueue(StubReply("Perhaps", [{"Perhaps": -0.1, "Maybe": -2.0}]))
        [score] = score_latents(
            stub_client(server, store), "detection", [water_item()], ScorerConfig(mode="per_example")
        )
    assert server.call_count == 25
    assert score.n_failed == 0
    retry = next(r for r in server.requests if r.messages[-2]["content"] == "Perhaps")
    assert retry.messages[-2]["content"] == "Perhaps" and "Yes or No" in retry.messages[-1]["content"]


# --- embedding scorer ---------------------------------------------------------


@pytest.fixture(scope="module")
def kjv_sentences() -> tuple[list[str], list[str]]:
    """Real KJV sentences: 20 about water (waters, rivers, the sea) and 20 with no water at all."""
    water_words = {"water", "waters", "river", "rivers", "sea", "seas", "flood", "rain", "fountains"}
    wet, dry = [], []
    for doc in kjv_documents():
        for sentence in re.split(r"(?<=[.;:])\s+", doc):
            words = {w.strip(",.;:!?").lower() for w in sentence.split()}
            if not 8 <= len(words) <= 30:
                continue
            if words & {"water", "waters", "sea", "river"} and len(wet) < 20:
                wet.append(sentence)
            elif not words & water_words and len(dry) < 20 and len(wet) > len(dry):
                dry.append(sentence)
        if len(wet) == 20 and len(dry) == 20:
            return wet, dry
    raise AssertionError("the KJV corpus should hold 20 sentences of each kind")


def embedding_item(explanation: str, wet: list[str], dry: list[str]) -> ScoreItem:
    def example(text, kind):
        tokens = tuple(re.findall(r"\s*\S+", text))
        return Example(tokens, (0.0,) * len(tokens), (0,) * len(tokens), kind, row=0, start=0)

    return ScoreItem(
        1,
        explanation,
        [ScoringExample(example(t, ACTIVATING), "test", i) for i, t in enumerate(wet)],
        [ScoringExample(example(t, RANDOM_NEGATIVE), "random", i) for i, t in enumerate(dry)],
    )


def test_embedding_scorer_prefers_the_matching_explanation(kjv_sentences):
    wet, dry = kjv_sentences
    matching, unrelated, empty = embedding_scores(
        [embedding_item("water, rivers, seas", wet, dry),
         embedding_item("musical instruments and singing", wet, dry),
         embedding_item("", wet, dry)]
    )
    assert matching.scorer == "embedding" and matching.call_ids == []
    assert matching.metrics.auc > 0.8
    assert matching.metrics.auc > unrelated.metrics.auc + 0.2
    labels = [j.label for j in matching.judgments]
    similarity = [j.probability for j in matching.judgments]
    assert matching.metrics.auc == pytest.approx(roc_auc_score(labels, similarity))
    assert all(-1.0 <= s <= 1.0 for s in similarity)
    # predictions: the top 20 similarities (the share of positives) are called positive
    predicted = [j.prediction for j in matching.judgments]
    assert sum(predicted) == 20
    assert min(s for s, p in zip(similarity, predicted) if p) > max(s for s, p in zip(similarity, predicted) if not p)
    assert matching.auc_ci_low <= matching.metrics.auc <= matching.auc_ci_high
    assert empty.metrics is None and empty.n_failed == 40
    assert np.isfinite([matching.ci_low, matching.ci_high]).all()
