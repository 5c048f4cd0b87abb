"""Surprisal scoring on real tiny models: the cached-prefix log-probs are the model's, and a planted explanation
separates its latent's examples where a shuffled one does not."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer

from autointerp_dagster.core.models.embedded import kjv_documents
from autointerp_dagster.core.models.lm_logprobs import continuation_logprobs, shared_prefix_logprobs, token_ids
from autointerp_dagster.core.models.subject import load_subject_model
from autointerp_dagster.core.sampling import ACTIVATING, RANDOM_NEGATIVE, Example
from autointerp_dagster.core.scorers.common import FAILED, OK, ScoreItem, ScoringExample
from autointerp_dagster.core.scorers.surprisal import NEUTRAL_DESCRIPTION, description_prompt, surprisal_scores

from .copy_model import build_copy_model, word_tokens


@pytest.fixture(scope="module")
def tiny_lm(tiny_model_dir, tmp_path_factory):
    return load_subject_model(str(tiny_model_dir), tmp_path_factory.mktemp("models"), device="cpu")


@pytest.fixture(scope="module")
def copy_lm(tiny_model_dir, tmp_path_factory):
    folder = build_copy_model(tmp_path_factory.mktemp("copy"), AutoTokenizer.from_pretrained(tiny_model_dir))
    return load_subject_model(str(folder), tmp_path_factory.mktemp("models"), device="cpu")


def test_cached_prefix_logprobs_equal_the_full_forward(tiny_lm):
    prefix = token_ids(tiny_lm, description_prompt("the word LORD"), bos=True)
    texts = [" And God said, Let there be light", " in the beginning", " x"]
    continuations = [token_ids(tiny_lm, t) for t in texts]
    cached = shared_prefix_logprobs(tiny_lm, prefix, continuations, batch_size=2)
    padded = continuation_logprobs(tiny_lm, [prefix] * 3, continuations, batch_size=2)
    with torch.inference_mode():
        logits = tiny_lm.model(input_ids=torch.tensor([prefix + continuations[0]])).logits[0].float()
    positions = torch.arange(len(prefix) - 1, len(prefix) + len(continuations[0]) - 1)
    reference = torch.log_softmax(logits, -1)[positions, torch.tensor(continuations[0])].numpy()
    assert [len(c) for c in cached] == [len(c) for c in continuations]
    np.testing.assert_allclose(cached[0], reference, atol=1e-4)
    for a, b in zip(cached, padded):  # the padded batch path (intervention scoring) agrees too
        np.testing.assert_allclose(a, b, atol=1e-4)


def _example(lm, text: str, kind: str, idx: int) -> ScoringExample:
    ids = token_ids(lm, text)
    tokens = tuple(lm.tokenizer.decode([i]) for i in ids)
    active = tuple(1.0 if kind == ACTIVATING else 0.0 for _ in ids)
    example = Example(tokens, active, tuple(int(a) for a in active), kind, row=idx, start=0, quantile=0)
    return ScoringExample(example, "test" if kind == ACTIVATING else "random", idx)


def _planted_items(lm):
    """Latent 0 fires on texts that contain a planted word; its explanation names the word (three times, so the
    copy model's signal outweighs the description's other tokens), the shuffled explanation another word that no
    example contains."""
    (_, word), (_, other) = word_tokens(lm.tokenizer, 2)
    sentences = [line.strip() for doc in zip(range(3), kjv_documents()) for line in doc[1].split(".")
                 if len(line.split()) > 6 and word not in line and other not in line][:12]
    activating = [_example(lm, " " + " ".join(f"{w} {word}" if i % 3 == 0 else w
                                              for i, w in enumerate(s.split()[:12])), ACTIVATING, i)
                  for i, s in enumerate(sentences[:6])]
    negatives = [_example(lm, " " + " ".join(s.split()[:12]), RANDOM_NEGATIVE, i) for i, s in enumerate(sentences[6:])]
    return (ScoreItem(0, f"{word} {word} {word}", activating, negatives),
            ScoreItem(0, f"{other} {other} {other}", activating, negatives))


def test_planted_explanation_separates_where_the_shuffled_one_does_not(copy_lm):
    own_item, shuffled_item = _planted_items(copy_lm)
    own, shuffled = surprisal_scores(copy_lm, [own_item, shuffled_item], batch_size=4)
    assert own.status == shuffled.status == OK and own.scorer == "surprisal"
    assert own.n_examples == shuffled.n_examples == 12 and own.n_failed == 0
    # The loss reduction (Judgment.probability) is larger on every activating example than on any negative.
    assert own.metrics.auc == 1.0 and own.auc_ci_low is not None
    assert shuffled.metrics.auc <= 0.75
    assert own.metrics.auc - shuffled.metrics.auc >= 0.25
    own_gap = min(j.probability for j in own.judgments if j.label) - max(
        j.probability for j in own.judgments if not j.label)
    assert own_gap > 0.03  # every text with the named word gains more from the explanation than any without


def test_neutral_description_is_the_baseline_and_empty_explanations_fail(copy_lm):
    own_item, _ = _planted_items(copy_lm)
    neutral = ScoreItem(0, NEUTRAL_DESCRIPTION, own_item.activating, own_item.negatives)
    empty = ScoreItem(0, "  ", own_item.activating, own_item.negatives)
    neutral_score, empty_score = surprisal_scores(copy_lm, [neutral, empty])
    assert all(j.probability == 0.0 for j in neutral_score.judgments)  # no reduction against itself
    assert empty_score.status == FAILED and "no explanation" in empty_score.judgments[0].error
