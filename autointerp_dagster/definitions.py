"""The Dagster code location: assets, jobs, resources and sensors (`dagster dev -m autointerp_dagster.definitions`)."""

from __future__ import annotations

from dagster import Definitions

from .assets import ASSETS
from .core.config import load_settings
from .jobs import JOBS
from .resources import (
    LLMResource,
    SettingsResource,
    StoreResource,
    SubjectModelResource,
)
from .sensors import automation_sensor, sae_discovery_sensor
from .workers import executor_for


def build_resources(config_path: str | None = None) -> dict:
    """Every resource reads the one settings tree (`config_path`, else AUTOINTERP_CONFIG, and AUTOINTERP_*)."""
    settings = SettingsResource(config_path=config_path)
    return {
        "settings": settings,
        "store": StoreResource(settings=settings),
        "llm": LLMResource(settings=settings),
        "subject_model": SubjectModelResource(settings=settings),
    }


defs = Definitions(
    assets=ASSETS,
    jobs=JOBS,
    resources=build_resources(),
    sensors=[sae_discovery_sensor, automation_sensor],
    executor=executor_for(load_settings()),  # the settings' `executor`: this machine's processes, or Celery workers
)
