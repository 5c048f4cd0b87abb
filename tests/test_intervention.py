"""Intervention scoring on a tiny model wired to copy (tests/copy_model.py): a latent whose decoder direction is a
word's embedding makes steered completions say that word, so an explanation naming it gains log-probability,
where a shuffled explanation and a random latent steered do not; the strength search hits its KL target for an
SAE, a transcoder and MLP neurons."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file
from transformers import AutoTokenizer

from autointerp_dagster.core.coders import CoderSource, load_coder
from autointerp_dagster.core.coders.decoders import steering_site
from autointerp_dagster.core.config import SteeringConfig, SubjectScorersConfig
from autointerp_dagster.core.explain.digest import steered_tokens, steering_prompts
from autointerp_dagster.core.models.embedded import kjv_documents
from autointerp_dagster.core.models.lm_logprobs import token_ids
from autointerp_dagster.core.models.steering import Steerer, prompt_ids
from autointerp_dagster.core.models.subject import load_subject_model
from autointerp_dagster.core.sampling import ACTIVATING, Example
from autointerp_dagster.core.scorers.common import OK, ScoreItem, ScoringExample
from autointerp_dagster.core.scorers.intervention import RANDOM_LATENT, intervention_scores
from autointerp_dagster.core.scorers.runs import SHUFFLED, ScoringTask

from .copy_model import build_copy_model, word_tokens

PLANTED, N_LATENTS = 3, 16
STEERING = SteeringConfig(kl_target=1.0, kl_tolerance=0.1, search_steps=20)
CONFIG = SubjectScorersConfig(prompts=4, completion_tokens=6, batch_size=8)


@pytest.fixture(scope="module")
def copy_lm(tiny_model_dir, tmp_path_factory):
    folder = build_copy_model(tmp_path_factory.mktemp("copy"), AutoTokenizer.from_pretrained(tiny_model_dir))
    return load_subject_model(str(folder), tmp_path_factory.mktemp("models"), device="cpu")


def _planted_coder(lm, folder, word_id: int, transcode: bool = False):
    """A sparsify coder whose latent PLANTED decodes to `word_id`'s embedding; the others decode at random."""
    torch.manual_seed(1)
    decoder = torch.randn(N_LATENTS, 64)
    decoder[PLANTED] = lm.model.get_input_embeddings().weight[word_id].detach()
    folder.mkdir(parents=True)
    (folder / "cfg.json").write_text(json.dumps({"d_in": 64, "num_latents": N_LATENTS, "k": 4,
                                                 "transcode": transcode}))
    save_file({"encoder.weight": torch.randn(N_LATENTS, 64), "encoder.bias": torch.zeros(N_LATENTS),
               "b_dec": torch.zeros(64), "W_dec": decoder}, str(folder / "sae.safetensors"))
    return load_coder(CoderSource(path=str(folder)), base_model=lm.body)


def _prompts(lm, n: int = 4) -> list[ScoringExample]:
    """Activating windows of KJV text where the latent first fires at token 5 (so a prompt is BOS + 6 tokens)."""
    lines = [line for _, doc in zip(range(2), kjv_documents()) for line in doc.split(".") if len(line.split()) > 8]
    out = []
    for i, line in enumerate(lines[:n]):
        ids = token_ids(lm, " " + line.strip())[:10]
        tokens = tuple(lm.tokenizer.decode([t]) for t in ids)
        active = tuple(0.0 if k < 5 else 2.0 for k in range(len(ids)))
        out.append(ScoringExample(Example(tokens, active, tuple(int(a) for a in active), ACTIVATING, i, 0, 0),
                                  "test", i))
    return out


def test_planted_latent_beats_shuffled_explanation_and_random_latent(copy_lm, tmp_path):
    (word_id, word), (_, other) = word_tokens(copy_lm.tokenizer, 2)
    coder = _planted_coder(copy_lm, tmp_path / "layers.0", word_id)
    prompts = _prompts(copy_lm)
    assert copy_lm.tokenizer.decode(prompt_ids(copy_lm, prompts[0].example)[1:]) == "".join(
        prompts[0].example.tokens[:6])  # cut just after the first token where the latent fires
    tasks = [ScoringTask(ScoreItem(PLANTED, f"{word} {word} {word}", prompts, []), "e3"),
             ScoringTask(ScoreItem(PLANTED, f"{other} {other} {other}", prompts, []), "e3", SHUFFLED, 7)]
    site = steering_site(coder, range(N_LATENTS), copy_lm.body)
    assert site.module == "layers.0" and torch.allclose(site.directions.norm(dim=-1), torch.ones(N_LATENTS))
    all_tasks, scores, steered = intervention_scores(copy_lm, copy_lm, site.module, dict(zip(site.latents,
                                                     site.directions)), tasks, "sae", N_LATENTS, CONFIG, STEERING)
    assert [t.control for t in all_tasks] == ["none", "shuffled", RANDOM_LATENT]
    own, shuffled, random_control = scores
    assert all(s.status == OK and s.scorer == "intervention" for s in scores)
    mine, other_latent = steered
    assert mine.steered_latent == PLANTED and other_latent.steered_latent == all_tasks[2].control_latent != PLANTED
    for outcome in steered:  # both hit the KL target within tolerance
        assert abs(outcome.kl - STEERING.kl_target) <= STEERING.kl_tolerance * STEERING.kl_target
    assert sum(c.count(word) for c in mine.steered) > sum(c.count(word) for c in mine.clean)
    assert mine.promoted[0][0].strip() == word  # the token whose probability rises most is the planted word
    assert own.log_prob_gain > 0 and own.log_prob_gain_ci_low is not None
    assert own.log_prob_gain > shuffled.log_prob_gain + 1.0
    assert own.log_prob_gain > random_control.log_prob_gain + 1.0
    assert own.metrics.auc == 1.0 and own.n_examples == 2 * len(prompts)
    length = len(token_ids(copy_lm, f" {word} {word} {word}"))  # the gain per explanation token
    assert length > 1 and own.log_prob_gain_per_token == pytest.approx(own.log_prob_gain / length)


@pytest.mark.parametrize("kind", ["neurons", "transcoder"])
def test_strength_search_hits_the_target_for_neurons_and_transcoders(copy_lm, tmp_path, kind):
    [(word_id, word)] = word_tokens(copy_lm.tokenizer, 1)
    if kind == "neurons":
        with torch.no_grad():  # neuron 5 writes the word's embedding through the MLP's output projection
            embedding = copy_lm.model.get_input_embeddings().weight[word_id]
            copy_lm.model.model.layers[0].mlp.down_proj.weight[:, 5] = embedding
        coder = load_coder(CoderSource(path="", kind="neurons", hookpoint="layers.0.mlp"), base_model=copy_lm.body)
        latent = 5
    else:
        coder = _planted_coder(copy_lm, tmp_path / "layers.0.mlp", word_id, transcode=True)
        latent = PLANTED
    site = steering_site(coder, [latent], copy_lm.body)
    steerer = Steerer(copy_lm, [prompt_ids(copy_lm, p.example) for p in _prompts(copy_lm)], site.module)
    for target in (0.33, 1.0):
        found = steerer.search(site.directions[0], target, 0.1, 24)
        assert abs(found.kl - target) <= 0.1 * target and found.steps <= 24
    steered = [copy_lm.tokenizer.decode(ids) for ids in steerer.generate(site.directions[0] * found.strength, 4)]
    assert any(word in text for text in steered)


def test_the_steering_view_of_the_digest_names_what_the_planted_latent_promotes(copy_lm, tmp_path):
    """The output-side explainer's view: the planted latent steered on its windows promotes its word above every
    other token; a latent without a window where it fires gets no tokens instead of a guess."""
    [(word_id, word)] = word_tokens(copy_lm.tokenizer, 1)
    coder = _planted_coder(copy_lm, tmp_path / "layers.0", word_id)
    site = steering_site(coder, [PLANTED, 7], copy_lm.body)
    windows = [p.example for p in _prompts(copy_lm)]
    silent = windows[0].__class__(windows[0].tokens, (0.0,) * len(windows[0].tokens), (0,) * len(windows[0].tokens),
                                  ACTIVATING, 9, 0, 0)
    prompts = {PLANTED: steering_prompts(copy_lm, windows, 3), 7: steering_prompts(copy_lm, [silent], 3)}
    assert len(prompts[PLANTED]) == 3 and prompts[7] == []
    steered = steered_tokens(copy_lm, site.module, prompts, dict(zip(site.latents, site.directions)), top=5,
                             kl_target=1.0, tolerance=0.1, steps=20)
    assert steered[7] == [] and len(steered[PLANTED]) == 5
    assert steered[PLANTED][0][0].strip() == word and steered[PLANTED][0][1] > steered[PLANTED][1][1] > 0
