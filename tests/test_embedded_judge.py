"""The offline judge as shipped: Qwen2.5-Coder-1.5B-Instruct assembled from its PyPI parts, converted once,
run in process on either engine (torch dynamic int8, CTranslate2 int8), judging one example at a time from P(yes)."""

from __future__ import annotations

import shutil

import pytest

from autointerp_dagster.core.llm import ChatRequest, CT2Backend, LocalBackend
from autointerp_dagster.core.prompts.judge import build_detection_single_messages, yes_probability
from autointerp_dagster.core.sampling import ACTIVATING, RANDOM_NEGATIVE, Example

pytestmark = pytest.mark.slow

# Example texts for the mechanics; bench/bench_embedded_judge.py measures ranking quality.
POSITIVE = ["And the LORD spake unto Moses, saying, Speak unto the children of Israel.",
            "Thus saith the LORD of hosts, the God of Israel; Amend your ways and your doings."]
NEGATIVE = ["And the number of them was four hundred and twenty and two thousand.",
            "The rivers run into the sea; yet the sea is not full."]


def example(text: str, kind: str) -> Example:
    tokens = tuple(f" {w}" for w in text.split())
    return Example(tokens, (0.0,) * len(tokens), (0,) * len(tokens), kind, 0, 0)


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")  # one GGUF conversion for both engines
    yield folder
    shutil.rmtree(folder)  # ~9 GB of converted judge: the rest of the suite needs the disk more than this copy


@pytest.mark.parametrize("engine", [LocalBackend, CT2Backend], ids=["torch", "ctranslate2"])
def test_embedded_judge_answers_one_token_with_probabilities(engine, models_dir):
    """Mechanics only: how well the judge ranks is a property of the CPU's int8 kernels as much as of the model
    (AVX2 and AVX-512 machines give different margins), so it is measured in bench/bench_embedded_judge.py."""
    judge = engine("embedded:qwen2.5-coder-1.5b-instruct", models_dir)
    p_yes = {}
    for text, kind in [(t, ACTIVATING) for t in POSITIVE] + [(t, RANDOM_NEGATIVE) for t in NEGATIVE]:
        messages = build_detection_single_messages("the word LORD, referring to God", example(text, kind))
        request = ChatRequest(messages, max_tokens=1, logprobs=True, top_logprobs=10)
        reply = judge.generate(request)
        assert reply.tokens_out == 1 and reply.text.strip() in ("Yes", "No")
        p_yes[text] = yes_probability(reply.top_logprobs[0])
        assert p_yes[text] is not None and 0.0 <= p_yes[text] <= 1.0
        assert yes_probability(judge.generate(request).top_logprobs[0]) == pytest.approx(p_yes[text], abs=1e-6)
    assert len(set(p_yes.values())) > 1, "the judge gave every text the same probability"
