"""Golden ids: the keys stored results carry. A refactor that changes one silently re-keys every stored
explanation or score (old rows would no longer match new runs), so each default configuration's id is pinned."""

from __future__ import annotations

import hashlib
import json

import pytest

from autointerp_dagster.core.config import load_settings
from autointerp_dagster.core.digest import steering_settings_id
from autointerp_dagster.core.explainers import explainer_id, explanation_id
from autointerp_dagster.core.scorers.runs import scorer_config_id
from autointerp_dagster.core.scorers.simulation import SIMULATION

SERVER = {"AUTOINTERP_LLM_BACKEND": "openai", "AUTOINTERP_LLM_MODEL": "m"}
STEERING = {"AUTOINTERP_EXPLAINER_OUTPUT_VIEW": "steering"}


def _subject_scorer_config(settings) -> str:
    chosen = settings.subject_scorers
    encoded = json.dumps({**chosen.model_dump(exclude={"scorers"}), "negatives": settings.negatives},
                         sort_keys=True, default=str)
    return "subject-" + hashlib.sha256(encoded.encode()).hexdigest()[:8]


@pytest.mark.parametrize("environ, explainer, scorer, simulation", [
    ({}, "default-d8b59345", "per_example-2016378d", "simulation-da681717"),
    (SERVER, "default-bb15702b", "batched-68524275", "simulation-08ce55ad"),
    (STEERING, "default-f2e07f40", "per_example-2016378d", "simulation-da681717"),
])
def test_default_configurations_keep_their_ids(environ, explainer, scorer, simulation):
    settings = load_settings(None, environ=environ)
    _, judged = settings.example_limits()
    assert explainer_id(settings.explainer_config()) == explainer
    assert scorer_config_id(settings.scorer_config(), judged, settings.negatives) == scorer
    assert scorer_config_id(settings.simulation, judged, settings.negatives, SIMULATION) == simulation
    assert _subject_scorer_config(settings) == "subject-03a9212f"
    assert steering_settings_id(settings) == "30e36344"


def test_explanation_ids_are_stable():
    assert explanation_id("gemma-3-270m/layers.6/embedded-topk", 7, "default-d8b59345",
                          "embedded:qwen2.5-coder-1.5b-instruct", "the word LORD") == "bcae396fe80befc4"
