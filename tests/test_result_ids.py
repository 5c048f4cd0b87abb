"""Golden ids: the keys stored results carry. A refactor that changes one silently re-keys every stored
explanation or score (old rows would no longer match new runs), so each default configuration's id is pinned."""

from __future__ import annotations

import pytest

from autointerp_dagster.core.config import load_settings
from autointerp_dagster.core.explain.digest import steering_settings_id
from autointerp_dagster.core.explain.explainers import explainer_id, explanation_id
from autointerp_dagster.core.scorers.runs import scorer_config_id
from autointerp_dagster.core.scorers.simulation import SIMULATION
from autointerp_dagster.core.scorers.subject_runs import subject_scorer_config_id

SERVER = {"AUTOINTERP_LLM_BACKEND": "openai", "AUTOINTERP_LLM_MODEL": "m"}
STEERING = {"AUTOINTERP_EXPLAINER_OUTPUT_VIEW": "steering"}


def _subject_scorer_config(settings) -> str:
    return subject_scorer_config_id(settings.subject_scorers, settings.steering, settings.sampling.negatives,
                                    settings.scoring.seed)


@pytest.mark.parametrize("environ, explainer, scorer, simulation", [
    ({}, "default-d8b59345", "per_example-2016378d", "simulation-da681717"),
    (SERVER, "default-bb15702b", "batched-68524275", "simulation-08ce55ad"),
    (STEERING, "default-f2e07f40", "per_example-2016378d", "simulation-da681717"),
])
def test_default_configurations_keep_their_ids(environ, explainer, scorer, simulation):
    settings = load_settings(None, environ=environ)
    judged, negatives = settings.scoring.examples_per_class, settings.sampling.negatives
    assert explainer_id(settings.explainer, settings.steering) == explainer
    assert scorer_config_id(settings.scoring, judged, negatives) == scorer
    assert scorer_config_id(settings.simulation, judged, negatives, SIMULATION) == simulation
    assert _subject_scorer_config(settings) == "subject-03a9212f"
    assert steering_settings_id(settings) == "30e36344"


def test_explanation_ids_are_stable():
    assert explanation_id("gemma-3-270m/layers.6/embedded-topk", 7, "default-d8b59345",
                          "embedded:qwen2.5-coder-1.5b-instruct", "the word LORD") == "bcae396fe80befc4"


def test_cache_corpus_and_coder_keys_are_stable(tmp_path):
    """The LLM response cache's keys (a re-run must find its answers), the corpus id and a cache's inputs."""
    import os

    from autointerp_dagster.core.cache.plan import cache_inputs_fingerprint
    from autointerp_dagster.core.coders import RegisteredCoder
    from autointerp_dagster.core.coders.identity import source_fingerprint
    from autointerp_dagster.core.config import CoderSource, CorpusSpec
    from autointerp_dagster.core.corpus import corpus_id
    from autointerp_dagster.core.llm.records import cache_key, prompt_score_key
    from autointerp_dagster.core.llm.types import ChatRequest, PromptScoreRequest

    request = ChatRequest(messages=[{"role": "user", "content": "Is “LORD” here? Yes or No"}], max_tokens=1,
                          temperature=0.0, logprobs=True, top_logprobs=5)
    server = {"backend": "openai", "base_url": "http://h/v1", "model": "m"}
    assert cache_key(server, request) == "983eb9a3760dafe7244d2d419a7d138268dc0222efa2714b4646913cf365d59a"
    scored = PromptScoreRequest(prompt="a b c", offsets=(1, 3), candidates=("0", "1"))
    assert prompt_score_key({"backend": "local"}, scored) == (
        "7bc860da2f58e7f0ed3d75bfb861a14f77cfd5f83a9787b2392f8dcd6d7a35ca")

    class Tokenizer:
        bos_token_id, eos_token_id = 2, 1

        def get_vocab(self):
            return {"a": 0, "<eos>": 1, "<bos>": 2, "é": 3}

    assert corpus_id(CorpusSpec(), Tokenizer()) == "fed96db0a4a7"
    neurons = CoderSource("", hookpoint="layers.6.mlp", kind="neurons", k=32)
    settings = load_settings(None, environ={})
    assert cache_inputs_fingerprint(settings, RegisteredCoder("k", neurons, "layers.6.mlp")) == "4b35910a4ea1b8e5"
    (tmp_path / "cfg.json").write_text("{}")
    (tmp_path / "sae.safetensors").write_bytes(b"x" * 10)
    for f in tmp_path.iterdir():
        os.utime(f, ns=(1_700_000_000_000_000_000, 1_700_000_000_000_000_000))
    assert source_fingerprint(CoderSource(str(tmp_path))) == "3d673ecc48e76445"


def test_a_control_seed_apart_from_the_subject_scorers_seed_is_named():
    """scoring.seed picks the shuffled explanation of every scorer; where it differs from subject_scorers.seed
    (which picked it for surprisal and intervention before) the subject scorers' id says so."""
    same = load_settings(None, environ={"AUTOINTERP_SEED": "3"})
    assert same.scoring.seed == same.subject_scorers.seed == 3
    apart = load_settings(None, environ={"AUTOINTERP_SCORING_SEED": "3"})
    assert _subject_scorer_config(apart) != _subject_scorer_config(load_settings(None, environ={}))
    assert _subject_scorer_config(apart) != subject_scorer_config_id(
        apart.subject_scorers, apart.steering, apart.sampling.negatives, None)
