"""Results: one DuckDB file (`results`) or a folder of Parquet files many writers share (`parquet`), both with
the schemas in `tables`; heavy data as Parquet beside them. `writes` replaces the slice of a table a computation
owns, `reads` answers the stages' questions; both work on either backend."""

from ..config import Settings
from .parquet import ParquetStore
from .results import ResultsStore, transaction
from .tables import TABLES

Store = ResultsStore | ParquetStore  # the interface both backends keep


def open_store(settings: Settings) -> Store:
    """The configured backend (`store.backend`): the DuckDB file or the Parquet folder."""
    if settings.store.backend == "parquet":
        return ParquetStore(settings.store_root, folder=settings.home)
    return ResultsStore(settings.db_path)


__all__ = ["TABLES", "ParquetStore", "ResultsStore", "Store", "open_store", "transaction"]
