"""The deployment's configuration as a Dagster resource: every other resource reads its section from it."""

from __future__ import annotations

import os
from functools import cache

from dagster import ConfigurableResource

from ..core.config import CONFIG_ENV, ENV_PREFIX, Settings, load_settings


class SettingsResource(ConfigurableResource):
    """The validated settings: defaults, the YAML file `config_path` (else AUTOINTERP_CONFIG), AUTOINTERP_* vars."""

    config_path: str | None = None

    def get(self) -> Settings:
        env = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith(ENV_PREFIX)))
        return _load(self.config_path or os.environ.get(CONFIG_ENV), env)


@cache
def _load(config_path: str | None, env: tuple[tuple[str, str], ...]) -> Settings:
    """Loaded once per file and environment: a run's steps all see the same settings."""
    return load_settings(config_path, environ=dict(env))
