"""Results in one DuckDB file (schemas in `tables`), heavy data as Parquet beside it."""

from .results import ResultsStore, transaction
from .tables import TABLES

__all__ = ["TABLES", "ResultsStore", "transaction"]
