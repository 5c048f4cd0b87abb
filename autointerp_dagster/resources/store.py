"""The results store (DuckDB file + Parquet folders under AUTOINTERP_HOME) as a Dagster resource."""

from __future__ import annotations

from dagster import ConfigurableResource

from ..core.store import ResultsStore
from .settings import SettingsResource


class StoreResource(ConfigurableResource):
    settings: SettingsResource

    def get(self) -> ResultsStore:
        return ResultsStore(self.settings.get().db_path)
