"""The Dagster code location: assets, resources and sensors (`dagster dev -m autointerp_dagster.definitions`)."""

from __future__ import annotations

import os

from dagster import Definitions

from .assets import activation_cache, corpus, embedded_saes, latent_stats
from .resources import SettingsResource, StoreResource, SubjectModelResource
from .sensors import automation_sensor, sae_discovery_sensor


def build_resources() -> dict:
    settings = SettingsResource(config_path=os.environ.get("AUTOINTERP_CONFIG"))
    return {
        "settings": settings,
        "store": StoreResource(settings=settings),
        "subject_model": SubjectModelResource(
            device=os.environ.get("AUTOINTERP_DEVICE", "auto"), dtype=os.environ.get("AUTOINTERP_DTYPE", "auto")
        ),
    }


ASSETS = [corpus, embedded_saes, activation_cache, latent_stats]

defs = Definitions(
    assets=ASSETS,
    resources=build_resources(),
    sensors=[sae_discovery_sensor, automation_sensor],
)
