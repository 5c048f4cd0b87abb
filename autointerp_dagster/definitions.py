"""The Dagster code location: assets, resources and sensors (`dagster dev -m autointerp_dagster.definitions`)."""

from __future__ import annotations

import os

from dagster import Definitions

from .assets import (
    activation_cache,
    corpus,
    embedded_saes,
    examples,
    explanations,
    latent_stats,
    sae_summary,
    scores,
)
from .core.llm.settings import llm_settings_from_env
from .resources import LLMResource, SettingsResource, StoreResource, SubjectModelResource
from .sensors import automation_sensor, sae_discovery_sensor


def build_llm_resource() -> LLMResource:
    """The LLM from AUTOINTERP_LLM_* variables; without them, the offline embedded judge."""
    env = llm_settings_from_env(backend="local", model=LLMResource.model_fields["model"].default, timeout_s=120.0)
    return LLMResource(
        backend=env.backend, model=env.model, base_url=env.base_url, api_key_env=env.api_key_env,
        concurrency=env.concurrency, timeout_s=env.timeout_s, max_retries=env.max_retries,
        max_context=env.max_context, device=env.device, quantize=env.quantize,
    )


def build_resources() -> dict:
    settings = SettingsResource(config_path=os.environ.get("AUTOINTERP_CONFIG"))
    return {
        "settings": settings,
        "store": StoreResource(settings=settings),
        "llm": build_llm_resource(),
        "subject_model": SubjectModelResource(
            device=os.environ.get("AUTOINTERP_DEVICE", "auto"), dtype=os.environ.get("AUTOINTERP_DTYPE", "auto")
        ),
    }


ASSETS = [corpus, embedded_saes, activation_cache, latent_stats, examples, explanations, scores, sae_summary]

defs = Definitions(
    assets=ASSETS,
    resources=build_resources(),
    sensors=[sae_discovery_sensor, automation_sensor],
)
