"""The results store (DuckDB file + Parquet folders under AUTOINTERP_HOME) as a Dagster resource."""

from __future__ import annotations

from dagster import ConfigurableResource

from ..core.store import Store, open_store
from .settings import SettingsResource


class StoreResource(ConfigurableResource):
    settings: SettingsResource

    def get(self) -> Store:
        return open_store(self.settings.get())
