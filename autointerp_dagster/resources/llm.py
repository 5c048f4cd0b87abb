"""The LLM that explains and judges, as a Dagster resource built from the settings' `llm` section.

The API key is read from the variable that `llm.api_key_env` names, at call time, and is never
stored in the settings, DuckDB, logs or metadata.
"""

from functools import cache
from pathlib import Path

from dagster import ConfigurableResource

from ..core.config import LLMConfig
from ..core.llm import LLMClient, build_backend, build_client
from ..core.store import ResultsStore
from .settings import SettingsResource


class LLMResource(ConfigurableResource):
    settings: SettingsResource

    @property
    def config(self) -> LLMConfig:
        return self.settings.get().llm

    def client(self, store: ResultsStore) -> LLMClient:
        config = self.config
        return build_client(config, _backend(config, self.settings.get().models_dir), store)


@cache
def _backend(config: LLMConfig, models_dir: Path):
    """One backend per process and configuration, so a local model is loaded once."""
    return build_backend(config, models_dir)
