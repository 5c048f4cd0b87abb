"""The deployment's configuration as a Dagster resource (a YAML file path; defaults run offline)."""

from __future__ import annotations

from functools import cache

from dagster import ConfigurableResource

from ..core.settings import Settings, load_settings


class SettingsResource(ConfigurableResource):
    """Settings from `config_path` (or AUTOINTERP_CONFIG), AUTOINTERP_HOME and the built-in defaults."""

    config_path: str | None = None

    def get(self) -> Settings:
        return _load(self.config_path)


@cache
def _load(config_path: str | None) -> Settings:
    return load_settings(config_path)
